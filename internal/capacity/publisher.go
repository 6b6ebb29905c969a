// Package capacity publishes, on the leader, how much room Cinder has left
// for each StorageClass of ours and each topology segment (zone) as
// storage.k8s.io/v1 CSIStorageCapacity objects, and keeps the CSIDriver
// object with storageCapacity: true that makes kube-scheduler's
// volumebinding plugin read them: a pod with an unbound WaitForFirstConsumer
// claim is then put only on nodes whose segment has room for the claim's
// request. See docs/capacity.md.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Labels and annotations of the objects the publisher owns.
const (
	// LabelManagedBy marks the CSIDriver and CSIStorageCapacity objects
	// this program made.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "cinder-provisioner"
	// LabelDriver names the provisioner (the CSIDriver) a
	// CSIStorageCapacity object is for: only objects carrying ours are
	// updated or deleted.
	LabelDriver = "cinder.openstack.org/capacity-driver"
	// AnnotationSegment names the object's topology segment
	// ("zone=<label value>" or "no-zone-label").
	AnnotationSegment = "cinder.openstack.org/capacity-segment"
)

// DefaultInterval is the default time between two refreshes.
const DefaultInterval = time.Minute

// Config configures New.
type Config struct {
	Cinder cinder.CapacityReader
	Kube   kubernetes.Interface
	// Name is the provisioner name: the StorageClasses whose provisioner it
	// is are published, and the CSIDriver carries it (ValidateDriverName).
	Name string
	// Namespace holds the CSIStorageCapacity objects.
	Namespace string
	// ZoneKey is the node label naming a node's zone (the provisioner's
	// --topology-zone-key).
	ZoneKey string
	// Interval between refreshes (default DefaultInterval).
	Interval time.Duration
	Metrics  *Metrics
}

// Publisher keeps the CSIStorageCapacity objects of one provisioner.
type Publisher struct {
	cinder    cinder.CapacityReader
	kube      kubernetes.Interface
	name      string
	namespace string
	zoneKey   string
	interval  time.Duration
	metrics   *Metrics

	poolsForbidden bool // logged once
}

// New checks the configuration.
func New(c Config) (*Publisher, error) {
	var errs []error
	if c.Cinder == nil || c.Kube == nil {
		errs = append(errs, errors.New("capacity: Cinder and Kube are required"))
	}
	if err := ValidateDriverName(c.Name); err != nil {
		errs = append(errs, err)
	}
	if c.Namespace == "" || c.ZoneKey == "" {
		errs = append(errs, errors.New("capacity: Namespace and ZoneKey are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	return &Publisher{cinder: c.Cinder, kube: c.Kube, name: c.Name, namespace: c.Namespace,
		zoneKey: c.ZoneKey, interval: c.Interval, metrics: c.Metrics}, nil
}

// Run refreshes at once, then every interval, until ctx ends. A failed
// refresh changes nothing: the objects keep their last values (kube-
// scheduler goes on using them) until a refresh succeeds.
func (p *Publisher) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("capacity")
	ctx = klog.NewContext(ctx, logger)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		if err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Capacity not refreshed; the published objects keep their last values", "retryIn", p.interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh ensures the CSIDriver, reads Cinder and brings the
// CSIStorageCapacity objects in line: one per class of ours and segment,
// created, updated when its capacity or topology changed, deleted when its
// class or segment is gone.
func (p *Publisher) Refresh(ctx context.Context) error {
	outcome, err := p.refresh(ctx)
	p.metrics.observe(outcome)
	return err
}

func (p *Publisher) refresh(ctx context.Context) (string, error) {
	driver, err := ensureDriver(ctx, p.kube, p.name)
	if err != nil {
		return outcomeFailed, err
	}
	list, err := p.kube.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return outcomeFailed, fmt.Errorf("list StorageClasses: %w", err)
	}
	var classes []classSpec
	for i := range list.Items {
		if list.Items[i].Provisioner == p.name {
			classes = append(classes, specOf(&list.Items[i], p.zoneKey))
		}
	}
	outcome := outcomePublished
	state := &cinderState{}
	if len(classes) > 0 { // no class of ours: nothing to ask Cinder
		if outcome, err = p.readCinder(ctx, state); err != nil {
			return outcomeFailed, err
		}
	}
	var want []object
	for _, c := range classes {
		for _, seg := range c.segments(p.zoneKey, state.zones) {
			want = append(want, object{class: c.name, segment: seg, room: state.roomFor(c, seg)})
		}
	}
	if err := p.sync(ctx, driver, want); err != nil {
		return outcomeFailed, err
	}
	return outcome, nil
}

// readCinder reads the limits, the zones, the pools (when allowed) and,
// when the pools are readable, the volume types' backends: 5 requests with
// admin credentials (the pools' zones come from the services list), 3
// without (the pool read answers 403).
func (p *Publisher) readCinder(ctx context.Context, s *cinderState) (string, error) {
	var err error
	if s.limits, err = p.cinder.ProjectLimits(ctx); err != nil {
		return outcomeFailed, err
	}
	if s.zones, err = p.cinder.AvailabilityZones(ctx); err != nil {
		return outcomeFailed, err
	}
	outcome := outcomePublished
	s.pools, err = p.cinder.Pools(ctx)
	switch {
	case errors.Is(err, cinder.ErrUnauthorized):
		outcome = outcomeQuotaOnly
		logger := klog.FromContext(ctx)
		if !p.poolsForbidden {
			p.poolsForbidden = true
			logger.Info("Cinder's scheduler pool stats are not readable with these credentials (admin only by default): capacity is the project's quota left alone", "err", err)
		}
	case err != nil:
		return outcomeFailed, err
	case s.pools == nil:
		s.pools = []cinder.Pool{} // readable, and no pool at all
	}
	if s.pools != nil {
		if s.backends, err = p.cinder.VolumeTypeBackends(ctx); err != nil {
			return outcomeFailed, err
		}
	}
	return outcome, nil
}

// object is one CSIStorageCapacity the publisher wants.
type object struct {
	class   string
	segment segment
	room    room
}

func (o object) key() string { return o.class + "\x00" + o.segment.key }
