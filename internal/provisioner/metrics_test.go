package provisioner

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// histograms returns the sample count and sum of every series of a
// histogram family, keyed by its label values joined with "/".
func histograms(t *testing.T, reg *prometheus.Registry, name string) map[string]*dto.Histogram {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.Histogram{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += "/"
				}
				key += l.GetValue()
			}
			out[key] = m.GetHistogram()
		}
	}
	return out
}

func TestMetricsRecordEveryPhaseAndTheCinderCallsOfAClaimAndAPV(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	e.p.metrics = m
	e.attempted = true // a retry, so that the lookup phase runs too

	pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	// the fake's steps are its requests: the export is two (attachment
	// create and complete)
	requests := e.cinder.StepOps()
	calls := histograms(t, reg, MetricCinderCalls)
	if h := calls["provision/ok"]; h.GetSampleCount() != 1 || h.GetSampleSum() != float64(len(requests)) || len(requests) < len(opsCreateAndExport) {
		t.Errorf("provision calls: %d samples, sum %v; want 1 sample of %d requests (%q)", h.GetSampleCount(), h.GetSampleSum(), len(requests), requests)
	}
	e.cinder.ResetCalls()
	pv = e.save(pv)
	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	calls = histograms(t, reg, MetricCinderCalls)
	if h := calls["delete/ok"]; h.GetSampleCount() != 1 || h.GetSampleSum() != float64(len(e.cinder.Steps())) {
		t.Errorf("delete calls: %d samples, sum %v; want 1 sample of the %d requests the fake saw", h.GetSampleCount(), h.GetSampleSum(), len(e.cinder.Steps()))
	}

	phases := histograms(t, reg, MetricPhaseDuration)
	for _, key := range []string{
		"provision/claim", "provision/lookup", "provision/create", "provision/wait", "provision/export", "provision/secret", "provision/total",
		"delete/check", "delete/secret", "delete/unexport", "delete/delete", "delete/total",
	} {
		if n := phases[key].GetSampleCount(); n != 1 {
			t.Errorf("phase %s: %d samples, want 1", key, n)
		}
	}
	if len(phases) != 12 {
		t.Errorf("phase series = %d, want 12: %v", len(phases), phases)
	}
}

func TestMetricsCountTheCallsOfAFailedAttempt(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	e.p.metrics = m
	e.cinder.SetQuota(0) // the create is refused with 413

	if _, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil))); err == nil {
		t.Fatal("Provision succeeded over quota")
	}
	h := histograms(t, reg, MetricCinderCalls)["provision/error"]
	if h.GetSampleCount() != 1 || h.GetSampleSum() != float64(len(e.cinder.Steps())) || h.GetSampleSum() == 0 {
		t.Errorf("calls of the failed attempt: %d samples, sum %v; want 1 sample of the %d requests the fake saw", h.GetSampleCount(), h.GetSampleSum(), len(e.cinder.Steps()))
	}
	if n := histograms(t, reg, MetricPhaseDuration)["provision/export"].GetSampleCount(); n != 0 {
		t.Errorf("export phase recorded %d times for an attempt that never exported", n)
	}
}
