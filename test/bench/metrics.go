package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one read of the provisioner's /metrics.
type scrape map[string]*dto.MetricFamily

func (p *proc) scrape(ctx context.Context) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", p.metrics, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p.metrics, err)
	}
	return scrape(fams), nil
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// hist is a histogram summed over the series that match.
type hist struct {
	count   float64
	sum     float64
	buckets map[float64]float64 // upper bound -> cumulative count
}

func (s scrape) hist(name string, labels map[string]string) hist {
	h := hist{buckets: map[float64]float64{}}
	f := s[name]
	if f == nil {
		return h
	}
	for _, m := range f.GetMetric() {
		if !labelsMatch(m, labels) {
			continue
		}
		hh := m.GetHistogram()
		h.count += float64(hh.GetSampleCount())
		h.sum += hh.GetSampleSum()
		for _, b := range hh.GetBucket() {
			h.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	return h
}

// sub is h minus an earlier read of the same histogram.
func (h hist) sub(o hist) hist {
	d := hist{count: h.count - o.count, sum: h.sum - o.sum, buckets: map[float64]float64{}}
	for ub, c := range h.buckets {
		d.buckets[ub] = c - o.buckets[ub]
	}
	return d
}

// quantile estimates the q-quantile by linear interpolation within the
// bucket that holds it, as Prometheus' histogram_quantile does.
func (h hist) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	bounds := make([]float64, 0, len(h.buckets))
	for ub := range h.buckets {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	rank := q * h.count
	lower, prev := 0.0, 0.0
	for _, ub := range bounds {
		c := h.buckets[ub]
		if c >= rank {
			if math.IsInf(ub, 1) {
				return lower
			}
			if c == prev {
				return ub
			}
			return lower + (ub-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = ub, c
	}
	return lower
}

// cinderCalls is the count of Cinder requests by operation, and in all.
func (s scrape) cinderCalls() (map[string]float64, float64) {
	out := map[string]float64{}
	total := 0.0
	f := s["cinder_provisioner_cinder_requests_total"]
	if f == nil {
		return out, 0
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "operation" {
				out[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
		total += m.GetCounter().GetValue()
	}
	return out, total
}

// callsBetween is the Cinder requests made between two scrapes, by
// operation and in all.
func callsBetween(from, to scrape) (map[string]float64, float64) {
	byOp, total := to.cinderCalls()
	was, wasTotal := from.cinderCalls()
	for op, n := range was {
		byOp[op] -= n
		if byOp[op] == 0 {
			delete(byOp, op)
		}
	}
	return byOp, total - wasTotal
}

func formatCalls(calls map[string]float64) string {
	return joinSorted(calls, ", ", func(k string, v float64) string { return fmt.Sprintf("%s %.0f", k, v) })
}

// joinSorted formats each entry of m, in key order, and joins them.
func joinSorted[V any](m map[string]V, sep string, format func(k string, v V) string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, format(k, m[k]))
	}
	return strings.Join(parts, sep)
}
