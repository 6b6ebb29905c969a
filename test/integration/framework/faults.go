package framework

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// StopService kills one service of the local stack (cinder-api,
// cinder-scheduler, cinder-volume, tgtd, rabbitmq, keystone,
// kube-apiserver) by its PID, as a crash or an outage looks to a client. It is started again when the test ends, if the test
// did not do it.
func (s *Stack) StopService(t testing.TB, name string) {
	t.Helper()
	s.cinderService(t, "stop", name)
	t.Cleanup(func() { s.cinderService(t, "start", name) })
}

// StartService starts a service StopService stopped and waits until it
// answers.
func (s *Stack) StartService(t testing.TB, name string) {
	t.Helper()
	s.cinderService(t, "start", name)
}

func (s *Stack) cinderService(t testing.TB, action, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(s.RepoRoot, "hack", "stack-service.sh"), action, name)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", action, name, err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// ProxyRequest is what a CinderProxy rule sees of one request.
type ProxyRequest struct {
	Method string
	Path   string // URL path, e.g. /v3/<project>/attachments
	Body   string
}

// CinderProxy forwards everything to the local noauth cinder-api, on a port
// of its own on 127.0.0.1, and lets a test act on a chosen request after
// Cinder applied it: kill the client (a crash whose answer never arrives),
// or drop the answer.
type CinderProxy struct {
	URL string // base URL to use as cinder-endpoint (ends with /v3/)

	mu     sync.Mutex
	rule   func(ProxyRequest) bool
	action func()
	fired  chan ProxyRequest
}

// NewCinderProxy starts a proxy in front of the stack's noauth cinder-api;
// it stops when the test ends.
func (s *Stack) NewCinderProxy(t testing.TB) *CinderProxy {
	t.Helper()
	target, err := url.Parse(s.Cinder.Endpoint)
	if err != nil {
		t.Fatalf("parse cinder endpoint: %v", err)
	}
	upstream := &url.URL{Scheme: target.Scheme, Host: target.Host}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &CinderProxy{URL: "http://" + ln.Addr().String() + "/v3/", fired: make(chan ProxyRequest, 1)}
	rp := httputil.NewSingleHostReverseProxy(upstream)
	rp.Transport = p
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return p
}

// AfterApplied arranges that the first request matching rule is forwarded
// to Cinder and, once Cinder answered, action runs and the answer is
// dropped (the client sees a broken connection).
func (p *CinderProxy) AfterApplied(rule func(ProxyRequest) bool, action func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule, p.action = rule, action
}

// Fired waits until the rule matched and returns the request.
func (p *CinderProxy) Fired(t testing.TB, timeout time.Duration) ProxyRequest {
	t.Helper()
	select {
	case r := <-p.fired:
		return r
	case <-time.After(timeout):
		t.Fatalf("no request matched the proxy's rule within %s", timeout)
		return ProxyRequest{}
	}
}

// RoundTrip implements http.RoundTripper.
func (p *CinderProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	pr := ProxyRequest{Method: req.Method, Path: req.URL.Path, Body: string(body)}
	p.mu.Lock()
	rule, action := p.rule, p.action
	hit := rule != nil && rule(pr)
	if hit {
		p.rule = nil
	}
	p.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if !hit || err != nil {
		return resp, err
	}
	// Cinder applied the request; its answer never reaches the client
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	action()
	p.fired <- pr
	return nil, fmt.Errorf("proxy: answer to %s %s dropped after Cinder applied it", pr.Method, pr.Path)
}

// CloudConf writes a noauth cloud config that reaches Cinder through the
// proxy, and returns its path.
func (s *Stack) CloudConfVia(t testing.TB, p *CinderProxy) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cloud-proxy.conf")
	conf := fmt.Sprintf("[Global]\ncinder-endpoint = %s\nusername = admin\ntenant-name = %s\n", p.URL, s.Cinder.ProjectID)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatalf("write cloud config: %v", err)
	}
	return path
}
