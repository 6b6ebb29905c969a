package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

const giB = 1 << 30

// Names external-snapshotter's controller uses on contents
// (pkg/utils/util.go).
const (
	// finalizerBound is the controller's finalizer on every bound content;
	// csi-snapshotter removes it once the snapshot is deleted (or kept).
	finalizerBound = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
	// annBeingDeleted is set by the controller on the content of a
	// VolumeSnapshot being deleted: only then does csi-snapshotter delete.
	annBeingDeleted = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"
)

// contentRef is the Event target when the VolumeSnapshot is gone.
func contentRef(c *snapv1.VolumeSnapshotContent) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "VolumeSnapshotContent", APIVersion: snapv1.SchemeGroupVersion.String(), Name: c.Name, UID: c.UID, ResourceVersion: c.ResourceVersion}
}

func contentReady(c *snapv1.VolumeSnapshotContent) bool {
	return c.Status != nil && c.Status.SnapshotHandle != nil && c.Status.ReadyToUse != nil && *c.Status.ReadyToUse
}

// volumeOf is the Cinder volume a dynamic content of ours snapshots: the
// annotation the snapshotter wrote when it took the content on, else the
// volume handle (which it wrote itself).
func volumeOf(c *snapv1.VolumeSnapshotContent) string {
	if id := c.Annotations[contract.AnnVolumeID]; id != "" {
		return id
	}
	if c.Spec.Source.VolumeHandle != nil {
		return *c.Spec.Source.VolumeHandle
	}
	return ""
}

// isOurSnapshot is the proof that a Cinder snapshot found by the content's
// name was taken for this content: the same name (snapcontent-<uid>), the
// content's volume and the VolumeSnapshot's UID in its metadata. A
// snapshot failing it is never touched.
func isOurSnapshot(snap *cinder.Snapshot, c *snapv1.VolumeSnapshotContent) bool {
	return snap.Name == c.Name && snap.VolumeID == volumeOf(c) && volumeOf(c) != "" &&
		snap.Metadata[contract.MetaSnapshotUID] == string(c.Spec.VolumeSnapshotRef.UID) && c.Spec.VolumeSnapshotRef.UID != ""
}

// syncContent serves a content of our driver as csi-snapshotter would: it
// makes its Cinder snapshot (found by name first), writes the status once
// the snapshot is available, and releases the content when it is deleted
// (release.go). The content is read live: a status written by the last
// pass is seen by the next.
func (s *Snapshotter) syncContent(ctx context.Context, name string) result {
	c, err := s.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return result{out: gone}
	}
	if err != nil {
		return result{out: retry, err: err}
	}
	if c.Spec.Driver != s.name {
		return result{out: idle}
	}
	if c.DeletionTimestamp != nil {
		return s.release(ctx, c)
	}
	if c.Spec.Source.VolumeHandle == nil {
		return s.syncImported(ctx, c)
	}
	if contentReady(c) || c.Spec.VolumeSnapshotRef.UID == "" {
		return result{out: idle}
	}
	ref := c.Spec.VolumeSnapshotRef
	vs, err := s.snaps.SnapshotV1().VolumeSnapshots(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || err == nil && vs.UID != ref.UID:
		// the VolumeSnapshot went before its snapshot was made: nothing is
		// made for it; a content of ours is deleted (release.go ends it)
		return s.orphaned(ctx, c)
	case err != nil:
		return result{out: retry, err: fmt.Errorf("read VolumeSnapshot %s/%s: %w", ref.Namespace, ref.Name, err)}
	case vs.DeletionTimestamp != nil:
		return result{out: idle} // external-snapshotter's controller deletes the content
	}
	on := snapshotRef(vs)
	if !slices.Contains(c.Finalizers, contract.FinalizerSnapshot) {
		return s.adopt(ctx, c, vs)
	}
	return s.converge(ctx, c, vs, on)
}

// adopt takes on a content of our driver that the snapshotter did not
// make: external-snapshotter's controller makes one itself for a CSI PV
// (a ceph-csi RBD PV of ours), with the PV's CSI volume handle. It is
// served when that handle is the source claim's PV's: the Cinder volume id
// is recorded on it with our finalizer; otherwise nothing is done.
func (s *Snapshotter) adopt(ctx context.Context, c *snapv1.VolumeSnapshotContent, vs *snapv1.VolumeSnapshot) result {
	on := snapshotRef(vs)
	if vs.Spec.Source.PersistentVolumeClaimName == nil {
		return result{out: idle}
	}
	claimName := *vs.Spec.Source.PersistentVolumeClaimName
	claim, err := s.kube.CoreV1().PersistentVolumeClaims(vs.Namespace).Get(ctx, claimName, metav1.GetOptions{})
	if err != nil {
		return result{out: retry, err: fmt.Errorf("read claim %s: %w", claimName, err)}
	}
	pv, err := s.kube.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return result{out: retry, err: fmt.Errorf("read PV %s: %w", claim.Spec.VolumeName, err)}
	}
	volumeID, ok := s.ours(pv)
	handle := *c.Spec.Source.VolumeHandle
	if !ok || handle != volumeID && (pv.Spec.CSI == nil || pv.Spec.CSI.VolumeHandle != handle) {
		return result{out: refused, on: on, reason: ReasonContentMismatch,
			message: fmt.Sprintf("VolumeSnapshotContent %s names volume %s, which is not the Cinder volume of claim %s: not served", c.Name, handle, claimName)}
	}
	c = c.DeepCopy()
	c.Finalizers = append(c.Finalizers, contract.FinalizerSnapshot)
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[contract.AnnVolumeID] = volumeID
	if _, err := s.snaps.SnapshotV1().VolumeSnapshotContents().Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		return result{out: retry, err: fmt.Errorf("take on VolumeSnapshotContent %s: %w", c.Name, err)}
	}
	return result{out: inProgress}
}

// orphaned deletes a content of ours whose VolumeSnapshot is gone (a live
// read: not found, or another UID) before its status was written; a
// content that is not ours is left alone.
func (s *Snapshotter) orphaned(ctx context.Context, c *snapv1.VolumeSnapshotContent) result {
	if !slices.Contains(c.Finalizers, contract.FinalizerSnapshot) {
		return result{out: idle}
	}
	uid := c.UID
	err := s.snaps.SnapshotV1().VolumeSnapshotContents().Delete(ctx, c.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return result{out: retry, err: fmt.Errorf("delete VolumeSnapshotContent %s of a deleted VolumeSnapshot: %w", c.Name, err)}
	}
	return result{out: idle}
}

// converge brings the content's Cinder snapshot to available and writes
// the status. Every pass starts from what Cinder has under the content's
// name: a lost answer, a crash after the create or before the status
// write, finds the snapshot again instead of making a second one.
func (s *Snapshotter) converge(ctx context.Context, c *snapv1.VolumeSnapshotContent, vs *snapv1.VolumeSnapshot, on *corev1.ObjectReference) result {
	volumeID := volumeOf(c)
	found, err := s.cinder.ListSnapshots(ctx, cinder.SnapshotFilter{Name: c.Name, VolumeID: volumeID})
	if err != nil {
		return cinderFailure(on, "find the Cinder snapshot of "+c.Name, err, ReasonCinderRejected)
	}
	var mine []cinder.Snapshot
	for i := range found {
		if isOurSnapshot(&found[i], c) {
			mine = append(mine, found[i])
		}
	}
	// error snapshots go first: reported, deleted, then tried again
	for _, snap := range mine {
		if snap.Status != cinder.SnapshotError {
			continue
		}
		if err := s.cinder.DeleteSnapshot(ctx, snap.ID); err != nil {
			return cinderFailure(on, "delete the failed Cinder snapshot "+snap.ID, err, ReasonDeleteFailed)
		}
		return result{out: retry, on: on, reason: ReasonSnapshotFailed,
			message: fmt.Sprintf("Cinder snapshot %s of volume %s went to error (see cinder-volume's log); it is deleted and a new one will be made", snap.ID, volumeID)}
	}
	var best *cinder.Snapshot
	pending := false
	for i := range mine {
		switch mine[i].Status {
		case cinder.SnapshotAvailable:
			if best == nil {
				best = &mine[i] // the oldest: ListSnapshots answers oldest first
			}
		case cinder.SnapshotErrorDeleting:
			return result{out: retry, on: on, reason: ReasonDeleteFailed,
				message: fmt.Sprintf("Cinder snapshot %s is error_deleting: an admin must reset its state (cinder snapshot-reset-state) before it can go", mine[i].ID)}
		case cinder.SnapshotCreating:
			if res, stuck := s.stuck(&mine[i], on); stuck {
				return res
			}
			pending = true
		default: // deleting
			pending = true
		}
	}
	if best != nil {
		// duplicates (a second create whose first answer was lost, made
		// before the first was listed): every other one of ours goes
		for _, snap := range mine {
			if snap.ID != best.ID && cinder.SnapshotDeletable(snap.Status) {
				if err := s.cinder.DeleteSnapshot(ctx, snap.ID); err != nil {
					return cinderFailure(on, "delete the duplicate Cinder snapshot "+snap.ID, err, ReasonDeleteFailed)
				}
			}
		}
		return s.writeStatus(ctx, c, best, on)
	}
	if pending {
		return result{out: inProgress}
	}
	// before the first snapshot exists, the volume says it may have some:
	// its delete then checks first (contract.MetaSnapshotted)
	if err := s.markSnapshotted(ctx, volumeID); err != nil {
		return cinderFailure(on, "mark Cinder volume "+volumeID+" as snapshotted", err, ReasonVolumeNotSnapshottable)
	}
	snap, err := s.cinder.CreateSnapshot(ctx, cinder.SnapshotRequest{
		VolumeID: volumeID, Name: c.Name, Force: true,
		Description: fmt.Sprintf("VolumeSnapshot %s/%s", vs.Namespace, vs.Name),
		Metadata: map[string]string{
			contract.MetaClusterID: s.clusterID, contract.MetaProvisioner: s.name,
			contract.MetaSnapshotNamespace: vs.Namespace, contract.MetaSnapshotName: vs.Name,
			contract.MetaSnapshotUID: string(vs.UID),
		},
	})
	if err != nil {
		return cinderFailure(on, "snapshot Cinder volume "+volumeID, err, ReasonVolumeNotSnapshottable)
	}
	klog.FromContext(ctx).V(2).Info("Cinder snapshot requested", "content", c.Name, "snapshot", snap.ID, "volume", volumeID)
	return result{out: inProgress}
}

// markSnapshotted sets contract.MetaSnapshotted on the volume, once per
// volume for the life of the process.
func (s *Snapshotter) markSnapshotted(ctx context.Context, volumeID string) error {
	if _, done := s.marked.Load(volumeID); done {
		return nil
	}
	if err := s.cinder.UpdateVolumeMetadata(ctx, volumeID, map[string]string{contract.MetaSnapshotted: "true"}); err != nil {
		return err
	}
	s.marked.Store(volumeID, struct{}{})
	return nil
}

// writeStatus records the available snapshot on the content: what
// external-snapshotter's controller copies to the VolumeSnapshot
// (readyToUse, restoreSize, creationTime) and what a restore reads
// (snapshotHandle).
func (s *Snapshotter) writeStatus(ctx context.Context, c *snapv1.VolumeSnapshotContent, snap *cinder.Snapshot, on *corev1.ObjectReference) result {
	c = c.DeepCopy()
	yes := true
	size := int64(snap.SizeGiB) * giB
	c.Status = &snapv1.VolumeSnapshotContentStatus{SnapshotHandle: &snap.ID, ReadyToUse: &yes, RestoreSize: &size}
	if !snap.CreatedAt.IsZero() {
		t := snap.CreatedAt.UnixNano()
		c.Status.CreationTime = &t
	}
	if _, err := s.snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		return result{out: retry, err: fmt.Errorf("write the status of VolumeSnapshotContent %s: %w", c.Name, err)}
	}
	return result{out: ready, on: on, reason: ReasonSnapshotReady,
		message: fmt.Sprintf("Cinder snapshot %s of volume %s is available (%d GiB)", snap.ID, snap.VolumeID, snap.SizeGiB)}
}

// cinderFailure is the result of a failed Cinder request: every kind is
// retried with backoff; what the user may act on is an Event. A 400 is
// invalid's reason.
func cinderFailure(on *corev1.ObjectReference, what string, err error, invalid string) result {
	res := result{out: retry, on: on, err: fmt.Errorf("%s: %w", what, err), message: fmt.Sprintf("Cannot %s: %v", what, err)}
	switch {
	case errors.Is(err, cinder.ErrQuotaExceeded):
		res.reason = ReasonQuotaExceeded
	case errors.Is(err, cinder.ErrInvalid):
		res.reason = invalid
	case errors.Is(err, cinder.ErrUnavailable):
		res.reason = ReasonCinderUnavailable
	default:
		res.reason = ReasonCinderRejected
	}
	return res
}

// stuck reports a snapshot creating for longer than s.stale: nothing but
// an admin's reset (to error) moves it; the pass is retried with backoff.
func (s *Snapshotter) stuck(snap *cinder.Snapshot, on *corev1.ObjectReference) (result, bool) {
	if snap.CreatedAt.IsZero() || s.now().Sub(snap.CreatedAt) < s.stale {
		return result{}, false
	}
	return result{out: retry, on: on, reason: ReasonSnapshotStuck,
		message: fmt.Sprintf("Cinder snapshot %s has been creating since %s (cinder-api stopped mid-request?); Cinder neither finishes nor deletes it: an admin must reset it (openstack snapshot set --state error %s), then it is deleted and a new one made",
			snap.ID, snap.CreatedAt.UTC().Format(time.RFC3339), snap.ID)}, true
}
