package snapshotter

import "github.com/prometheus/client_golang/prometheus"

// MetricPasses counts the snapshotter's passes by outcome.
const MetricPasses = "cinder_provisioner_snapshot_passes_total"

// Metrics are the snapshotter's collectors. A nil *Metrics records nothing.
type Metrics struct {
	passes *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{passes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricPasses,
		Help: "Passes of the snapshotter over a VolumeSnapshot or VolumeSnapshotContent of ours, by outcome (content_created, ready, deleted, in_progress, retry, refused, idle, gone).",
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
