package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// burstResult is one P2 run: n claims at once.
type burstResult struct {
	Claims   int
	Workers  int
	Bind     time.Duration // first create -> last Bound
	Delete   time.Duration // first delete -> last PV gone
	PerClaim []float64     // PVC created -> Bound, seconds
	Phases   map[string]hist
	// Cinder requests per claim: every request the provisioner sent while
	// the claims bound (deleted), divided by the claims: the shared list
	// rounds, which no one claim's count carries, included.
	CallsProv float64
	CallsDel  float64
	// the same requests by operation, in all
	CallsProvByOp, CallsDelByOp map[string]float64
	Usage                       usage // after the deletes (P4)
	BindCPU                     cpuUse
	DeleteCPU                   cpuUse
	Floor                       *floor
	Leftover                    int
	// Kubectl: claims made by one kubectl apply and deleted by kubectl
	// delete pvc --all (kubectl.go), not by the bench's client.
	Kubectl bool
}

var (
	provisionPhases = []string{"claim", "lookup", "create", "wait", "export", "secret", "total"}
	deletePhases    = []string{"check", "secret", "unexport", "delete", "total"}
)

func (b *bench) burst(ctx context.Context, cfg config, n, workers int, withFloor, kubectl bool) (*burstResult, error) {
	if workers == 0 {
		workers, _ = strconv.Atoi(b.defaults(cfg)["workers"])
	}
	how := "the bench's client, 16 at a time"
	if kubectl {
		how = "kubectl apply -f, kubectl delete pvc --all"
	}
	fmt.Printf("P2: %d claims at once, %d workers (%s)\n", n, workers, how)
	t, err := b.track(ctx)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	label := fmt.Sprintf("p2-%d-w%d", n, workers)
	if kubectl {
		label += "-kubectl"
	}
	p, err := b.start(cfg, label, workers)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if _, err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	before, err := p.scrape(ctx)
	if err != nil {
		return nil, err
	}
	res := &burstResult{Claims: n, Workers: workers, Phases: map[string]hist{}, Kubectl: kubectl}
	cpu0 := sampleCPU()
	start := time.Now()
	create := b.createClaims
	if kubectl {
		create = b.applyClaims
	}
	created, err := create(ctx, label, n)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, n)
	for name := range created {
		names = append(names, name)
	}
	// 15 min, or 2 s a claim for the largest bursts (1,000 claims bind
	// at ~1/s on this 2-core stack)
	within := max(15*time.Minute, time.Duration(n)*2*time.Second)
	if err := t.waitFor(ctx, within, fmt.Sprintf("%d claims Bound", n), func() bool { return len(t.bound) >= n }); err != nil {
		return nil, err
	}
	t.mu.Lock()
	var last time.Time
	for _, name := range names {
		bound := t.bound[name]
		if bound.After(last) {
			last = bound
		}
		res.PerClaim = append(res.PerClaim, bound.Sub(created[name]).Seconds())
	}
	t.mu.Unlock()
	res.Bind = last.Sub(start)
	cpu1 := sampleCPU()
	res.BindCPU = cpu1.since(cpu0)
	bound, err := p.scrape(ctx)
	if err != nil {
		return nil, err
	}

	start = time.Now()
	del := func(ctx context.Context) error { return b.deleteClaims(ctx, names) }
	if kubectl {
		del = b.deleteAllClaims
	}
	if err := b.deleteAndWait(ctx, t, names, del, within); err != nil {
		return nil, err
	}
	t.mu.Lock()
	last = time.Time{}
	for _, name := range names {
		if g := t.pvGone[name]; g.After(last) {
			last = g
		}
	}
	t.mu.Unlock()
	res.Delete = last.Sub(start)
	res.DeleteCPU = sampleCPU().since(cpu1)
	after, err := p.scrape(ctx)
	if err != nil {
		return nil, err
	}
	for _, ph := range provisionPhases {
		l := map[string]string{"operation": "provision", "phase": ph}
		res.Phases["provision "+ph] = after.hist(phaseMetric, l).sub(before.hist(phaseMetric, l))
	}
	for _, ph := range deletePhases {
		l := map[string]string{"operation": "delete", "phase": ph}
		res.Phases["delete "+ph] = after.hist(phaseMetric, l).sub(before.hist(phaseMetric, l))
	}
	var total float64
	res.CallsProvByOp, total = callsBetween(before, bound)
	res.CallsProv = total / float64(n)
	res.CallsDelByOp, total = callsBetween(bound, after)
	res.CallsDel = total / float64(n)
	if res.Usage, err = p.usage(); err != nil {
		return nil, err
	}
	p.stop()
	if res.Leftover, err = b.leftovers(ctx); err != nil {
		return nil, err
	}
	if res.Leftover != 0 {
		return nil, fmt.Errorf("%d Cinder volumes of the run left after every claim was deleted", res.Leftover)
	}
	// ours first: a floor of 1,000 volumes takes half an hour more
	res.print(os.Stdout)
	if withFloor {
		fmt.Printf("P2: floor, the same Cinder calls for %d volumes, %d at a time\n", n, workers)
		if res.Floor, err = b.floor(ctx, n, workers); err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		res.printFloor(os.Stdout)
	}
	return res, nil
}

func (r *burstResult) print(w io.Writer) {
	via := ""
	if r.Kubectl {
		via = " (kubectl apply -f, kubectl delete pvc --all)"
	}
	fmt.Fprintf(w, "P2 burst%s, %d claims, %d workers: all Bound in %.1f s (%.2f claims/s), all deleted in %.1f s; per claim created -> Bound p50 %.1f s, p95 %.1f s, max %.1f s; Cinder requests per claim %.1f to provision, %.1f to delete; RSS %.0f MiB (peak %.0f), CPU %.1f s\n",
		via, r.Claims, r.Workers, r.Bind.Seconds(), float64(r.Claims)/r.Bind.Seconds(), r.Delete.Seconds(),
		pct(r.PerClaim, 50), pct(r.PerClaim, 95), pct(r.PerClaim, 100), r.CallsProv, r.CallsDel, r.Usage.RSSMiB, r.Usage.PeakMiB, r.Usage.CPUSec)
	for _, k := range append(prefixed("provision ", provisionPhases), prefixed("delete ", deletePhases)...) {
		h := r.Phases[k]
		fmt.Fprintf(w, "  %-18s n %4.0f  mean %6.3f s  p50 %6.3f s  p95 %6.3f s\n", k, h.count, h.sum/max(h.count, 1), h.quantile(0.5), h.quantile(0.95))
	}
	fmt.Fprintf(w, "  Cinder requests while binding: %s\n  Cinder requests while deleting: %s\n", formatCalls(r.CallsProvByOp), formatCalls(r.CallsDelByOp))
	fmt.Fprintf(w, "  CPU while binding: %s\n  CPU while deleting: %s\n", r.BindCPU, r.DeleteCPU)
}

// printFloor prints the same-run floor next to ours.
func (r *burstResult) printFloor(w io.Writer) {
	if f := r.Floor; f != nil {
		fmt.Fprintf(w, "  floor (same Cinder calls, %d at a time, %s polls): bind %.1f s, delete %.1f s -> ratio bind %.2fx, delete %.2fx\n",
			r.Workers, floorPoll, f.Bind.Seconds(), f.Delete.Seconds(), r.Bind.Seconds()/f.Bind.Seconds(), r.Delete.Seconds()/f.Delete.Seconds())
		fmt.Fprintf(w, "  floor per volume: create %.3f s, wait %.3f s, export %.3f s, unexport %.3f s, delete %.3f s; Cinder requests %.1f to bind, %.1f to delete\n",
			f.Steps["create"], f.Steps["wait"], f.Steps["export"], f.Steps["unexport"], f.Steps["delete"], f.CallsBind, f.CallsDelete)
		fmt.Fprintf(w, "  floor CPU while binding: %s\n  floor CPU while deleting: %s\n", f.BindCPU, f.DeleteCPU)
		n := float64(r.Claims)
		fmt.Fprintf(w, "  per claim, ours vs floor: Cinder requests %.1f vs %.1f to bind, %.1f vs %.1f to delete; Cinder CPU %.3f s vs %.3f s to bind, %.3f s vs %.3f s to delete\n",
			r.CallsProv, f.CallsBind, r.CallsDel, f.CallsDelete,
			r.BindCPU.group("Cinder")/n, f.BindCPU.group("Cinder")/n, r.DeleteCPU.group("Cinder")/n, f.DeleteCPU.group("Cinder")/n)
	}
}

func prefixed(p string, s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = p + v
	}
	return out
}
