package capacity

import "github.com/prometheus/client_golang/prometheus"

// MetricRefreshes counts the publisher's refreshes by outcome.
const MetricRefreshes = "cinder_provisioner_capacity_refreshes_total"

// Refresh outcomes.
const (
	outcomePublished = "published"            // from the quota and the pool stats
	outcomeQuotaOnly = "published_quota_only" // the pool stats are not readable
	outcomeFailed    = "failed"               // nothing changed; the objects keep their last values
)

// Metrics are the publisher's collectors. A nil *Metrics records nothing.
type Metrics struct {
	refreshes *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRefreshes,
		Help: "Refreshes of the CSIStorageCapacity objects by outcome (published, published_quota_only: the scheduler's pool stats are not readable, failed).",
	}, []string{"outcome"})}
	if reg != nil {
		if err := reg.Register(m.refreshes); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(outcome string) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(outcome).Inc()
}
