package openstack

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; every Cinder call is counted and timed by operation and
// outcome (success, not_found, quota, conflict, invalid, unavailable, error).
const (
	metricDuration = "cinder_provisioner_cinder_request_duration_seconds"
	metricRequests = "cinder_provisioner_cinder_requests_total"
)

type metrics struct {
	duration *prometheus.HistogramVec
	requests *prometheus.CounterVec
}

// newMetrics creates the collectors and registers them with reg (nil: not
// registered). A registry that already holds them (a second client in one
// process) shares the existing collectors.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricDuration,
			Help:    "Duration of Cinder API requests by operation and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms .. ~41 s
		}, []string{"operation", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRequests,
			Help: "Cinder API requests by operation and outcome.",
		}, []string{"operation", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) observe(op, outcome string, seconds float64) {
	m.duration.WithLabelValues(op, outcome).Observe(seconds)
	m.requests.WithLabelValues(op, outcome).Inc()
}
