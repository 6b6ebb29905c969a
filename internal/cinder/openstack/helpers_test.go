package openstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	th "github.com/gophercloud/gophercloud/v2/testhelper"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

const (
	testProject = "0123456789abcdef0123456789abcdef"
	testToken   = "admin:" + testProject
	volPath     = "/v3/" + testProject
)

// server is gophercloud's testhelper HTTP server dressed as Cinder: it serves
// the version document, checks token and microversion headers of every API
// request and records requests ("POST /volumes/v1/action os-reserve") for
// order assertions.
type server struct {
	th.FakeServer
	t            *testing.T
	maxVersion   string
	wantMV       string // expected OpenStack-API-Version microversion
	wantToken    string
	mu           sync.Mutex
	log          []string
	bodies       map[string][]map[string]any // by log entry
	handlers     map[string]http.HandlerFunc // "POST /volumes/{id}/action os-reserve" or "GET /volumes/{id}"
	versionCalls int
}

func newServer(t *testing.T, maxVersion string) *server {
	t.Helper()
	s := &server{FakeServer: th.SetupHTTP(), t: t, maxVersion: maxVersion, wantToken: testToken, bodies: map[string][]map[string]any{}, handlers: map[string]http.HandlerFunc{}}
	t.Cleanup(s.Teardown)
	s.Mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.versionCalls++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMultipleChoices)
		fmt.Fprintf(w, `{"versions":[{"id":"v3.0","status":"CURRENT","version":%q,"min_version":"3.0"}]}`, s.maxVersion)
	})
	s.Mux.HandleFunc(volPath+"/", s.dispatch)
	return s
}

// on registers a handler for "METHOD /path [action]" (path below the project).
func (s *server) on(key string, h http.HandlerFunc) { s.handlers[key] = h }

// onJSON answers key with a status and a JSON body.
func (s *server) onJSON(key string, status int, body string) {
	s.on(key, func(w http.ResponseWriter, r *http.Request) { reply(w, status, body) })
}

func reply(w http.ResponseWriter, status int, body string) {
	if body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (s *server) dispatch(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("X-Auth-Token"); got != s.wantToken {
		s.t.Errorf("%s %s: X-Auth-Token %q, want %q", r.Method, r.URL.Path, got, s.wantToken)
	}
	if s.wantMV != "" {
		if got := r.Header.Get("OpenStack-API-Version"); got != "volume "+s.wantMV {
			s.t.Errorf("%s %s: OpenStack-API-Version %q, want %q", r.Method, r.URL.Path, got, "volume "+s.wantMV)
		}
	}
	path := strings.TrimPrefix(r.URL.Path, volPath)
	key := r.Method + " " + path
	var body map[string]any
	if r.Body != nil {
		raw, _ := io.ReadAll(r.Body)
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &body); err != nil {
				s.t.Errorf("%s: body is not JSON: %v", key, err)
			}
		}
	}
	if strings.HasSuffix(path, "/action") && len(body) == 1 {
		for k := range body {
			key += " " + k
		}
	}
	s.mu.Lock()
	s.log = append(s.log, key)
	s.bodies[key] = append(s.bodies[key], body)
	h := s.handlers[key]
	if h == nil {
		h = s.handlers[r.Method+" "+path]
	}
	s.mu.Unlock()
	if h == nil {
		s.t.Errorf("unexpected request %s", key)
		reply(w, http.StatusNotImplemented, `{"computeFault":{"message":"no handler","code":501}}`)
		return
	}
	h(w, r)
}

func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// body returns the n-th JSON body sent for key.
func (s *server) body(key string, n int) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bodies[key]) <= n {
		s.t.Fatalf("no request %d for %s; requests: %v", n, key, s.log)
	}
	return s.bodies[key][n]
}

func (s *server) noauthConfig() Config {
	return Config{CinderEndpoint: s.Server.URL + "/v3/", Username: "admin", ProjectID: testProject}
}

// client builds a noauth client of the server with its own registry.
func (s *server) client(method string) (*Client, *prometheus.Registry) {
	s.t.Helper()
	reg := prometheus.NewRegistry()
	c, err := New(context.Background(), Options{Config: s.noauthConfig(), ExportMethod: method, Registerer: reg, Backoff: fastBackoff, RollbackTimeout: 10 * time.Second})
	if err != nil {
		s.t.Fatalf("New: %v", err)
	}
	s.wantMV = c.Microversion()
	return c, reg
}

var fastBackoff = cinder.Backoff{Initial: time.Microsecond, Max: time.Microsecond, Factor: 1}

func counter(reg *prometheus.Registry, op, outcome string) float64 {
	m, err := newMetrics(reg) // shares the registered collectors
	if err != nil {
		panic(err)
	}
	return testutil.ToFloat64(m.requests.WithLabelValues(op, outcome))
}

func volumeJSON(id, name, status string, attachments ...string) string {
	var atts []string
	for _, a := range attachments {
		host, id, _ := strings.Cut(a, "=")
		atts = append(atts, fmt.Sprintf(`{"attachment_id":%q,"host_name":%q,"server_id":null,"volume_id":"x"}`, id, host))
	}
	return fmt.Sprintf(`{"volume":{"id":%q,"name":%q,"status":%q,"size":1,"volume_type":"tgtfile","availability_zone":"nova","multiattach":false,"metadata":{"k":"v"},"created_at":"2026-11-24T20:20:17.000000","attachments":[%s]}}`,
		id, name, status, strings.Join(atts, ","))
}

var testConnector = cinder.Connector{Initiator: "iqn.1993-08.org.debian:01:test", IP: "127.0.0.1", Host: "node1", Platform: "x86_64", OSType: "linux2"}

// connectorWant is testConnector as JSON decodes it.
var connectorWant = map[string]any{"initiator": "iqn.1993-08.org.debian:01:test", "ip": "127.0.0.1", "host": "node1", "platform": "x86_64", "os_type": "linux2", "multipath": false}
