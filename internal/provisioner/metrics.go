package provisioner

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Metric names. The phase histogram splits every Provision and Delete call
// into the steps it took (operation provision: claim, lookup, create, wait,
// export, secret, total; operation delete: check, secret, unexport, delete,
// total); the call histogram counts the Cinder requests each one made.
const (
	MetricPhaseDuration = "cinder_provisioner_phase_duration_seconds"
	MetricCinderCalls   = "cinder_provisioner_cinder_calls"
	// MetricSweepVolumes is what the last sweep decided about each volume of
	// this cluster, by verdict: deleted (proven unreferenced), referenced (a
	// PV refers to it), claim (its claim exists), and the volumes no PV
	// refers to that it kept for an admin: policy (not Delete), young (within
	// the grace period), status (in use, creating, ...), exported.
	MetricSweepVolumes = "cinder_provisioner_sweep_volumes"
)

// Operations and phases, the label values of the metrics.
const (
	opProvision = "provision"
	opDelete    = "delete"

	phaseClaim    = "claim"    // live GET of the claim, parameter checks, connector
	phaseLookup   = "lookup"   // the claim's volume looked up by name, recovered
	phaseCreate   = "create"   // the create request
	phaseWait     = "wait"     // creating -> available
	phaseExport   = "export"   // attachment create + complete (or legacy)
	phaseSecret   = "secret"   // CHAP Secret saved / deleted
	phaseCheck    = "check"    // the volume read and checked to be the PV's
	phaseUnexport = "unexport" // the PV's export removed
	phaseDelete   = "delete"   // DELETE and the wait until Cinder forgets it
	phaseTotal    = "total"    // the whole call, whatever its end
)

// Metrics are the provisioner's Prometheus collectors. A nil *Metrics
// records nothing.
type Metrics struct {
	phase *prometheus.HistogramVec
	calls *prometheus.HistogramVec
	sweep *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricPhaseDuration,
			Help: "Duration of each phase of Provision and Delete, by operation and phase; phase total is the whole call.",
			// 5 ms .. ~82 s: a Kubernetes GET is milliseconds, a wait for a
			// slow backend tens of seconds
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15),
		}, []string{"operation", "phase"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricCinderCalls,
			Help:    "Cinder requests made by one Provision or Delete call, by operation and result (ok: the call succeeded); the shared list rounds that serve every wait are in cinder_provisioner_cinder_requests_total only.",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 64},
		}, []string{"operation", "result"}),
		sweep: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricSweepVolumes,
			Help: "Volumes of this cluster by what the last sweep decided: deleted, referenced, claim, and kept for an admin (policy, young, status, exported).",
		}, []string{"verdict"}),
	}
	if reg != nil {
		if err := errors.Join(reg.Register(m.phase), reg.Register(m.calls), reg.Register(m.sweep)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// timePhase starts timing one phase; the returned func ends it.
func (m *Metrics) timePhase(op, phase string) func() {
	if m == nil {
		return func() {}
	}
	start := time.Now()
	return func() { m.phase.WithLabelValues(op, phase).Observe(time.Since(start).Seconds()) }
}

// track counts the Cinder requests of one operation and times it whole:
// it returns the context to make them with and the func that records both
// when the operation ends.
func (m *Metrics) track(ctx context.Context, op string) (context.Context, func(err error)) {
	if m == nil {
		return ctx, func(error) {}
	}
	ctx, counter := cinder.WithCallCounter(ctx)
	total := m.timePhase(op, phaseTotal)
	return ctx, func(err error) {
		total()
		result := "ok"
		if err != nil {
			result = "error"
		}
		m.calls.WithLabelValues(op, result).Observe(float64(counter.Calls()))
	}
}

// swept records the verdicts of one sweep (every verdict, zeros included).
func (m *Metrics) swept(counts map[verdict]int) {
	if m == nil {
		return
	}
	for v, name := range verdictNames {
		m.sweep.WithLabelValues(name).Set(float64(counts[v]))
	}
}
