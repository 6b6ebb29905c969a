package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"time"
)

// Phases of one claim, in order. The first six are the provisioner's own
// histograms (cinder_provisioner_phase_duration_seconds); "pv save" is the
// library's provisioning time less ours (it creates the PV), "bind" is the
// PV's appearance to the claim's Bound (kube-controller-manager's binder),
// "queue" what remains: informer delivery and the library's checks and
// Event before it calls Provision.
var p1Phases = []string{"queue", "claim", "lookup", "create", "wait", "export", "secret", "pv save", "bind"}

const libraryProvisionSeconds = "controller_persistentvolumeclaim_provision_duration_seconds"

// latencyResult is P1.
type latencyResult struct {
	Claims  int
	Workers string
	E2E     []float64            // seconds, each claim
	Phases  map[string][]float64 // seconds, each claim
	Calls   []float64            // Cinder requests, each claim
}

func (b *bench) latency(ctx context.Context, cfg config) (*latencyResult, error) {
	fmt.Printf("P1: %d claims one after another\n", cfg.p1Claims)
	t, err := b.track(ctx)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	p, err := b.start(cfg, "p1", cfg.workers)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if _, err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	res := &latencyResult{Claims: cfg.p1Claims, Workers: b.defaults(cfg)["workers"], Phases: map[string][]float64{}}
	var names []string
	prev, err := p.scrape(ctx)
	if err != nil {
		return nil, err
	}
	for i := range cfg.p1Claims {
		created, err := b.createClaims(ctx, fmt.Sprintf("p1-%03d", i), 1)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("p1-%03d-000", i)
		names = append(names, name)
		if err := t.waitFor(ctx, 2*time.Minute, "claim "+name+" Bound", func() bool { _, ok := t.bound[name]; return ok }); err != nil {
			return nil, err
		}
		cur, err := p.scrape(ctx)
		if err != nil {
			return nil, err
		}
		t.mu.Lock()
		bound, pvAdded := t.bound[name], t.pvAdded[name]
		t.mu.Unlock()
		e2e := bound.Sub(created[name]).Seconds()
		ours := map[string]float64{}
		for _, ph := range []string{"claim", "lookup", "create", "wait", "export", "secret", "total"} {
			ours[ph] = cur.hist(phaseMetric, map[string]string{"operation": "provision", "phase": ph}).sub(prev.hist(phaseMetric, map[string]string{"operation": "provision", "phase": ph})).sum
		}
		lib := cur.hist(libraryProvisionSeconds, nil).sub(prev.hist(libraryProvisionSeconds, nil)).sum
		bind := bound.Sub(pvAdded).Seconds()
		for _, ph := range []string{"claim", "lookup", "create", "wait", "export", "secret"} {
			res.Phases[ph] = append(res.Phases[ph], ours[ph])
		}
		res.Phases["pv save"] = append(res.Phases["pv save"], math.Max(0, lib-ours["total"]))
		res.Phases["bind"] = append(res.Phases["bind"], math.Max(0, bind))
		res.Phases["queue"] = append(res.Phases["queue"], math.Max(0, e2e-lib-math.Max(0, bind)))
		res.E2E = append(res.E2E, e2e)
		// every request sent while it bound: a shared list round is
		// counted by no claim's own count
		_, calls := callsBetween(prev, cur)
		res.Calls = append(res.Calls, calls)
		prev = cur
	}
	del := func(ctx context.Context) error { return b.deleteClaims(ctx, names) }
	if err := b.deleteAndWait(ctx, t, names, del, 5*time.Minute); err != nil {
		return nil, err
	}
	return res, nil
}

const phaseMetric = "cinder_provisioner_phase_duration_seconds"

// deleteAndWait deletes the claims and waits until their PVs are gone.
func (b *bench) deleteAndWait(ctx context.Context, t *tracker, names []string, del func(context.Context) error, timeout time.Duration) error {
	if err := del(ctx); err != nil {
		return err
	}
	return t.waitFor(ctx, timeout, "every PV of the run to go", func() bool {
		for _, n := range names {
			if _, added := t.pvAdded[n]; added {
				if _, gone := t.pvGone[n]; !gone {
					return false
				}
			}
		}
		return true
	})
}

func (r *latencyResult) print(w io.Writer) {
	fmt.Fprintf(w, "P1 latency, %d claims one after another (%s workers): PVC created -> Bound p50 %.2f s, p95 %.2f s, max %.2f s; Cinder requests per claim p50 %.0f\n",
		r.Claims, r.Workers, pct(r.E2E, 50), pct(r.E2E, 95), pct(r.E2E, 100), pct(r.Calls, 50))
	for _, ph := range p1Phases {
		v := r.Phases[ph]
		fmt.Fprintf(w, "  %-8s p50 %6.3f s  p95 %6.3f s  max %6.3f s\n", ph, pct(v, 50), pct(v, 95), pct(v, 100))
	}
}

// pct is the p-th percentile (nearest rank); NaN for no values.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(rank, len(s)-1))]
}
