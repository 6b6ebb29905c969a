package passes

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type outcome string

func (o outcome) String() string { return string(o) }

func TestObserveCountsByOutcome(t *testing.T) {
	tests := map[string]struct {
		observed []outcome
		want     string
	}{
		"none": {want: ""},
		"one of each": {observed: []outcome{"ready", "retry"}, want: `
# HELP test_passes_total Passes.
# TYPE test_passes_total counter
test_passes_total{outcome="ready"} 1
test_passes_total{outcome="retry"} 1
`},
		"repeated": {observed: []outcome{"retry", "retry", "retry"}, want: `
# HELP test_passes_total Passes.
# TYPE test_passes_total counter
test_passes_total{outcome="retry"} 3
`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			m, err := New(reg, "test_passes_total", "Passes.")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range tc.observed {
				m.Observe(o)
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), "test_passes_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestNewRefusesADuplicateName(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg, "test_passes_total", "Passes."); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, "test_passes_total", "Passes."); err == nil {
		t.Error("a second counter of the same name registered; want an error")
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	m.Observe(outcome("ready")) // must not panic
	unregistered, err := New(nil, "test_passes_total", "Passes.")
	if err != nil || unregistered == nil {
		t.Fatalf("New without a registry: %v, %v", unregistered, err)
	}
	unregistered.Observe(outcome("ready"))
	if got := testutil.ToFloat64(unregistered.passes.WithLabelValues("ready")); got != 1 {
		t.Errorf("unregistered counter: %v, want 1", got)
	}
}
