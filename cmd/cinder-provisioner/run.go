package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// errLeaseLost is returned when another replica took the Lease over: the
// process exits non-zero so that it restarts as a standby.
var errLeaseLost = errors.New("lost the leader election lease")

// run serves /metrics and /healthz and runs the controller, behind leader
// election if enabled, until ctx ends. On return every worker has stopped
// and the Lease, if held, is released.
func (a *app) run(ctx context.Context) error {
	defer a.broadcaster.Shutdown()
	var elector *leaderElector
	if a.opts.LeaderElect {
		var err error
		if elector, err = a.newLeaderElector(ctx); err != nil {
			if a.server != nil {
				_ = a.server.listener.Close()
			}
			return err
		}
	}
	if a.server != nil {
		if elector != nil {
			a.server.healthCheck = elector.healthz.Check
		}
		a.server.start(ctx)
		defer a.server.stop(ctx)
	}
	if elector == nil {
		a.runController(ctx)
		return nil
	}
	return elector.run(ctx)
}

// runController runs the library's controller, the Guard (claims held by
// the provisioning finalizer, reclaim policies), the sweep for
// unreferenced volumes, the resizer, the snapshotter and the capacity publisher until ctx ends, and waits for their
// workers. ctx is the leader's: every Cinder write stops with it, rollbacks
// included (cinder.WithFence).
func (a *app) runController(ctx context.Context) {
	ctx = cinder.WithFence(ctx)
	guards := make(chan struct{})
	go func() {
		defer close(guards)
		a.guard.Run(ctx)
	}()
	sweeps := make(chan struct{})
	go func() {
		defer close(sweeps)
		a.provisioner.RunSweeps(ctx, a.opts.SweepInterval)
	}()
	resizes := make(chan struct{})
	go func() {
		defer close(resizes)
		if a.resizer != nil {
			a.resizer.Run(ctx)
		}
	}()
	snapshots := make(chan struct{})
	go func() {
		defer close(snapshots)
		if a.snapshotter != nil {
			a.snapshotter.Run(ctx)
		}
	}()
	capacities := make(chan struct{})
	go func() {
		defer close(capacities)
		if a.capacity != nil {
			a.capacity.Run(ctx)
		}
	}()
	// the library does not start informers it was given; the resizer waits
	// for the claims' to sync
	a.informers.Start(ctx.Done())
	a.controller.Run(ctx)
	a.workers.Wait()
	<-guards
	<-sweeps
	<-resizes
	<-snapshots
	<-capacities
	a.informers.Shutdown()
}

// leaderElector runs the controller only while it holds the Lease, and on a
// signal stops the controller, waits for its workers, then releases the
// Lease so that a standby need not wait for it to expire.
type leaderElector struct {
	app     *app
	config  leaderelection.LeaderElectionConfig
	healthz *leaderelection.HealthzAdaptor

	// electionCtx outlives the root context until the controller has
	// stopped: cancelling it makes client-go release the Lease.
	electionCtx    context.Context
	cancelElection context.CancelFunc

	mu       sync.Mutex
	leading  bool          // lead is running the controller
	finished bool          // the election has ended: lead must not start
	lost     bool          // the election ended without a signal
	done     chan struct{} // closed when a leading controller has stopped
}

// leaseHealthTimeout is how long past its expiry a Lease the leader failed to
// renew may stay before /healthz fails.
const leaseHealthTimeout = 20 * time.Second

func (a *app) newLeaderElector(ctx context.Context) (*leaderElector, error) {
	hostname, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("leader election identity: %w", err)
	}
	// The library's Lease name, so that any mix of versions elects one leader.
	leaseName := strings.ReplaceAll(a.opts.ProvisionerName, "/", "-")
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock,
		a.opts.LeaderElectNamespace, leaseName,
		a.kube.CoreV1(), a.kube.CoordinationV1(),
		resourcelock.ResourceLockConfig{
			Identity:      hostname + "_" + string(uuid.NewUUID()),
			EventRecorder: a.recorder,
		})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	le := &leaderElector{
		app:     a,
		healthz: leaderelection.NewLeaderHealthzAdaptor(leaseHealthTimeout),
		done:    make(chan struct{}),
	}
	le.electionCtx, le.cancelElection = context.WithCancel(context.WithoutCancel(ctx))
	le.config = leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            leaseName,
		LeaseDuration:   a.opts.LeaderElectLeaseDuration,
		RenewDeadline:   a.opts.LeaderElectRenewDeadline,
		RetryPeriod:     a.opts.LeaderElectRetryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        le.healthz,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaderCtx context.Context) { le.lead(ctx, leaderCtx) },
			OnStoppedLeading: func() { le.stoppedLeading(ctx) },
			OnNewLeader: func(identity string) {
				klog.FromContext(ctx).Info("Leader", "lease", klog.KRef(a.opts.LeaderElectNamespace, leaseName), "identity", identity)
			},
		},
	}
	return le, nil
}

// run campaigns for the Lease until ctx ends or the Lease is lost.
func (le *leaderElector) run(ctx context.Context) error {
	elector, err := leaderelection.NewLeaderElector(le.config)
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.healthz.SetLeaderElection(elector)
	// A signal while still campaigning ends the campaign; while leading,
	// lead ends it after the controller has stopped.
	stop := context.AfterFunc(ctx, func() {
		le.mu.Lock()
		defer le.mu.Unlock()
		if !le.leading {
			le.cancelElection()
		}
	})
	defer stop()
	defer le.cancelElection()

	// candidate: this process's identity in the Lease (a follower logs the
	// holder's too, as "Leader")
	klog.FromContext(ctx).Info("Waiting for the leader election lease", "lease", klog.KRef(le.app.opts.LeaderElectNamespace, le.config.Name), "candidate", le.config.Lock.Identity())
	elector.Run(klog.NewContext(le.electionCtx, klog.FromContext(ctx)))

	le.mu.Lock()
	le.finished = true
	leading, lost := le.leading, le.lost
	le.mu.Unlock()
	if leading {
		<-le.done // the controller's workers have stopped
	}
	if lost {
		return errLeaseLost
	}
	return nil
}

// lead runs the controller while this replica holds the Lease: until the
// Lease is lost (leaderCtx) or a signal arrives (rootCtx).
func (le *leaderElector) lead(rootCtx, leaderCtx context.Context) {
	le.mu.Lock()
	if le.finished || rootCtx.Err() != nil || leaderCtx.Err() != nil {
		le.mu.Unlock()
		return // stopped or lost while acquiring; run releases the Lease
	}
	le.leading = true
	le.mu.Unlock()
	defer close(le.done)
	// Release the Lease only once the controller has stopped.
	defer le.cancelElection()

	ctx, cancel := context.WithCancel(leaderCtx)
	defer cancel()
	stop := context.AfterFunc(rootCtx, cancel)
	defer stop()
	klog.FromContext(rootCtx).Info("Became leader, starting the controller")
	le.app.runController(klog.NewContext(ctx, klog.FromContext(rootCtx)))
}

// stoppedLeading is called when the election ends. Without a signal, it
// ends only when the Lease could not be renewed.
func (le *leaderElector) stoppedLeading(rootCtx context.Context) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if rootCtx.Err() == nil {
		le.lost = true
	}
}
