package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes/fake"

	cinderfake "github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

func TestMetricsServesOurRegistryAndTheDefaultOne(t *testing.T) {
	registry := prometheus.NewRegistry()
	lm, err := registerLibraryMetrics(registry)
	if err != nil {
		t.Fatal(err)
	}
	lm.PersistentVolumeClaimProvisionTotal.WithLabelValues("tgtfile", "").Inc()
	lm.PersistentVolumeDeleteFailedTotal.WithLabelValues("tgtfile").Inc()
	s := newHTTPServer(nil, prometheus.Gatherers{registry, prometheus.DefaultGatherer})

	rec := httptest.NewRecorder()
	s.server.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics = %d", rec.Code)
	}
	for _, want := range []string{
		`controller_persistentvolumeclaim_provision_total{class="tgtfile",source=""} 1`,
		`controller_persistentvolume_delete_failed_total{class="tgtfile"} 1`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The library's metrics are ours only: registering them twice fails.
	if _, err := registerLibraryMetrics(registry); err == nil {
		t.Error("registering the library's metrics twice succeeded")
	}
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name     string
		check    func(*http.Request) error
		wantCode int
		wantBody string
	}{
		{"no leader election", nil, http.StatusOK, "ok\n"},
		{"lease renewed", func(*http.Request) error { return nil }, http.StatusOK, "ok\n"},
		{"lease renewal stalled", func(*http.Request) error { return errors.New("failed election to renew leadership on lease x") }, http.StatusServiceUnavailable, "unhealthy: failed election to renew leadership on lease x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newHTTPServer(nil, prometheus.NewRegistry())
			s.healthCheck = tt.check
			rec := httptest.NewRecorder()
			s.server.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
				t.Errorf("/healthz = %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestMetricsAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx := t.Context()
	o := NewOptions()
	o.ClusterID, o.SecretNamespace, o.MetricsAddress = "c1", "default", ln.Addr().String()
	_, err = newApp(ctx, o, cinderfake.New(), fake.NewClientset(), nil, nil, prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "--metrics-address") {
		t.Errorf("newApp = %v, want a --metrics-address error", err)
	}
}
