package openstack

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Cinder's clock. Ages that decide whether something may be deleted (a
// volume stuck creating, an unreferenced volume past its grace period) are
// measured between two readings of Cinder's own clock: a volume's
// created_at and the Date header of the answer that returned it. The
// provisioner's or an operator's clock may be skewed by any amount.

// clockKey carries a *clockReading in a request's context.
type clockKey struct{}

// clockReading receives the Date header of the answers to the requests made
// with its context (the last one wins: a paged list's last page).
type clockReading struct {
	mu sync.Mutex
	at time.Time
}

func (r *clockReading) set(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = t
}

func (r *clockReading) get() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at
}

// readClock returns a context whose requests record Cinder's clock.
func readClock(ctx context.Context) (context.Context, *clockReading) {
	r := &clockReading{}
	return context.WithValue(ctx, clockKey{}, r), r
}

// clockTransport records the Date header of every answer into the
// request context's clockReading, if any.
type clockTransport struct {
	base http.RoundTripper
}

func (t clockTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if r, ok := req.Context().Value(clockKey{}).(*clockReading); ok {
		if d, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			r.set(d.UTC())
		}
	}
	return resp, nil
}

// withClock returns a copy of hc whose transport records Cinder's clock.
func withClock(hc *http.Client) *http.Client {
	out := *hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = clockTransport{base: base}
	return &out
}
