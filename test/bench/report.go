package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The part of docs/performance.md between these markers is the bench's;
// the rest is written by hand.
const (
	beginMarker = "<!-- bench:begin (written by make bench; do not edit by hand) -->"
	endMarker   = "<!-- bench:end -->"
)

type report struct {
	Started, Finished time.Time
	Command           string
	Machine           string
	Defaults          map[string]string
	Pinned            bool
	Auth              string
	P1                *latencyResult
	P2                *burstResult
	P2Kubectl         *burstResult
	Sweep             []*burstResult
	P3                *restartResult
}

func (r *report) write(doc string) error {
	dir := filepath.Dir(doc)
	var figures strings.Builder
	if r.P2 != nil || r.P1 != nil {
		if err := bindChart(r, filepath.Join(dir, "performance-bind.png")); err != nil {
			return fmt.Errorf("bind chart: %w", err)
		}
	}
	if len(r.Sweep) > 0 {
		if err := workersChart(r, filepath.Join(dir, "performance-workers.png")); err != nil {
			return fmt.Errorf("workers chart: %w", err)
		}
	}
	w := &figures
	fmt.Fprintf(w, "%s\n\n", beginMarker)
	cpus := "every process on both cores"
	if r.Pinned {
		cpus = "pinned (-pin): Cinder's processes on CPU 0; kube-apiserver, etcd, kube-controller-manager, the provisioner and the bench on CPU 1"
	}
	fmt.Fprintf(w, "Run of %s UTC on %s (%s; %s; ours and the floor reach Cinder through %s), %.0f min; `%s`. Provisioner defaults: %s.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04"), r.Machine, "local stack: Cinder tgtfile backend, kube-apiserver, kube-controller-manager, etcd on 127.0.0.1",
		cpus, authWords(r.Auth), r.Finished.Sub(r.Started).Minutes(), r.Command, formatDefaults(r.Defaults))
	if p := r.P1; p != nil {
		fmt.Fprintf(w, "### P1 latency: %d claims one after another\n\n", p.Claims)
		fmt.Fprintf(w, "PVC created → Bound: **p50 %.2f s**, p95 %.2f s, max %.2f s (target: median ≤ 1.0 s). Cinder requests per claim: p50 %.0f.\n\n",
			pct(p.E2E, 50), pct(p.E2E, 95), pct(p.E2E, 100), pct(p.Calls, 50))
		fmt.Fprintf(w, "| phase | p50 | p95 | max | measured by |\n|---|---|---|---|---|\n")
		for _, ph := range p1Phases {
			v := p.Phases[ph]
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", ph, ms(pct(v, 50)), ms(pct(v, 95)), ms(pct(v, 100)), phaseSource(ph))
		}
		fmt.Fprintln(w)
	}
	if p := r.P2; p != nil {
		fmt.Fprintf(w, "### P2 burst: %d claims at once, %d workers\n\n", p.Claims, p.Workers)
		fmt.Fprintf(w, "| | cinder-provisioner | floor: same Cinder calls, %d at a time, no Kubernetes | ratio (target ≤ 1.15) |\n|---|---|---|---|\n", p.Workers)
		if f := p.Floor; f != nil {
			fmt.Fprintf(w, "| all Bound | %.1f s | %.1f s | **%.2fx** |\n", p.Bind.Seconds(), f.Bind.Seconds(), p.Bind.Seconds()/f.Bind.Seconds())
			fmt.Fprintf(w, "| all deleted | %.1f s | %.1f s | **%.2fx** |\n", p.Delete.Seconds(), f.Delete.Seconds(), p.Delete.Seconds()/f.Delete.Seconds())
			n := float64(p.Claims)
			perClaim := func(what string, ours, floor float64, unit string) {
				fmt.Fprintf(w, "| %s per claim | %.3g%s | %.3g%s | %.2fx |\n", what, ours, unit, floor, unit, ours/floor)
			}
			if k := r.P2Kubectl; k != nil {
				fmt.Fprintf(w, "| all Bound, claims from one `kubectl apply -f` | %.1f s | %.1f s | **%.2fx** |\n", k.Bind.Seconds(), f.Bind.Seconds(), k.Bind.Seconds()/f.Bind.Seconds())
				fmt.Fprintf(w, "| all deleted, `kubectl delete pvc --all` | %.1f s | %.1f s | **%.2fx** |\n", k.Delete.Seconds(), f.Delete.Seconds(), k.Delete.Seconds()/f.Delete.Seconds())
			}
			perClaim("Cinder requests to bind", p.CallsProv, f.CallsBind, "")
			perClaim("Cinder requests to delete", p.CallsDel, f.CallsDelete, "")
			perClaim("Cinder CPU to bind", p.BindCPU.group("Cinder")/n, f.BindCPU.group("Cinder")/n, " s")
			perClaim("Cinder CPU to delete", p.DeleteCPU.group("Cinder")/n, f.DeleteCPU.group("Cinder")/n, " s")
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Per claim, created → Bound: p50 %.1f s, p95 %.1f s, max %.1f s. Cinder requests per claim: %.1f to provision, %.1f to delete. Leftover volumes after the deletes: %d.\n\n",
			pct(p.PerClaim, 50), pct(p.PerClaim, 95), pct(p.PerClaim, 100), p.CallsProv, p.CallsDel, p.Leftover)
		fmt.Fprintf(w, "Phases inside Provision and Delete during the burst (`cinder_provisioner_phase_duration_seconds`; p50/p95 interpolated in its buckets):\n\n")
		fmt.Fprintf(w, "| phase | count | mean | p50 | p95 |\n|---|---|---|---|---|\n")
		for _, k := range append(prefixed("provision ", provisionPhases), prefixed("delete ", deletePhases)...) {
			h := p.Phases[k]
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s |\n", k, h.count, ms(h.sum/max(h.count, 1)), ms(h.quantile(0.5)), ms(h.quantile(0.95)))
		}
		if f := p.Floor; f != nil {
			fmt.Fprintf(w, "\nCPU seconds used on the machine (2 cores) while binding and while deleting, by whom (`/proc`; the machine was %.0f%%/%.0f%% busy during our run, %.0f%%/%.0f%% during the floor's):\n\n",
				100*p.BindCPU.Busy, 100*p.DeleteCPU.Busy, 100*f.BindCPU.Busy, 100*f.DeleteCPU.Busy)
			fmt.Fprintf(w, "| | ours, bind | floor, bind | ours, delete | floor, delete |\n|---|---|---|---|---|\n")
			for _, g := range cpuGroups {
				fmt.Fprintf(w, "| %s | %.1f s | %.1f s | %.1f s | %.1f s |\n", g.Name, p.BindCPU.group(g.Name), f.BindCPU.group(g.Name), p.DeleteCPU.group(g.Name), f.DeleteCPU.group(g.Name))
			}
			fmt.Fprintf(w, "\nThe floor per volume: create %s, wait %s, export %s; unexport %s, delete and wait %s; Cinder requests %.1f to bind, %.1f to delete.\n",
				ms(f.Steps["create"]), ms(f.Steps["wait"]), ms(f.Steps["export"]), ms(f.Steps["unexport"]), ms(f.Steps["delete"]), f.CallsBind, f.CallsDelete)
		}
		fmt.Fprintf(w, "\n![Time to Bound](performance-bind.png)\n\n")
	}
	if len(r.Sweep) > 0 {
		fmt.Fprintf(w, "### Throughput against workers (%d claims at once each)\n\n| workers | all Bound | bound/s | all deleted | deleted/s | RSS after |\n|---|---|---|---|---|---|\n", r.Sweep[0].Claims)
		for _, s := range r.Sweep {
			fmt.Fprintf(w, "| %d | %.1f s | %.2f | %.1f s | %.2f | %.0f MiB |\n", s.Workers, s.Bind.Seconds(), float64(s.Claims)/s.Bind.Seconds(), s.Delete.Seconds(), float64(s.Claims)/s.Delete.Seconds(), s.Usage.RSSMiB)
		}
		fmt.Fprintf(w, "\n![Throughput against workers](performance-workers.png)\n\n")
	}
	if p := r.P3; p != nil {
		fmt.Fprintf(w, "### P3 restart at scale\n\n| API server holds | start → ready | Cinder requests in the %s after ready | RSS | peak RSS | CPU |\n|---|---|---|---|---|---|\n", p.Settle)
		for _, c := range p.Cases {
			calls := fmt.Sprintf("%.0f", c.CinderCalls)
			if c.CallsByOp != "" {
				calls += " (" + c.CallsByOp + ")"
			}
			fmt.Fprintf(w, "| %s | %.2f s | %s | %.0f MiB | %.0f MiB | %.1f s |\n", c.What, c.Ready.Seconds(), calls, c.Usage.RSSMiB, c.Usage.PeakMiB, c.Usage.CPUSec)
		}
		fmt.Fprintln(w)
	}
	if r.P2 != nil || r.P3 != nil {
		fmt.Fprintf(w, "### P4 memory\n\n")
		if r.P2 != nil {
			fmt.Fprintf(w, "- After P2 (%d claims bound and deleted): RSS %.0f MiB, peak %.0f MiB, CPU %.1f s.\n", r.P2.Claims, r.P2.Usage.RSSMiB, r.P2.Usage.PeakMiB, r.P2.Usage.CPUSec)
		}
		if r.P3 != nil && len(r.P3.Cases) > 0 {
			c := r.P3.Cases[len(r.P3.Cases)-1]
			fmt.Fprintf(w, "- After P3 (%s): RSS %.0f MiB, peak %.0f MiB.\n", c.What, c.Usage.RSSMiB, c.Usage.PeakMiB)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%s\n", endMarker)

	old, err := os.ReadFile(doc)
	if errors.Is(err, os.ErrNotExist) {
		old = []byte("# Performance\n\n" + beginMarker + "\n" + endMarker + "\n")
	} else if err != nil {
		return err
	}
	i, j := bytes.Index(old, []byte(beginMarker)), bytes.Index(old, []byte(endMarker))
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the bench markers", doc)
	}
	out := append(append(append([]byte{}, old[:i]...), figures.String()...), old[j+len(endMarker)+1:]...)
	return os.WriteFile(doc, out, 0o644)
}

func ms(s float64) string {
	if s != s { // NaN
		return "–"
	}
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

func phaseSource(ph string) string {
	switch ph {
	case "queue":
		return "the rest: informer delivery, the library's checks and its Provisioning Event"
	case "pv save":
		return "library's provision duration − our Provision"
	case "bind":
		return "PV seen → claim seen Bound (kube-controller-manager)"
	}
	return "`cinder_provisioner_phase_duration_seconds{phase=\"" + ph + "\"}`"
}

func formatDefaults(d map[string]string) string {
	return joinSorted(d, " ", func(k, v string) string { return fmt.Sprintf("--%s=%s", k, v) })
}

func authWords(auth string) string {
	if auth == "keystone" {
		return "Keystone (a token, reused)"
	}
	return "noauth"
}
