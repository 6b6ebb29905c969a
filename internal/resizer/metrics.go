package resizer

import "github.com/prometheus/client_golang/prometheus"

// MetricPasses counts the resizer's passes over claims by outcome.
const MetricPasses = "cinder_provisioner_resize_passes_total"

// Metrics are the resizer's collectors. A nil *Metrics records nothing.
type Metrics struct {
	passes *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{passes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricPasses,
		Help: "Passes of the resizer over a claim whose request grew, by outcome (resized, node_pending, in_progress, retry, refused, refused_again, idle, gone).",
	}, []string{"outcome"})}
	if reg != nil {
		if err := reg.Register(m.passes); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(o outcome) {
	if m == nil {
		return
	}
	m.passes.WithLabelValues(o.String()).Inc()
}
