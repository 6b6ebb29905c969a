// Command bench measures cinder-provisioner on the local stack (make
// local-up) and writes docs/performance.md:
//
//   - P1 latency: claims one after another, PVC created -> Bound, split by
//     phase from the provisioner's own Prometheus histograms;
//   - P2 burst: N claims at once, time to all Bound and to all deleted,
//     next to a floor measured in the same run: the same Cinder calls at
//     the same concurrency, straight on the API, no Kubernetes;
//     then the same burst, smaller, at several worker counts;
//   - P3 restart at scale: start to ready with 10,000 PVs of ours, and with
//     10,000 Pending claims of another provisioner: Cinder calls at
//     start-up, RSS and CPU seconds;
//   - P4 memory: RSS after P2 and after P3.
//
// It prints every figure as it goes. Run it with make bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

type config struct {
	p1Claims    int
	p2Claims    int
	workers     int
	sweep       []int
	sweepClaims int
	p3Objects   int
	qps         float64
	burst       int
	extraArgs   []string
	only        map[string]bool
	doc         string
	binary      string
	pin         bool
	p2Kubectl   bool
	auth        string
	timeout     time.Duration
}

func main() {
	var cfg config
	var sweep, only, extra string
	flag.IntVar(&cfg.p1Claims, "p1-claims", 30, "P1: claims provisioned one after another")
	flag.IntVar(&cfg.p2Claims, "p2-claims", 200, "P2: claims created at once")
	flag.IntVar(&cfg.workers, "workers", 0, "provisioner --workers for P1 and P2 (0: the provisioner's default)")
	flag.StringVar(&sweep, "sweep-workers", "1,2,4,8,16", "P2: worker counts of the throughput sweep (empty: no sweep)")
	flag.IntVar(&cfg.sweepClaims, "sweep-claims", 60, "P2: claims per run of the worker sweep")
	flag.IntVar(&cfg.p3Objects, "p3-objects", 10000, "P3: PVs of ours, then Pending claims of another provisioner")
	flag.Float64Var(&cfg.qps, "kube-api-qps", 0, "provisioner --kube-api-qps (0: its default)")
	flag.IntVar(&cfg.burst, "kube-api-burst", 0, "provisioner --kube-api-burst (0: its default)")
	flag.StringVar(&extra, "provisioner-args", "", "more provisioner flags, space-separated")
	flag.StringVar(&only, "only", "p1,p2,p3", "parts to run")
	flag.StringVar(&cfg.binary, "provisioner-binary", "", "provisioner binary (empty: _output/bin/cinder-provisioner, as make build writes it)")
	flag.StringVar(&cfg.auth, "auth", "keystone", "how ours and the floor reach Cinder: keystone (tokens from Keystone, the usual deployment) or noauth")
	flag.BoolVar(&cfg.p2Kubectl, "p2-kubectl", false, "P2: run the burst once more as users make one, claims from one kubectl apply -f and deleted by kubectl delete pvc --all, right after the floor")
	flag.BoolVar(&cfg.pin, "pin", false, "Cinder on CPU 0, Kubernetes, the provisioner and the bench on CPU 1 (as separate machines would be); reset at the end")
	flag.StringVar(&cfg.doc, "doc", "docs/performance.md", "report to rewrite between its markers (empty: none)")
	flag.DurationVar(&cfg.timeout, "timeout", 40*time.Minute, "bound of the whole run")
	klog.InitFlags(nil)
	flag.Parse()
	for _, w := range strings.Split(sweep, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -sweep-workers %q: want positive integers\n", sweep)
			os.Exit(2)
		}
		cfg.sweep = append(cfg.sweep, n)
	}
	cfg.extraArgs = strings.Fields(extra)
	cfg.only = map[string]bool{}
	for _, p := range strings.Split(only, ",") {
		cfg.only[strings.TrimSpace(p)] = true
	}

	if err := runWithin(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// runWithin runs the bench until it ends, a signal or cfg.timeout.
func runWithin(cfg config) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelRun := context.WithTimeout(ctx, cfg.timeout)
	defer cancelRun()
	return run(ctx, cfg)
}

func run(ctx context.Context, cfg config) error {
	b, err := newBench(ctx, cfg.binary, cfg.auth)
	if err != nil {
		return err
	}
	defer b.cleanup()
	if cfg.pin {
		if err := pinStack(); err != nil {
			return err
		}
		defer unpinStack()
	}
	rep := &report{Started: time.Now(), Command: "make bench" + argsSuffix(), Machine: machine(), Pinned: cfg.pin, Auth: cfg.auth}
	rep.Defaults = b.defaults(cfg)

	if cfg.only["p1"] {
		if rep.P1, err = b.latency(ctx, cfg); err != nil {
			return fmt.Errorf("P1: %w", err)
		}
		rep.P1.print(os.Stdout)
	}
	if cfg.only["p2"] {
		if rep.P2, err = b.burst(ctx, cfg, cfg.p2Claims, cfg.workers, true, false); err != nil {
			return fmt.Errorf("P2: %w", err)
		}
		if cfg.p2Kubectl {
			if rep.P2Kubectl, err = b.burst(ctx, cfg, cfg.p2Claims, cfg.workers, false, true); err != nil {
				return fmt.Errorf("P2 with kubectl: %w", err)
			}
		}
		for _, w := range cfg.sweep {
			r, err := b.burst(ctx, cfg, cfg.sweepClaims, w, false, false)
			if err != nil {
				return fmt.Errorf("P2 sweep, %d workers: %w", w, err)
			}
			rep.Sweep = append(rep.Sweep, r)
		}
	}
	if cfg.only["p3"] {
		if rep.P3, err = b.restart(ctx, cfg); err != nil {
			return fmt.Errorf("P3: %w", err)
		}
		rep.P3.print(os.Stdout)
	}
	rep.Finished = time.Now()
	if cfg.doc == "" {
		return nil
	}
	doc := filepath.Join(b.s.RepoRoot, cfg.doc)
	if err := rep.write(doc); err != nil {
		return fmt.Errorf("write %s: %w", doc, err)
	}
	fmt.Printf("wrote %s\n", doc)
	return nil
}

func argsSuffix() string {
	if a := os.Getenv("BENCH_ARGS"); a != "" {
		return " BENCH_ARGS='" + a + "'"
	}
	return ""
}
