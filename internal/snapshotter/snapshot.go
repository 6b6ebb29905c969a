package snapshotter

import (
	"context"
	"fmt"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// metaListOne lists at most one object: a probe.
var metaListOne = metav1.ListOptions{Limit: 1}

// contentName is the name external-snapshotter's controller looks for a
// dynamic VolumeSnapshot's content under
// (utils.GetDynamicSnapshotContentNameForSnapshot).
func contentName(vs *snapv1.VolumeSnapshot) string { return "snapcontent-" + string(vs.UID) }

// snapshotRef is the Event target and the content's volumeSnapshotRef.
func snapshotRef(vs *snapv1.VolumeSnapshot) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		Kind: "VolumeSnapshot", APIVersion: snapv1.SchemeGroupVersion.String(),
		Namespace: vs.Namespace, Name: vs.Name, UID: vs.UID, ResourceVersion: vs.ResourceVersion,
	}
}

// ours returns the Cinder volume id of a PV this provisioner made.
func (s *Snapshotter) ours(pv *corev1.PersistentVolume) (string, bool) {
	ann := pv.Annotations
	if ann[contract.AnnProvisionerIdentity] != s.name || ann[contract.AnnVolumeID] == "" {
		return "", false
	}
	return ann[contract.AnnVolumeID], true
}

// class returns the VolumeSnapshot's class when its driver is ours.
func (s *Snapshotter) class(vs *snapv1.VolumeSnapshot) (*snapv1.VolumeSnapshotClass, bool) {
	if vs.Spec.VolumeSnapshotClassName == nil {
		return nil, false
	}
	c, err := s.classes.Get(*vs.Spec.VolumeSnapshotClassName)
	if err != nil || c.Driver != s.name {
		return nil, false
	}
	return c, true
}

// syncSnapshot makes the content snapcontent-<uid> for a dynamic
// VolumeSnapshot of ours as early as it can: external-snapshotter's
// controller binds it instead of trying (and failing, for a non-CSI PV) to
// make one itself. It reads the claim and the PV live.
func (s *Snapshotter) syncSnapshot(ctx context.Context, ns, name string) result {
	vs, err := s.vss.VolumeSnapshots(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return result{out: gone}
	}
	if err != nil {
		return result{out: retry, err: err}
	}
	if vs.DeletionTimestamp != nil || vs.Spec.Source.PersistentVolumeClaimName == nil {
		return result{out: idle}
	}
	class, ok := s.class(vs)
	if !ok {
		return result{out: idle}
	}
	if _, err := s.contents.Get(contentName(vs)); err == nil {
		return result{out: idle} // made already: the content's pass does the rest
	}
	on := snapshotRef(vs)
	claimName := *vs.Spec.Source.PersistentVolumeClaimName
	claim, err := s.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claimName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return result{out: retry, on: on, reason: ReasonSourceNotReady, message: fmt.Sprintf("Claim %s does not exist", claimName)}
	}
	if err != nil {
		return result{out: retry, err: fmt.Errorf("read claim %s: %w", claimName, err)}
	}
	if claim.DeletionTimestamp != nil {
		return result{out: refused, on: on, reason: ReasonSourceNotReady, message: fmt.Sprintf("Claim %s is being deleted: it is not snapshotted", claimName)}
	}
	if claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName == "" {
		return result{out: retry, on: on, reason: ReasonSourceNotReady, message: fmt.Sprintf("Claim %s is not bound yet", claimName)}
	}
	pv, err := s.kube.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return result{out: retry, err: fmt.Errorf("read PV %s: %w", claim.Spec.VolumeName, err)}
	}
	volumeID, ok := s.ours(pv)
	if !ok || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claim.UID {
		return result{out: refused, on: on, reason: ReasonSourceNotOurs,
			message: fmt.Sprintf("Claim %s is not bound to a volume of provisioner %s: the VolumeSnapshotClass %s cannot snapshot it", claimName, s.name, class.Name)}
	}
	content := &snapv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: contentName(vs), Finalizers: []string{contract.FinalizerSnapshot}},
		Spec: snapv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef:       *on,
			Source:                  snapv1.VolumeSnapshotContentSource{VolumeHandle: &volumeID},
			VolumeSnapshotClassName: &class.Name,
			DeletionPolicy:          class.DeletionPolicy,
			Driver:                  s.name,
			SourceVolumeMode:        pv.Spec.VolumeMode,
		},
	}
	content.Spec.VolumeSnapshotRef.ResourceVersion = ""
	_, err = s.snaps.SnapshotV1().VolumeSnapshotContents().Create(ctx, content, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return result{out: idle}
	}
	if err != nil {
		return result{out: retry, err: fmt.Errorf("create VolumeSnapshotContent %s: %w", content.Name, err)}
	}
	return result{out: contentCreated, on: on, reason: ReasonContentCreated,
		message: fmt.Sprintf("VolumeSnapshotContent %s made for Cinder volume %s; the Cinder snapshot follows", content.Name, volumeID)}
}
