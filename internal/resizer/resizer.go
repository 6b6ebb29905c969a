// Package resizer is the expansion controller: it grows the Cinder volume
// of a claim of ours whose storage request grew, updates the PV's capacity
// and completes the claim the way the PV's transport allows (block mode:
// done here; a ceph-csi RBD filesystem: the kubelet grows it; an iSCSI or
// FC filesystem: refused before anything changes, the kubelet cannot grow
// it). It runs on the leader next to the provisioner's controller.
package resizer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// Defaults of Config.
const (
	defaultPassTimeout = 2 * time.Minute
	defaultBaseDelay   = time.Second
	defaultMaxDelay    = 5 * time.Minute
	// defaultResync brings every claim of ours past the queue again now and
	// then; refusals stay remembered, so it costs no Cinder call for them.
	defaultResync = 10 * time.Minute
)

// Config configures New.
type Config struct {
	Cinder   cinder.Client
	Kube     kubernetes.Interface
	Recorder record.EventRecorder
	// Name is the provisioner name: PVs whose identity annotation says it
	// are ours, claims whose storage-provisioner annotation says it are
	// watched.
	Name string
	// Workers resize that many claims at once (default 1).
	Workers int
	// PassTimeout bounds one pass over a claim, the wait for Cinder's
	// extend included (default 2 min); a pass cut short is taken up again.
	PassTimeout time.Duration
	// RateLimiter spaces the retries of a claim (default: exponential from
	// 1 s to 5 min per claim).
	RateLimiter workqueue.TypedRateLimiter[string]
	// Resync is the informer's resync period (default 10 min; negative: none).
	Resync time.Duration
	// Claims is a claim informer shared with others (the provisioner's
	// controller): Run adds its handler and waits for it to sync, but never
	// starts or stops it. nil: Run makes and runs its own.
	Claims  cache.SharedIndexInformer
	Metrics *Metrics
}

// Resizer is the expansion controller.
type Resizer struct {
	cinder      cinder.Client
	kube        kubernetes.Interface
	recorder    record.EventRecorder
	name        string
	workers     int
	passTimeout time.Duration
	limiter     workqueue.TypedRateLimiter[string]
	resync      time.Duration
	metrics     *Metrics
	claims      cache.SharedIndexInformer

	mu      sync.Mutex
	refusal map[types.UID]refusalKey // final refusals, by claim
	// settled: claims whose last extend Cinder refused or failed for sure
	// (external-resizer's final errors); forgotten at the next outcome that
	// says otherwise, and with the process.
	settled map[types.UID]bool
}

// refusalKey is what a refusal was for: the same request of the same claim
// is refused again without a Cinder call or a new Event.
type refusalKey struct {
	wantGiB int64
	reason  string
}

// New checks cfg and returns a Resizer; Run starts it.
func New(cfg Config) (*Resizer, error) {
	var errs []error
	if cfg.Cinder == nil {
		errs = append(errs, errors.New("no Cinder client"))
	}
	if cfg.Kube == nil {
		errs = append(errs, errors.New("no Kubernetes client"))
	}
	if cfg.Recorder == nil {
		errs = append(errs, errors.New("no event recorder"))
	}
	if cfg.Name == "" {
		errs = append(errs, errors.New("provisioner name is empty"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("resizer config: %w", errors.Join(errs...))
	}
	r := &Resizer{
		cinder: cfg.Cinder, kube: cfg.Kube, recorder: cfg.Recorder, name: cfg.Name,
		workers: cfg.Workers, passTimeout: cfg.PassTimeout, limiter: cfg.RateLimiter,
		resync: cfg.Resync, metrics: cfg.Metrics, claims: cfg.Claims, refusal: map[types.UID]refusalKey{},
		settled: map[types.UID]bool{},
	}
	if r.workers <= 0 {
		r.workers = 1
	}
	if r.passTimeout <= 0 {
		r.passTimeout = defaultPassTimeout
	}
	if r.resync == 0 {
		r.resync = defaultResync
	} else if r.resync < 0 {
		r.resync = 0
	}
	return r, nil
}

// Run watches claims and resizes them until ctx ends, then waits for its
// workers. Each Run has its own informer and queue, so a replica that
// leads again starts afresh.
func (r *Resizer) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("resizer")
	ctx = klog.NewContext(ctx, logger)
	limiter := r.limiter
	if limiter == nil {
		limiter = workqueue.NewTypedItemExponentialFailureRateLimiter[string](defaultBaseDelay, defaultMaxDelay)
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[string]{Name: "resizer"})
	claims := r.claims
	var factory informers.SharedInformerFactory
	if claims == nil {
		factory = informers.NewSharedInformerFactory(r.kube, r.resync)
		claims = factory.Core().V1().PersistentVolumeClaims().Informer()
	}
	enqueue := func(obj any) {
		if c, ok := obj.(*corev1.PersistentVolumeClaim); ok && r.wants(c) {
			if key, err := cache.MetaNamespaceKeyFunc(c); err == nil {
				queue.Add(key)
			}
		}
	}
	handle, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if c, ok := obj.(*corev1.PersistentVolumeClaim); ok {
				r.forget(c.UID)
			}
		},
	})
	if err != nil {
		logger.Error(err, "Cannot watch claims: the resizer does not run")
		return
	}
	if factory != nil {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
	} else {
		defer func() { _ = claims.RemoveEventHandler(handle) }()
	}
	logger.Info("Starting the resizer", "workers", r.workers)
	if !cache.WaitForCacheSync(ctx.Done(), handle.HasSynced) {
		queue.ShutDown()
		return
	}
	var wg sync.WaitGroup
	for range r.workers {
		wg.Go(func() {
			for r.next(ctx, queue) {
			}
		})
	}
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	logger.Info("Resizer stopped")
}

// next runs one pass over the next claim of the queue; false once the
// queue is shut down.
func (r *Resizer) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	if r.pass(ctx, key).out.requeue() {
		queue.AddRateLimited(key)
		return true
	}
	queue.Forget(key)
	return true
}

// wants is the informer's filter: a Bound claim of our provisioner whose
// request is above what its status shows (a grow to make or to finish).
func (r *Resizer) wants(c *corev1.PersistentVolumeClaim) bool {
	if c.Status.Phase != corev1.ClaimBound || c.Spec.VolumeName == "" {
		return false
	}
	if !contract.ProvisionedBy(c.Annotations, r.name) {
		return false
	}
	req, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return false
	}
	have, ok := c.Status.Capacity[corev1.ResourceStorage]
	return !ok || req.Cmp(have) > 0
}

func (r *Resizer) remembered(uid types.UID, wantGiB int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.refusal[uid]
	return ok && k.wantGiB == wantGiB
}

func (r *Resizer) remember(uid types.UID, wantGiB int64, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusal[uid] = refusalKey{wantGiB: wantGiB, reason: reason}
}

func (r *Resizer) forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.refusal, uid)
	delete(r.settled, uid)
}

func (r *Resizer) isSettled(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settled[uid]
}

// settle keeps whether the claim's last extend is known to have ended in a
// refusal or failure: as external-resizer's final errors, set by one and
// cleared by any outcome after which an extend may be under way again.
func (r *Resizer) settle(uid types.UID, res result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case res.settled:
		r.settled[uid] = true
	case res.out == idle, res.out == gone, res.out == refusedAgain:
	default:
		delete(r.settled, uid)
	}
}
