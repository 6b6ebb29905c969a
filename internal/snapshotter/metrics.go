package snapshotter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cinder-provisioner/cinder-provisioner/internal/passes"
)

// MetricPasses counts the snapshotter's passes by outcome.
const MetricPasses = "cinder_provisioner_snapshot_passes_total"

// Metrics are the snapshotter's collectors. A nil *Metrics records nothing.
type Metrics = passes.Metrics

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	return passes.New(reg, MetricPasses,
		"Passes of the snapshotter over a VolumeSnapshot or VolumeSnapshotContent of ours, by outcome (content_created, ready, deleted, in_progress, retry, refused, idle, gone).")
}
