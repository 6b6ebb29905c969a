// Package snapshotter turns VolumeSnapshots of our claims into Cinder
// snapshots. external-snapshotter's snapshot-controller (the "common
// controller") binds a dynamic VolumeSnapshot to the content named
// snapcontent-<uid> when one exists and points back to it by UID; it makes
// that content itself only for CSI PVs, which ours (iSCSI, FC) are not. So
// for a VolumeSnapshot whose class's driver is our provisioner name and
// whose claim is bound to a PV of ours, the snapshotter makes the content,
// then plays the part of the CSI sidecar (csi-snapshotter) for it: it makes
// the Cinder snapshot, writes the content's status, and deletes the Cinder
// snapshot when the content goes with deletionPolicy Delete. It runs on
// the leader next to the provisioner's controller.
package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapinformers "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Defaults of Config.
const (
	defaultPassTimeout  = time.Minute
	defaultPollInterval = 2 * time.Second
	defaultBaseDelay    = time.Second
	defaultMaxDelay     = 5 * time.Minute
	defaultResync       = 10 * time.Minute
	defaultStale        = 2 * time.Minute
)

// Config configures New.
type Config struct {
	Cinder    cinder.Client
	Kube      kubernetes.Interface
	Snapshots snapclient.Interface
	Recorder  record.EventRecorder
	// Name is the provisioner name: VolumeSnapshotClasses whose driver is
	// Name are ours, PVs whose identity annotation says it too.
	Name string
	// ClusterID goes into each Cinder snapshot's metadata.
	ClusterID string
	// Workers serve that many objects at once (default 1).
	Workers int
	// PassTimeout bounds one pass (default 1 min).
	PassTimeout time.Duration
	// PollInterval is how soon a snapshot Cinder is still creating or
	// deleting is looked at again (default 2 s).
	PollInterval time.Duration
	// RateLimiter spaces the retries of an object (default: exponential
	// from 1 s to 5 min).
	RateLimiter workqueue.TypedRateLimiter[string]
	// Resync is the informers' resync period (default 10 min; negative:
	// none).
	Resync time.Duration
	// Metrics counts pass outcomes (nil: none).
	Metrics *Metrics
	// StaleCreating is how long a Cinder snapshot may stay creating before
	// a Warning says it is stuck (default 2 min): cinder-api killed between
	// its database insert and its cast to cinder-volume leaves one creating
	// for ever, which only an admin can reset. Only an Event depends on it.
	StaleCreating time.Duration
	// Now is the clock StaleCreating is measured with (default time.Now).
	Now func() time.Time
}

// Snapshotter is the snapshot controller.
type Snapshotter struct {
	cinder       cinder.Client
	kube         kubernetes.Interface
	snaps        snapclient.Interface
	recorder     record.EventRecorder
	name         string
	clusterID    string
	workers      int
	passTimeout  time.Duration
	pollInterval time.Duration
	limiter      workqueue.TypedRateLimiter[string]
	resync       time.Duration
	metrics      *Metrics
	stale        time.Duration
	now          func() time.Time
	marked       sync.Map // volume ids marked contract.MetaSnapshotted

	// set by Run
	classes  snaplisters.VolumeSnapshotClassLister
	contents snaplisters.VolumeSnapshotContentLister
	vss      snaplisters.VolumeSnapshotLister
}

// New checks cfg and returns a Snapshotter; Run starts it.
func New(cfg Config) (*Snapshotter, error) {
	var errs []error
	if cfg.Cinder == nil {
		errs = append(errs, errors.New("no Cinder client"))
	}
	if cfg.Kube == nil || cfg.Snapshots == nil {
		errs = append(errs, errors.New("no Kubernetes client"))
	}
	if cfg.Recorder == nil {
		errs = append(errs, errors.New("no event recorder"))
	}
	if cfg.Name == "" {
		errs = append(errs, errors.New("provisioner name is empty"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("snapshotter config: %w", errors.Join(errs...))
	}
	s := &Snapshotter{
		cinder: cfg.Cinder, kube: cfg.Kube, snaps: cfg.Snapshots, recorder: cfg.Recorder,
		name: cfg.Name, clusterID: cfg.ClusterID, workers: cfg.Workers, passTimeout: cfg.PassTimeout,
		pollInterval: cfg.PollInterval, limiter: cfg.RateLimiter, resync: cfg.Resync, metrics: cfg.Metrics,
		stale: cfg.StaleCreating, now: cfg.Now,
	}
	if s.stale <= 0 {
		s.stale = defaultStale
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.workers <= 0 {
		s.workers = 1
	}
	if s.passTimeout <= 0 {
		s.passTimeout = defaultPassTimeout
	}
	if s.pollInterval <= 0 {
		s.pollInterval = defaultPollInterval
	}
	if s.resync == 0 {
		s.resync = defaultResync
	} else if s.resync < 0 {
		s.resync = 0
	}
	return s, nil
}

// Queue keys: a VolumeSnapshot ("s/<namespace>/<name>") or a content
// ("c/<name>").
const (
	prefixSnapshot = "s/"
	prefixContent  = "c/"
)

// Run watches VolumeSnapshots, their contents and classes and serves the
// ones of ours until ctx ends, then waits for its workers. Each Run has its
// own informers and queue, so a replica that leads again starts afresh.
// Without the snapshot CRDs it logs once and waits for ctx to end.
func (s *Snapshotter) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("snapshotter")
	ctx = klog.NewContext(ctx, logger)
	if _, err := s.snaps.SnapshotV1().VolumeSnapshotClasses().List(ctx, metaListOne); err != nil {
		logger.Info("The snapshot API is not served (external-snapshotter's CRDs are not installed?): VolumeSnapshots are not served", "err", err.Error())
		<-ctx.Done()
		return
	}
	limiter := s.limiter
	if limiter == nil {
		limiter = workqueue.NewTypedItemExponentialFailureRateLimiter[string](defaultBaseDelay, defaultMaxDelay)
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[string]{Name: "snapshotter"})
	factory := snapinformers.NewSharedInformerFactory(s.snaps, s.resync)
	v1 := factory.Snapshot().V1()
	vsInformer, contentInformer, classInformer := v1.VolumeSnapshots().Informer(), v1.VolumeSnapshotContents().Informer(), v1.VolumeSnapshotClasses().Informer()
	s.vss, s.contents, s.classes = v1.VolumeSnapshots().Lister(), v1.VolumeSnapshotContents().Lister(), v1.VolumeSnapshotClasses().Lister()

	addSnapshot := func(obj any) {
		if vs, ok := obj.(*snapv1.VolumeSnapshot); ok && vs.Spec.Source.PersistentVolumeClaimName != nil && vs.DeletionTimestamp == nil {
			queue.Add(prefixSnapshot + vs.Namespace + "/" + vs.Name)
		}
	}
	addContent := func(obj any) {
		if c, ok := obj.(*snapv1.VolumeSnapshotContent); ok && c.Spec.Driver == s.name {
			queue.Add(prefixContent + c.Name)
		}
	}
	var handles []cache.ResourceEventHandlerRegistration
	for _, h := range []struct {
		inf cache.SharedIndexInformer
		add func(any)
	}{{vsInformer, addSnapshot}, {contentInformer, addContent}} {
		reg, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    h.add,
			UpdateFunc: func(_, obj any) { h.add(obj) },
		})
		if err != nil {
			logger.Error(err, "Cannot watch snapshots: the snapshotter does not run")
			return
		}
		handles = append(handles, reg)
	}
	_ = classInformer // started with the factory, for the lister
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	logger.Info("Starting the snapshotter", "workers", s.workers, "driver", s.name)
	if !cache.WaitForCacheSync(ctx.Done(), handles[0].HasSynced, handles[1].HasSynced, classInformer.HasSynced) {
		queue.ShutDown()
		return
	}
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for s.next(ctx, queue) {
			}
		})
	}
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	logger.Info("Snapshotter stopped")
}

// next runs one pass over the next key of the queue; false once the queue
// is shut down.
func (s *Snapshotter) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	res := s.pass(ctx, key)
	switch res.out {
	case inProgress:
		queue.Forget(key)
		queue.AddAfter(key, s.pollInterval)
	case retry:
		queue.AddRateLimited(key)
	default:
		queue.Forget(key)
	}
	// a content made or released: look at it (and its snapshot) at once
	if res.out == contentCreated {
		if ns, name, ok := strings.Cut(strings.TrimPrefix(key, prefixSnapshot), "/"); ok {
			if vs, err := s.vss.VolumeSnapshots(ns).Get(name); err == nil {
				queue.Add(prefixContent + contentName(vs))
			}
		}
	}
	return true
}

// pass runs one pass over key, records its Event and metric, and returns
// its result.
func (s *Snapshotter) pass(ctx context.Context, key string) result {
	ctx, cancel := context.WithTimeout(ctx, s.passTimeout)
	defer cancel()
	var res result
	switch {
	case strings.HasPrefix(key, prefixSnapshot):
		ns, name, _ := strings.Cut(strings.TrimPrefix(key, prefixSnapshot), "/")
		res = s.syncSnapshot(ctx, ns, name)
	case strings.HasPrefix(key, prefixContent):
		res = s.syncContent(ctx, strings.TrimPrefix(key, prefixContent))
	default:
		return result{out: idle}
	}
	s.metrics.Observe(res.out)
	logger := klog.FromContext(ctx).WithValues("key", key, "outcome", res.out.String())
	switch {
	case res.out == retry && res.err != nil:
		logger.Error(res.err, "Snapshot not finished, retrying", "reason", res.reason)
	case res.out != idle && res.out != inProgress:
		logger.V(2).Info("Snapshot pass", "reason", res.reason)
	default:
		logger.V(4).Info("Snapshot pass")
	}
	if res.on != nil && res.reason != "" && res.out.eventType() != "" {
		s.recorder.Event(res.on, res.out.eventType(), res.reason, res.message)
	}
	return res
}
