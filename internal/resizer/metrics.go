package resizer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cinder-provisioner/cinder-provisioner/internal/passes"
)

// MetricPasses counts the resizer's passes over claims by outcome.
const MetricPasses = "cinder_provisioner_resize_passes_total"

// Metrics are the resizer's collectors. A nil *Metrics records nothing.
type Metrics = passes.Metrics

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	return passes.New(reg, MetricPasses,
		"Passes of the resizer over a claim whose request grew, by outcome (resized, node_pending, in_progress, retry, refused, refused_again, idle, gone).")
}
