package provisioner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// The Guard keeps what Kubernetes records about our volumes in force, on
// the leader next to the library's controller:
//   - claims held by contract.FinalizerProvisioning (protection.go, release.go):
//     bound ones are released (their PV owns the volume now); unbound ones
//     being deleted are cleaned up and released, also when the library no
//     longer calls Provision for them and when they were deleted while no
//     provisioner ran;
//   - PVs whose reclaim policy an admin changed (policy.go): the policy is
//     mirrored into the volume's metadata, for Cinder-side admins, orphans
//     and the sweep.
// It reads the informers the library's controller shares and makes no
// Cinder call for objects that need nothing (a restart with 10,000 bound
// claims and PVs costs none).

// GuardConfig is what NewGuard needs.
type GuardConfig struct {
	// Provisioner does the work (required).
	Provisioner *Provisioner
	// Claims and Volumes are the shared informers of claims and PVs
	// (required); NewGuard adds its handlers, the caller starts them.
	Claims  cache.SharedIndexInformer
	Volumes cache.SharedIndexInformer
	// Workers is how many objects are worked on at once (default 2).
	Workers int
	// RetryBase and RetryMax bound the backoff of a failed object
	// (defaults 1 s and 5 min).
	RetryBase, RetryMax time.Duration
}

// Guard: see above.
type Guard struct {
	p       *Provisioner
	claims  cache.SharedIndexInformer
	volumes cache.SharedIndexInformer
	queue   workqueue.TypedRateLimitingInterface[guardKey]
	workers int
}

type guardKey struct {
	kind string // kindClaimKey or kindPVKey
	key  string // namespace/name or name
}

const (
	kindClaimKey = "claim"
	kindPVKey    = "pv"
)

// NewGuard checks cfg and adds the Guard's handlers to the informers.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if cfg.Provisioner == nil || cfg.Claims == nil || cfg.Volumes == nil {
		return nil, errors.New("guard: provisioner, claims and volumes informers are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Minute
	}
	g := &Guard{
		p:       cfg.Provisioner,
		claims:  cfg.Claims,
		volumes: cfg.Volumes,
		workers: cfg.Workers,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[guardKey](cfg.RetryBase, cfg.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[guardKey]{Name: "guard"}),
	}
	if _, err := cfg.Claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { g.claimChanged(obj) },
		UpdateFunc: func(_, obj any) { g.claimChanged(obj) },
	}); err != nil {
		return nil, fmt.Errorf("guard: claims handler: %w", err)
	}
	if _, err := cfg.Volumes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { g.volumeChanged(nil, obj) },
		UpdateFunc: func(old, obj any) { g.volumeChanged(old, obj) },
	}); err != nil {
		return nil, fmt.Errorf("guard: volumes handler: %w", err)
	}
	return g, nil
}

func (g *Guard) claimChanged(obj any) {
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || !g.p.needsRelease(claim) {
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(claim)
	if err != nil {
		return
	}
	g.queue.Add(guardKey{kindClaimKey, key})
}

func (g *Guard) volumeChanged(old, obj any) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	oldPV, _ := old.(*corev1.PersistentVolume)
	if g.p.needsMirror(oldPV, pv) {
		g.queue.Add(guardKey{kindPVKey, pv.Name})
	}
}

// Run works until ctx ends, once the informers have synced.
func (g *Guard) Run(ctx context.Context) {
	defer g.queue.ShutDown()
	logger := klog.FromContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), g.claims.HasSynced, g.volumes.HasSynced) {
		return
	}
	logger.V(2).Info("Guard started", "workers", g.workers)
	var wg sync.WaitGroup
	for range g.workers {
		wg.Go(func() { wait.UntilWithContext(ctx, g.work, time.Second) })
	}
	<-ctx.Done()
	g.queue.ShutDown()
	wg.Wait()
}

func (g *Guard) work(ctx context.Context) {
	for g.next(ctx) {
	}
}

func (g *Guard) next(ctx context.Context) bool {
	k, quit := g.queue.Get()
	if quit {
		return false
	}
	defer g.queue.Done(k)
	var (
		again time.Duration
		err   error
	)
	switch k.kind {
	case kindClaimKey:
		again, err = g.syncClaim(ctx, k.key)
	case kindPVKey:
		err = g.syncPV(ctx, k.key)
	}
	switch {
	case err != nil:
		if ctx.Err() == nil {
			utilruntime.HandleErrorWithContext(ctx, err, "Guard: will retry", "kind", k.kind, "key", k.key)
		}
		g.queue.AddRateLimited(k)
	case again > 0:
		g.queue.Forget(k)
		g.queue.AddAfter(k, again)
	default:
		g.queue.Forget(k)
	}
	return true
}

func (g *Guard) syncClaim(ctx context.Context, key string) (time.Duration, error) {
	obj, exists, err := g.claims.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return 0, err
	}
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || !g.p.needsRelease(claim) {
		return 0, nil
	}
	return g.p.release(klog.NewContext(ctx, klog.FromContext(ctx).WithValues("pvc", klog.KObj(claim))), claim)
}

func (g *Guard) syncPV(ctx context.Context, name string) error {
	obj, exists, err := g.volumes.GetIndexer().GetByKey(name)
	if err != nil || !exists {
		return err
	}
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return nil
	}
	return g.p.mirrorPolicy(klog.NewContext(ctx, klog.FromContext(ctx).WithValues("pv", klog.KObj(pv))), pv)
}
