package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// shutdownTimeout bounds the wait for in-flight scrapes on exit.
const shutdownTimeout = 5 * time.Second

// httpServer serves /metrics and /healthz on --metrics-address.
type httpServer struct {
	listener net.Listener
	server   *http.Server
	// healthCheck fails /healthz; nil: always healthy once serving. With
	// leader election it fails when this replica leads but has not renewed
	// its Lease for too long.
	healthCheck func(*http.Request) error
	done        chan struct{}
}

// newHTTPServer serves gatherer's metrics: our registry (Cinder requests,
// the library's provision and delete counters) and the default registry (Go
// runtime and process metrics, and anything a dependency registers there).
func newHTTPServer(ln net.Listener, gatherer prometheus.Gatherer) *httpServer {
	s := &httpServer{listener: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/healthz", s.healthz)
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s
}

func (s *httpServer) healthz(w http.ResponseWriter, r *http.Request) {
	if s.healthCheck != nil {
		if err := s.healthCheck(r); err != nil {
			http.Error(w, fmt.Sprintf("unhealthy: %v", err), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// start serves in the background.
func (s *httpServer) start(ctx context.Context) {
	logger := klog.FromContext(ctx)
	logger.Info("Serving /metrics and /healthz", "address", s.listener.Addr().String())
	go func() {
		defer close(s.done)
		if err := s.server.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "HTTP server stopped", "address", s.listener.Addr().String())
		}
	}()
}

// stop shuts the server down, giving in-flight requests a moment.
func (s *httpServer) stop(ctx context.Context) {
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := s.server.Shutdown(shutdownCtx); err != nil {
		klog.FromContext(ctx).Error(err, "Stop HTTP server")
	}
	<-s.done
}
