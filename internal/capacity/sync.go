package capacity

import (
	"context"
	"errors"
	"fmt"

	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
)

// objectNamePrefix is the generateName of the CSIStorageCapacity objects,
// as external-provisioner's.
const objectNamePrefix = "csisc-"

// sync creates, updates and deletes the CSIStorageCapacity objects labelled
// with our driver so that there is exactly one per wanted object. Every
// object is owned by the CSIDriver: deleting the CSIDriver (to turn the
// feature off) lets the garbage collector remove them all.
func (p *Publisher) sync(ctx context.Context, driver *storagev1.CSIDriver, want []object) error {
	logger := klog.FromContext(ctx)
	client := p.kube.StorageV1().CSIStorageCapacities(p.namespace)
	selector := labels.SelectorFromSet(labels.Set{LabelDriver: p.name}).String()
	list, err := client.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list CSIStorageCapacities in %s: %w", p.namespace, err)
	}
	have := map[string]*storagev1.CSIStorageCapacity{}
	var errs []error
	for i := range list.Items {
		c := &list.Items[i]
		key := c.StorageClassName + "\x00" + c.Annotations[AnnotationSegment]
		if have[key] != nil { // a duplicate: keep one
			errs = append(errs, p.delete(ctx, c))
			continue
		}
		have[key] = c
	}
	owner := metav1.OwnerReference{APIVersion: "storage.k8s.io/v1", Kind: "CSIDriver", Name: driver.Name, UID: driver.UID}
	for _, o := range want {
		desired := p.objectFor(o, owner)
		cur := have[o.key()]
		delete(have, o.key())
		if cur == nil {
			created, err := client.Create(ctx, desired, metav1.CreateOptions{})
			if err != nil {
				errs = append(errs, fmt.Errorf("create CSIStorageCapacity for class %s, %s: %w", o.class, o.segment.key, err))
				continue
			}
			logger.V(2).Info("Published capacity", "object", klog.KObj(created), "storageClass", o.class, "segment", o.segment.key,
				"capacity", created.Capacity, "maximumVolumeSize", created.MaximumVolumeSize)
			continue
		}
		if sameObject(cur, desired) {
			continue
		}
		upd := cur.DeepCopy()
		upd.Capacity, upd.MaximumVolumeSize, upd.NodeTopology = desired.Capacity, desired.MaximumVolumeSize, desired.NodeTopology
		upd.OwnerReferences = desired.OwnerReferences
		if _, err := client.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("update CSIStorageCapacity %s: %w", cur.Name, err))
			continue
		}
		logger.V(2).Info("Updated capacity", "object", klog.KObj(cur), "storageClass", o.class, "segment", o.segment.key,
			"capacity", desired.Capacity, "maximumVolumeSize", desired.MaximumVolumeSize)
	}
	for _, c := range have { // classes or segments that are gone
		errs = append(errs, p.delete(ctx, c))
	}
	return errors.Join(errs...)
}

func (p *Publisher) delete(ctx context.Context, c *storagev1.CSIStorageCapacity) error {
	err := p.kube.StorageV1().CSIStorageCapacities(c.Namespace).Delete(ctx, c.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &c.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete CSIStorageCapacity %s: %w", c.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted capacity", "object", klog.KObj(c), "storageClass", c.StorageClassName, "segment", c.Annotations[AnnotationSegment])
	return nil
}

// objectFor is the CSIStorageCapacity of a wanted object.
func (p *Publisher) objectFor(o object, owner metav1.OwnerReference) *storagev1.CSIStorageCapacity {
	return &storagev1.CSIStorageCapacity{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    objectNamePrefix,
			Namespace:       p.namespace,
			Labels:          map[string]string{LabelDriver: p.name, LabelManagedBy: ManagedByValue},
			Annotations:     map[string]string{AnnotationSegment: o.segment.key},
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		StorageClassName:  o.class,
		NodeTopology:      o.segment.selector,
		Capacity:          quantity(o.room.total),
		MaximumVolumeSize: quantity(o.room.largest),
	}
}

func quantity(giB int64) *resource.Quantity {
	return resource.NewQuantity(giB<<30, resource.BinarySI)
}

// sameObject reports whether cur already says what desired says.
func sameObject(cur, desired *storagev1.CSIStorageCapacity) bool {
	return sameQuantity(cur.Capacity, desired.Capacity) && sameQuantity(cur.MaximumVolumeSize, desired.MaximumVolumeSize) &&
		apiequality.Semantic.DeepEqual(cur.NodeTopology, desired.NodeTopology) &&
		apiequality.Semantic.DeepEqual(cur.OwnerReferences, desired.OwnerReferences)
}

func sameQuantity(a, b *resource.Quantity) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Cmp(*b) == 0
}
