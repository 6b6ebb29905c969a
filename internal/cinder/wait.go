package cinder

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Backoff is the schedule of a wait: the first pause is Initial, each next
// one Factor times longer, never longer than Max. Cinder creates a volume on a
// fast backend in ~0.1 s, so waits start short; a slow backend is polled at
// most every Max. Jitter spreads each pause over ±Jitter of its length, so
// that the waits of a burst of claims, started together, do not poll
// cinder-api together.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
	Jitter  float64 // 0..1; 0: none
}

// DefaultBackoff starts at 100 ms, grows 1.6 times, caps at 3 s, ±20%.
func DefaultBackoff() Backoff {
	return Backoff{Initial: 100 * time.Millisecond, Max: 3 * time.Second, Factor: 1.6, Jitter: 0.2}
}

// jittered is Delay(n) moved by the jitter: r in [0, 1) picks where in
// [1-Jitter, 1+Jitter) of it the pause falls.
func (b Backoff) jittered(n int, r float64) time.Duration {
	d := b.Delay(n)
	j := min(max(b.Jitter, 0), 1)
	return time.Duration(float64(d) * (1 - j + 2*j*r))
}

// Delay returns the pause before poll n+1 (n counts from 0).
func (b Backoff) Delay(n int) time.Duration {
	d := float64(b.Initial)
	f := b.Factor
	if f < 1 {
		f = 1
	}
	for i := 0; i < n && (b.Max <= 0 || time.Duration(d) < b.Max); i++ {
		d *= f
	}
	if b.Max > 0 && time.Duration(d) > b.Max {
		return b.Max
	}
	return time.Duration(d)
}

// WaitError reports a wait that ended with its context: what was awaited and
// the last status (or error) seen. It wraps the context's error.
type WaitError struct {
	What    string // e.g. "volume 1234 to become available"
	Last    string // last status seen, "" when none
	LastErr error  // last transient error, if the last poll failed
	Err     error  // ctx.Err()
}

func (e *WaitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gave up waiting for %s", e.What)
	switch {
	case e.LastErr != nil:
		fmt.Fprintf(&b, " (last poll failed: %v)", e.LastErr)
	case e.Last != "":
		fmt.Fprintf(&b, " (last status %s)", e.Last)
	default:
		b.WriteString(" (nothing seen yet)")
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap exposes the context's error and the last transient error.
func (e *WaitError) Unwrap() []error {
	errs := []error{e.Err}
	if e.LastErr != nil {
		errs = append(errs, e.LastErr)
	}
	return errs
}

// Poll calls check until it reports done or an error, pausing before each
// call as b says, and gives up with a *WaitError when ctx ends. check returns
// the status it saw (for the error message). An error wrapping
// ErrUnavailable is transient: it is remembered and polling goes on.
//
// The first call comes after the first pause, not at once: every wait
// follows a request (create, delete) or a read that showed the status
// still to change, and Cinder never finishes within the same instant, so
// an immediate read would be one wasted request per wait on a busy
// cinder-api.
func Poll(ctx context.Context, b Backoff, what string, check func(ctx context.Context) (done bool, status string, err error)) error {
	var last string
	var lastErr error
	for n := 0; ; n++ {
		t := time.NewTimer(b.jittered(n, rand.Float64()))
		select {
		case <-ctx.Done():
			t.Stop()
			return &WaitError{What: what, Last: last, LastErr: lastErr, Err: ctx.Err()}
		case <-t.C:
		}
		done, status, err := check(ctx)
		switch {
		case err == nil:
			last, lastErr = status, nil
			if done {
				return nil
			}
		case ctx.Err() != nil:
			if errors.Is(err, ErrUnavailable) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				lastErr = err
			}
			return &WaitError{What: what, Last: last, LastErr: lastErr, Err: ctx.Err()}
		case errors.Is(err, ErrUnavailable):
			lastErr = err
		default:
			return err
		}
	}
}

// VolumeGetter is the part of a Client the waits need.
type VolumeGetter func(ctx context.Context, id string) (*Volume, error)

// WaitForStatus implements Client.WaitForVolumeStatus on top of a getter.
func WaitForStatus(ctx context.Context, b Backoff, get VolumeGetter, id string, wanted ...string) (*Volume, error) {
	if len(wanted) == 0 {
		return nil, fmt.Errorf("wait for volume %s: no status to wait for", id)
	}
	var vol *Volume
	what := fmt.Sprintf("volume %s to become %s", id, strings.Join(wanted, " or "))
	err := Poll(ctx, b, what, func(ctx context.Context) (bool, string, error) {
		v, err := get(ctx, id)
		if err != nil {
			return false, "", err
		}
		if slices.Contains(wanted, v.Status) {
			vol = v
			return true, v.Status, nil
		}
		if IsErrorStatus(v.Status) {
			return false, v.Status, &VolumeStatusError{VolumeID: id, Status: v.Status, Wanted: wanted}
		}
		return false, v.Status, nil
	})
	if err != nil {
		return nil, err
	}
	return vol, nil
}

// WaitForDeleted implements Client.WaitForVolumeDeleted on top of a getter.
func WaitForDeleted(ctx context.Context, b Backoff, get VolumeGetter, id string) error {
	return Poll(ctx, b, fmt.Sprintf("volume %s to be deleted", id), func(ctx context.Context) (bool, string, error) {
		v, err := get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return true, "deleted", nil
		}
		if err != nil {
			return false, "", err
		}
		if v.Status == StatusErrorDeleting {
			return false, v.Status, &VolumeStatusError{VolumeID: id, Status: v.Status, Wanted: []string{"deleted"}}
		}
		return false, v.Status, nil
	})
}
