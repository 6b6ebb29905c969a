package provisioner

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// Data source kinds the provisioner fills itself; any other is a volume
// populator's.
const (
	kindClaim    = "PersistentVolumeClaim"
	kindSnapshot = "VolumeSnapshot"
	// snapshotGroup is the API group of VolumeSnapshot (external-snapshotter).
	snapshotGroup = "snapshot.storage.k8s.io"
)

var (
	gvrSnapshot        = schema.GroupVersionResource{Group: snapshotGroup, Version: "v1", Resource: "volumesnapshots"}
	gvrSnapshotContent = schema.GroupVersionResource{Group: snapshotGroup, Version: "v1", Resource: "volumesnapshotcontents"}
)

// source is what a claim's volume is made from: a Cinder volume to clone
// (a claim of ours) or a Cinder snapshot to restore (a VolumeSnapshot).
type source struct {
	kind string // kindClaim or kindSnapshot
	// name is the source object's name (claim or VolumeSnapshot), in the
	// claim's namespace.
	name       string
	volumeID   string // clone: the source claim's Cinder volume
	snapshotID string // restore: the Cinder snapshot
	zone       string // the source's availability zone ("": unknown)
}

func (s *source) String() string {
	if s.kind == kindClaim {
		return fmt.Sprintf("claim %s (Cinder volume %s)", s.name, s.volumeID)
	}
	return fmt.Sprintf("VolumeSnapshot %s (Cinder snapshot %s)", s.name, s.snapshotID)
}

// sourceError is a data source the provisioner cannot fill the claim from
// now: not bound yet, not ready, being deleted, too big, not ours. It is
// not remembered as final: the source can change without the claim or the
// class changing.
type sourceError struct{ msg string }

func (e *sourceError) Error() string { return e.msg }

// claimDataSource is the claim's data source: dataSourceRef when set (it
// can name a namespace and any kind), else dataSource.
func claimDataSource(claim *corev1.PersistentVolumeClaim) (group, kind, name, namespace string, ok bool) {
	if r := claim.Spec.DataSourceRef; r != nil {
		if r.APIGroup != nil {
			group = *r.APIGroup
		}
		ns := claim.Namespace
		if r.Namespace != nil && *r.Namespace != "" {
			ns = *r.Namespace
		}
		return group, r.Kind, r.Name, ns, true
	}
	if r := claim.Spec.DataSource; r != nil {
		if r.APIGroup != nil {
			group = *r.APIGroup
		}
		return group, r.Kind, r.Name, claim.Namespace, true
	}
	return "", "", "", "", false
}

// populated reports a claim whose data source is a volume populator's:
// another controller fills it, so this provisioner must make nothing (an
// empty volume would be bound and never filled) and say nothing. The error
// is a bare *controller.IgnoredError, as the library wants it.
func populated(claim *corev1.PersistentVolumeClaim) *controller.IgnoredError {
	group, kind, name, _, ok := claimDataSource(claim)
	if !ok || (group == "" && kind == kindClaim) || (group == snapshotGroup && kind == kindSnapshot) {
		return nil
	}
	g := group
	if g == "" {
		g = "core"
	}
	return &controller.IgnoredError{Reason: fmt.Sprintf("claim %s/%s has data source %s %s/%s of a volume populator; the populator fills it", claim.Namespace, claim.Name, g, kind, name)}
}

// dataSourceFor checks the claim's data source (a claim to clone or a
// VolumeSnapshot to restore) and returns what Cinder makes the volume from;
// nil for a claim without one. sizeGiB is the claim's request.
func (p *Provisioner) dataSourceFor(ctx context.Context, opts controller.ProvisionOptions, sizeGiB int) (*source, error) {
	group, kind, name, ns, ok := claimDataSource(opts.PVC)
	if !ok {
		return nil, nil
	}
	if ns != opts.PVC.Namespace {
		return nil, &claimError{fmt.Sprintf("data source %s %s/%s is in another namespace: cross-namespace data sources (ReferenceGrant) are not supported; clone or restore within namespace %s", kind, ns, name, opts.PVC.Namespace)}
	}
	switch {
	case group == "" && kind == kindClaim:
		return p.cloneSource(ctx, opts, name, sizeGiB)
	case group == snapshotGroup && kind == kindSnapshot:
		return p.snapshotSource(ctx, opts, name, sizeGiB)
	}
	return nil, nil // populated() returned first
}

// cloneSource checks a claim to clone, as csi-provisioner does
// (getPVCSource): it exists, is Bound and not being deleted, its PV is
// bound to it and was made by this provisioner for this cluster, the
// volume mode is the same, and the new claim is at least as big as the
// source volume; and Cinder can clone the volume (available or in-use).
func (p *Provisioner) cloneSource(ctx context.Context, opts controller.ProvisionOptions, name string, sizeGiB int) (*source, error) {
	ns := opts.PVC.Namespace
	src, err := p.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, &sourceError{fmt.Sprintf("the claim to clone, %s/%s, does not exist", ns, name)}
	case err != nil:
		return nil, fmt.Errorf("get claim to clone %s/%s: %w", ns, name, err)
	}
	if src.DeletionTimestamp != nil {
		return nil, &sourceError{fmt.Sprintf("the claim to clone, %s/%s, is being deleted", ns, name)}
	}
	if src.Status.Phase != corev1.ClaimBound || src.Spec.VolumeName == "" {
		return nil, &sourceError{fmt.Sprintf("the claim to clone, %s/%s, is %s, not Bound: the clone waits for it", ns, name, src.Status.Phase)}
	}
	pv, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, src.Spec.VolumeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, &sourceError{fmt.Sprintf("the PV %s of the claim to clone, %s/%s, does not exist", src.Spec.VolumeName, ns, name)}
	case err != nil:
		return nil, fmt.Errorf("get PV %s of claim to clone %s/%s: %w", src.Spec.VolumeName, ns, name, err)
	}
	if r := pv.Spec.ClaimRef; r == nil || r.UID != src.UID || r.Namespace != ns || r.Name != name {
		return nil, &sourceError{fmt.Sprintf("the PV %s is not bound to the claim to clone, %s/%s", pv.Name, ns, name)}
	}
	volumeID := pv.Annotations[contract.AnnVolumeID]
	if pv.Annotations[contract.AnnProvisionerIdentity] != p.name || !uuidRE.MatchString(volumeID) {
		return nil, &sourceError{fmt.Sprintf("the claim to clone, %s/%s, has PV %s, which provisioner %s did not make: only claims of its own Cinder volumes can be cloned", ns, name, pv.Name, p.name)}
	}
	if block(opts.PVC.Spec.VolumeMode) != block(pv.Spec.VolumeMode) {
		return nil, &sourceError{fmt.Sprintf("the claim to clone, %s/%s, has volumeMode %s and this claim %s: the source and the clone must have the same volume mode", ns, name, modeName(pv.Spec.VolumeMode), modeName(opts.PVC.Spec.VolumeMode))}
	}
	vol, err := p.cinder.GetVolume(ctx, volumeID)
	switch {
	case errors.Is(err, cinder.ErrNotFound):
		return nil, &sourceError{fmt.Sprintf("Cinder volume %s of the claim to clone, %s/%s, does not exist", volumeID, ns, name)}
	case err != nil:
		return nil, fmt.Errorf("get volume %s of claim to clone %s/%s: %w", volumeID, ns, name, err)
	}
	if vol.Metadata[contract.MetaClusterID] != p.clusterID {
		return nil, &sourceError{fmt.Sprintf("Cinder volume %s of the claim to clone, %s/%s, belongs to cluster %q, not this one", volumeID, ns, name, vol.Metadata[contract.MetaClusterID])}
	}
	if sizeGiB < vol.SizeGiB {
		return nil, &claimError{fmt.Sprintf("the claim asks for %d GiB, less than the %d GiB of the claim to clone, %s/%s: ask for at least %dGi", sizeGiB, vol.SizeGiB, ns, name, vol.SizeGiB)}
	}
	if !cinder.CloneSourceStatus(vol.Status) {
		return nil, &sourceError{fmt.Sprintf("Cinder volume %s of the claim to clone, %s/%s, is %s: Cinder clones only available or in-use volumes", volumeID, ns, name, vol.Status)}
	}
	return &source{kind: kindClaim, name: name, volumeID: volumeID, zone: vol.AvailabilityZone}, nil
}

// snapshotSource checks a VolumeSnapshot to restore, as csi-provisioner
// does (getSnapshotSource): it is not being deleted, bound to a
// VolumeSnapshotContent that is bound to it, readyToUse, its restore size
// fits the claim; the content's snapshot handle is a Cinder snapshot id
// (cinder-csi's handles are), and Cinder has that snapshot, available.
func (p *Provisioner) snapshotSource(ctx context.Context, opts controller.ProvisionOptions, name string, sizeGiB int) (*source, error) {
	ns := opts.PVC.Namespace
	if p.dynamic == nil {
		return nil, &sourceError{fmt.Sprintf("restore from VolumeSnapshot %s/%s: the provisioner has no client for the snapshot API", ns, name)}
	}
	snap, err := p.dynamic.Resource(gvrSnapshot).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case noSnapshotAPI(err):
		return nil, &sourceError{fmt.Sprintf("restore from VolumeSnapshot %s/%s: the snapshot API (%s/v1) is not installed in this cluster: install external-snapshotter's CRDs", ns, name, snapshotGroup)}
	case apierrors.IsNotFound(err):
		return nil, &sourceError{fmt.Sprintf("VolumeSnapshot %s/%s does not exist", ns, name)}
	case err != nil:
		return nil, fmt.Errorf("get VolumeSnapshot %s/%s: %w", ns, name, err)
	}
	if snap.GetDeletionTimestamp() != nil {
		return nil, &sourceError{fmt.Sprintf("VolumeSnapshot %s/%s is being deleted", ns, name)}
	}
	contentName, _, _ := unstructured.NestedString(snap.Object, "status", "boundVolumeSnapshotContentName")
	if contentName == "" {
		return nil, &sourceError{fmt.Sprintf("VolumeSnapshot %s/%s is not bound to a VolumeSnapshotContent yet", ns, name)}
	}
	if ready, _, _ := unstructured.NestedBool(snap.Object, "status", "readyToUse"); !ready {
		return nil, &sourceError{fmt.Sprintf("VolumeSnapshot %s/%s is not readyToUse yet", ns, name)}
	}
	content, err := p.dynamic.Resource(gvrSnapshotContent).Get(ctx, contentName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, &sourceError{fmt.Sprintf("VolumeSnapshotContent %s of VolumeSnapshot %s/%s does not exist", contentName, ns, name)}
	case err != nil:
		return nil, fmt.Errorf("get VolumeSnapshotContent %s: %w", contentName, err)
	}
	refUID, _, _ := unstructured.NestedString(content.Object, "spec", "volumeSnapshotRef", "uid")
	refNS, _, _ := unstructured.NestedString(content.Object, "spec", "volumeSnapshotRef", "namespace")
	refName, _, _ := unstructured.NestedString(content.Object, "spec", "volumeSnapshotRef", "name")
	if refUID != string(snap.GetUID()) || refNS != ns || refName != name {
		return nil, &sourceError{fmt.Sprintf("VolumeSnapshotContent %s is bound to another snapshot than VolumeSnapshot %s/%s", contentName, ns, name)}
	}
	handle, _, _ := unstructured.NestedString(content.Object, "status", "snapshotHandle")
	if handle == "" {
		// a pre-provisioned content names its snapshot in the spec
		handle, _, _ = unstructured.NestedString(content.Object, "spec", "source", "snapshotHandle")
	}
	if !uuidRE.MatchString(handle) {
		return nil, &sourceError{fmt.Sprintf("VolumeSnapshotContent %s of VolumeSnapshot %s/%s has snapshot handle %q, not a Cinder snapshot id", contentName, ns, name, handle)}
	}
	if rs, ok, _ := unstructured.NestedString(snap.Object, "status", "restoreSize"); ok && rs != "" {
		if q, err := resource.ParseQuantity(rs); err == nil && q.Value() > int64(sizeGiB)*giB {
			return nil, &claimError{fmt.Sprintf("the claim asks for %d GiB, less than the restore size %s of VolumeSnapshot %s/%s", sizeGiB, rs, ns, name)}
		}
	}
	s, err := p.cinder.GetSnapshot(ctx, handle)
	switch {
	case errors.Is(err, cinder.ErrNotFound):
		return nil, &sourceError{fmt.Sprintf("Cinder snapshot %s of VolumeSnapshot %s/%s does not exist in this Cinder project", handle, ns, name)}
	case err != nil:
		return nil, fmt.Errorf("get snapshot %s of VolumeSnapshot %s/%s: %w", handle, ns, name, err)
	}
	if s.Status != cinder.SnapshotAvailable {
		return nil, &sourceError{fmt.Sprintf("Cinder snapshot %s of VolumeSnapshot %s/%s is %s: Cinder restores only available snapshots", handle, ns, name, s.Status)}
	}
	if sizeGiB < s.SizeGiB {
		return nil, &claimError{fmt.Sprintf("the claim asks for %d GiB, less than the %d GiB of Cinder snapshot %s (VolumeSnapshot %s/%s): ask for at least %dGi", sizeGiB, s.SizeGiB, handle, ns, name, s.SizeGiB)}
	}
	src := &source{kind: kindSnapshot, name: name, snapshotID: handle}
	if s.VolumeID != "" {
		if v, err := p.cinder.GetVolume(ctx, s.VolumeID); err == nil {
			src.zone = v.AvailabilityZone
		}
	}
	return src, nil
}

// noSnapshotAPI reports the API server's answer for a resource it does not
// serve (no CRD): a 404 without the details of a missing object.
func noSnapshotAPI(err error) bool {
	var se apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &se) {
		return false
	}
	d := se.Status().Details
	return d == nil || d.Name == ""
}

func block(m *corev1.PersistentVolumeMode) bool {
	return m != nil && *m == corev1.PersistentVolumeBlock
}

func modeName(m *corev1.PersistentVolumeMode) string {
	if block(m) {
		return string(corev1.PersistentVolumeBlock)
	}
	return string(corev1.PersistentVolumeFilesystem)
}

// sourceMetadata records the source in the volume's metadata, so a later
// attempt can tell the clone it finds by name was made from this source.
func (s *source) metadata(md map[string]string) map[string]string {
	if s == nil {
		return md
	}
	if s.volumeID != "" {
		md[contract.MetaSourceVolume] = s.volumeID
	}
	if s.snapshotID != "" {
		md[contract.MetaSourceSnapshot] = s.snapshotID
	}
	return md
}

// sourceMismatch says how a volume found by name differs from the source
// the claim asks for (Cinder's own view, source_volid / snapshot_id, and
// the metadata recorded at create).
func sourceMismatch(vol *cinder.Volume, s *source) []string {
	var wantVol, wantSnap string
	if s != nil {
		wantVol, wantSnap = s.volumeID, s.snapshotID
	}
	gotVol, gotSnap := vol.SourceVolumeID, vol.SnapshotID
	if gotVol == "" {
		gotVol = vol.Metadata[contract.MetaSourceVolume]
	}
	if gotSnap == "" {
		gotSnap = vol.Metadata[contract.MetaSourceSnapshot]
	}
	var diffs []string
	if gotVol != wantVol {
		diffs = append(diffs, fmt.Sprintf("cloned from volume %q, the claim asks for %q", gotVol, wantVol))
	}
	if gotSnap != wantSnap {
		diffs = append(diffs, fmt.Sprintf("restored from snapshot %q, the claim asks for %q", gotSnap, wantSnap))
	}
	return diffs
}

// cloneOf is the volume to clone ("": none); nil-safe.
func (s *source) cloneOf() string {
	if s == nil {
		return ""
	}
	return s.volumeID
}

// restoreOf is the snapshot to restore ("": none); nil-safe.
func (s *source) restoreOf() string {
	if s == nil {
		return ""
	}
	return s.snapshotID
}

// dataSourceOrMade is dataSourceFor, except that a source that cannot be
// used any more (the claim to clone deleted, the snapshot gone) does not
// matter when the claim's volume was already made from it by an earlier
// attempt (its export, say, failed): that volume, found by name, records
// its source, and the next step reuses it, from whatever status an
// interrupted attempt left it in (creating, reserved by a failed export,
// ...). Refusing there would delete a clone whose source is gone for good:
// the only copy of the data. Only a volume in error (no data) or being
// deleted is not a made clone.
func (p *Provisioner) dataSourceOrMade(ctx context.Context, opts controller.ProvisionOptions, sizeGiB int) (*source, error) {
	src, err := p.dataSourceFor(ctx, opts, sizeGiB)
	var se *sourceError
	if !errors.As(err, &se) {
		return src, err
	}
	vol, ferr := p.cinder.FindVolumeByName(ctx, opts.PVName)
	if ferr != nil || vol.Metadata[contract.MetaClusterID] != p.clusterID || cinder.IsErrorStatus(vol.Status) || vol.Status == cinder.StatusDeleting {
		return nil, err
	}
	_, kind, name, _, _ := claimDataSource(opts.PVC)
	made := &source{kind: kind, name: name, volumeID: vol.Metadata[contract.MetaSourceVolume], snapshotID: vol.Metadata[contract.MetaSourceSnapshot]}
	if (kind == kindClaim) != (made.volumeID != "") || (kind == kindSnapshot) != (made.snapshotID != "") {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Data source not usable, but the claim's volume was made from it already", "volumeID", vol.ID, "source", made.String(), "reason", se.Error())
	return made, nil
}
