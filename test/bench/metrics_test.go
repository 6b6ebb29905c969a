package main

import (
	"math"
	"testing"
)

func TestHistogramQuantileInterpolatesWithinTheBucket(t *testing.T) {
	// 10 samples: 4 at or below 0.1 s, 10 at or below 0.4 s
	h := hist{count: 10, sum: 2, buckets: map[float64]float64{0.1: 4, 0.2: 4, 0.4: 10, math.Inf(1): 10}}
	for _, c := range []struct{ q, want float64 }{
		{0.2, 0.05},  // rank 2 of the 4 in (0, 0.1]
		{0.4, 0.1},   // the 4th sample ends the first bucket
		{0.7, 0.3},   // rank 7: 3 of the 6 in (0.2, 0.4]
		{1.0, 0.4},   // the last bucket with samples
		{0.5, 0.233}, // rank 5: 1 of 6 in (0.2, 0.4]
	} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 0.001 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := (hist{}).quantile(0.5); !math.IsNaN(got) {
		t.Errorf("quantile of an empty histogram = %v, want NaN", got)
	}
}

func TestHistogramDifferenceIsWhatHappenedBetweenTwoScrapes(t *testing.T) {
	before := hist{count: 3, sum: 1.5, buckets: map[float64]float64{1: 3, math.Inf(1): 3}}
	after := hist{count: 5, sum: 4.5, buckets: map[float64]float64{1: 3, math.Inf(1): 5}}
	d := after.sub(before)
	if d.count != 2 || d.sum != 3 || d.buckets[1] != 0 || d.buckets[math.Inf(1)] != 2 {
		t.Errorf("difference = %+v, want 2 samples summing 3, both above 1", d)
	}
}

func TestPercentileIsTheNearestRank(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	for _, c := range []struct{ p, want float64 }{{50, 3}, {95, 5}, {100, 5}, {1, 1}} {
		if got := pct(v, c.p); got != c.want {
			t.Errorf("pct(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if v[0] != 5 {
		t.Error("pct sorted its input in place")
	}
}

func TestFormattersListEntriesInKeyOrder(t *testing.T) {
	if got, want := formatCalls(map[string]float64{"get_volume": 3, "create_volume": 1}), "create_volume 1, get_volume 3"; got != want {
		t.Errorf("formatCalls = %q, want %q", got, want)
	}
	if got, want := formatDefaults(map[string]string{"workers": "4", "kube-api-qps": "20"}), "--kube-api-qps=20 --workers=4"; got != want {
		t.Errorf("formatDefaults = %q, want %q", got, want)
	}
}
