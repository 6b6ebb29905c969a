package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// release ends a content being deleted, as csi-snapshotter does
// (shouldDelete, deleteCSISnapshot, removeContentFinalizer): only once its
// VolumeSnapshot is being deleted (external-snapshotter's controller says
// so with annBeingDeleted) or is gone (a live read); with deletionPolicy
// Delete its Cinder snapshot is deleted first, Retain keeps it. Then our
// finalizer and the controller's go. The proof that a Cinder snapshot is
// the content's: the handle the snapshotter wrote in its status, or, for a
// snapshot whose status was never written (a crash, a deletion while
// Cinder was creating), the name, the volume and the VolumeSnapshot UID
// (isOurSnapshot).
func (s *Snapshotter) release(ctx context.Context, c *snapv1.VolumeSnapshotContent) result {
	if !slices.Contains(c.Finalizers, contract.FinalizerSnapshot) && !slices.Contains(c.Finalizers, finalizerBound) {
		return result{out: idle}
	}
	on := contentRef(c)
	if !metav1.HasAnnotation(c.ObjectMeta, annBeingDeleted) {
		ref := c.Spec.VolumeSnapshotRef
		vs, err := s.snaps.SnapshotV1().VolumeSnapshots(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil && vs.UID == ref.UID && ref.UID != "" {
			// deleted under a live VolumeSnapshot: kept until that goes
			return result{out: idle}
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return result{out: retry, err: fmt.Errorf("read VolumeSnapshot %s/%s: %w", ref.Namespace, ref.Name, err)}
		}
	}
	what := "kept (deletionPolicy Retain)"
	if c.Spec.DeletionPolicy == snapv1.VolumeSnapshotContentDelete {
		ids, res, done := s.deleteSnapshots(ctx, c, on)
		if !done {
			return res
		}
		what = fmt.Sprintf("deleted (%v)", ids)
		if len(ids) == 0 {
			what = "deleted (none was made)"
		}
	}
	c = c.DeepCopy()
	c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == contract.FinalizerSnapshot || f == finalizerBound })
	if _, err := s.snaps.SnapshotV1().VolumeSnapshotContents().Update(ctx, c, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return result{out: retry, err: fmt.Errorf("remove the finalizers of VolumeSnapshotContent %s: %w", c.Name, err)}
	}
	return result{out: deleted, on: on, reason: ReasonSnapshotDeleted,
		message: fmt.Sprintf("Cinder snapshot of VolumeSnapshotContent %s %s", c.Name, what)}
}

// deleteSnapshots deletes every Cinder snapshot of the content and says
// whether none is left (done); until then res is the pass's result. ids
// are the snapshots it found.
func (s *Snapshotter) deleteSnapshots(ctx context.Context, c *snapv1.VolumeSnapshotContent, on *corev1.ObjectReference) (ids []string, res result, done bool) {
	var targets []cinder.Snapshot
	if c.Status != nil && c.Status.SnapshotHandle != nil {
		snap, err := s.cinder.GetSnapshot(ctx, *c.Status.SnapshotHandle)
		switch {
		case err == nil:
			targets = append(targets, *snap)
		case !isNotFound(err):
			return nil, cinderFailure(on, "read Cinder snapshot "+*c.Status.SnapshotHandle, err, ReasonDeleteFailed), false
		}
		ids = append(ids, *c.Status.SnapshotHandle)
	}
	if volumeOf(c) != "" && c.Spec.Source.VolumeHandle != nil {
		found, err := s.cinder.ListSnapshots(ctx, cinder.SnapshotFilter{Name: c.Name, VolumeID: volumeOf(c)})
		if err != nil {
			return nil, cinderFailure(on, "find the Cinder snapshot of "+c.Name, err, ReasonDeleteFailed), false
		}
		for i := range found {
			if isOurSnapshot(&found[i], c) && !slices.ContainsFunc(targets, func(t cinder.Snapshot) bool { return t.ID == found[i].ID }) {
				targets = append(targets, found[i])
				ids = append(ids, found[i].ID)
			}
		}
	}
	pending := false
	for _, snap := range targets {
		switch {
		case snap.Status == cinder.SnapshotErrorDeleting:
			return nil, result{out: retry, on: on, reason: ReasonDeleteFailed,
				message: fmt.Sprintf("Cinder snapshot %s is error_deleting: an admin must reset its state (cinder snapshot-reset-state) before it can go; VolumeSnapshotContent %s stays until then", snap.ID, c.Name)}, false
		case cinder.SnapshotDeletable(snap.Status):
			if err := s.cinder.DeleteSnapshot(ctx, snap.ID); err != nil {
				return nil, cinderFailure(on, "delete Cinder snapshot "+snap.ID, err, ReasonDeleteFailed), false
			}
			pending = true
		case snap.Status == cinder.SnapshotCreating:
			if res, stuck := s.stuck(&snap, on); stuck {
				return nil, res, false
			}
			pending = true // deleted once available
		default: // deleting
			pending = true
		}
	}
	if pending {
		return nil, result{out: inProgress}, false
	}
	return ids, result{}, true
}

func isNotFound(err error) bool { return errors.Is(err, cinder.ErrNotFound) }
