package provisioner

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

const (
	srcClaimName = "origin"
	srcClaimUID  = "6a1d2c3e-0000-4000-8000-0000000000aa"
	srcPVName    = "pvc-" + srcClaimUID
)

// sourceSpec says how the claim to clone and its volume look.
type sourceSpec struct {
	sizeGiB  int    // default 1
	status   string // Cinder status of its volume; default in-use (ours are exported)
	zone     string // default nova
	block    bool
	phase    corev1.PersistentVolumeClaimPhase // default Bound
	deleting bool
	foreign  bool   // its PV names another provisioner
	otherRef bool   // its PV is bound to another claim
	cluster  string // cluster id on its volume; default ours
}

// addSource makes a Bound claim of ours (with its PV and Cinder volume) in
// namespace app and returns the volume id.
func (e *env) addSource(s sourceSpec) string {
	e.t.Helper()
	if s.sizeGiB == 0 {
		s.sizeGiB = 1
	}
	if s.status == "" {
		s.status = cinder.StatusInUse
	}
	if s.zone == "" {
		s.zone = "nova"
	}
	if s.phase == "" {
		s.phase = corev1.ClaimBound
	}
	if s.cluster == "" {
		s.cluster = testClusterID
	}
	id := e.cinder.AddVolume(cinder.Volume{Name: srcPVName, Status: s.status, SizeGiB: s.sizeGiB, AvailabilityZone: s.zone,
		Metadata: map[string]string{contract.MetaClusterID: s.cluster, contract.MetaPVName: srcPVName}})
	claim := newClaim(claimSpec{size: resource.NewQuantity(int64(s.sizeGiB)<<30, resource.BinarySI).String(), block: s.block})
	claim.Name, claim.UID = srcClaimName, types.UID(srcClaimUID)
	claim.Spec.VolumeName = srcPVName
	claim.Status.Phase = s.phase
	if s.deleting {
		now := metav1.Now()
		claim.DeletionTimestamp = &now
		claim.Finalizers = []string{"kubernetes.io/pvc-protection"}
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims("app").Create(e.ctx, claim, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	identity := DefaultName
	if s.foreign {
		identity = "example.com/other"
	}
	ref := &corev1.ObjectReference{Namespace: "app", Name: srcClaimName, UID: types.UID(srcClaimUID)}
	if s.otherRef {
		ref.UID = "someone-else"
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: srcPVName, Annotations: map[string]string{contract.AnnVolumeID: id, contract.AnnProvisionerIdentity: identity}},
		Spec:       corev1.PersistentVolumeSpec{ClaimRef: ref, VolumeMode: claim.Spec.VolumeMode},
	}
	if _, err := e.kube.CoreV1().PersistentVolumes().Create(e.ctx, pv, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// sourceFinalizers are the finalizers of the claim to clone.
func (e *env) sourceFinalizers() []string {
	e.t.Helper()
	c, err := e.kube.CoreV1().PersistentVolumeClaims("app").Get(context.Background(), srcClaimName, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Finalizers
}

func cloneClaim(size string) *corev1.PersistentVolumeClaim {
	c := newClaim(claimSpec{size: size})
	c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: kindClaim, Name: srcClaimName}
	c.Spec.DataSourceRef = &corev1.TypedObjectReference{Kind: kindClaim, Name: srcClaimName}
	return c
}

func TestCloneFromClaim(t *testing.T) {
	e := newEnv(t)
	srcID := e.addSource(sourceSpec{zone: "nova"})
	// the finalizer must be on the source while Cinder clones
	var during []string
	e.cinder.Hook(fake.OpCreateVolume, func(context.Context, fake.Call) error {
		during = e.sourceFinalizers()
		return nil
	})
	pv, state, err := e.provision(options(cloneClaim("2Gi"), newClass(nil)))
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision = %v, %v; want a PV", state, err)
	}
	creates := e.calls(fake.OpCreateVolume)
	if len(creates) != 1 || creates[0].Request.SourceVolumeID != srcID || creates[0].Request.SnapshotID != "" {
		t.Fatalf("creates = %+v, want one with source_volid %s", creates, srcID)
	}
	if md := creates[0].Request.Metadata; md[contract.MetaSourceVolume] != srcID {
		t.Errorf("metadata %v does not record the source volume", md)
	}
	if !slices.Contains(during, contract.FinalizerCloneSource) {
		t.Errorf("source finalizers during the create = %v, want %s", during, contract.FinalizerCloneSource)
	}
	if f := e.sourceFinalizers(); slices.Contains(f, contract.FinalizerCloneSource) {
		t.Errorf("source finalizers after the clone = %v, want %s gone", f, contract.FinalizerCloneSource)
	}
	v, _ := e.cinder.Volume(pv.Annotations[contract.AnnVolumeID])
	if v.SourceVolumeID != srcID || v.SizeGiB != 2 || v.AvailabilityZone != "nova" {
		t.Errorf("clone = %+v, want 2 GiB from %s in nova", v, srcID)
	}
	if pv.Spec.NodeAffinity != nil {
		t.Errorf("PV pinned (%v) without topology in the class or a node", pv.Spec.NodeAffinity)
	}
	if evs := e.drainEvents(); len(evs) != 0 {
		t.Errorf("events = %q, want none", evs)
	}
}

func TestCloneRefusals(t *testing.T) {
	tests := []struct {
		name   string
		src    *sourceSpec // nil: no claim to clone
		claim  func() *corev1.PersistentVolumeClaim
		reason string
		want   string
	}{
		{"source missing", nil, nil, ReasonInvalidDataSource, "does not exist"},
		{"source pending", &sourceSpec{phase: corev1.ClaimPending}, nil, ReasonInvalidDataSource, "is Pending, not Bound"},
		{"source being deleted", &sourceSpec{deleting: true}, nil, ReasonInvalidDataSource, "is being deleted"},
		{"source PV another provisioner's", &sourceSpec{foreign: true}, nil, ReasonInvalidDataSource, "did not make"},
		{"source PV bound to another claim", &sourceSpec{otherRef: true}, nil, ReasonInvalidDataSource, "is not bound to the claim to clone"},
		{"source volume another cluster's", &sourceSpec{cluster: "cluster-b"}, nil, ReasonInvalidDataSource, `belongs to cluster "cluster-b"`},
		{"volume mode differs", &sourceSpec{block: true}, nil, ReasonInvalidDataSource, "same volume mode"},
		{"smaller than the source", &sourceSpec{sizeGiB: 3}, nil, ReasonInvalidClaim, "less than the 3 GiB"},
		{"source volume in error", &sourceSpec{status: cinder.StatusError}, nil, ReasonInvalidDataSource, "Cinder clones only available or in-use volumes"},
		{"source volume extending", &sourceSpec{status: "extending"}, nil, ReasonInvalidDataSource, "is extending"},
		{"other namespace", &sourceSpec{}, func() *corev1.PersistentVolumeClaim {
			c := cloneClaim("1Gi")
			ns := "elsewhere"
			c.Spec.DataSource = nil
			c.Spec.DataSourceRef.Namespace = &ns
			return c
		}, ReasonInvalidClaim, "ReferenceGrant"},
		{"other zone than the class's", &sourceSpec{zone: "nova"}, nil, ReasonInvalidZone, `is in Cinder zone "nova"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.cinder.SetZones(false, "nova", "zone-b")
			if tc.src != nil {
				e.addSource(*tc.src)
			}
			claim := cloneClaim("2Gi")
			if tc.claim != nil {
				claim = tc.claim()
			}
			params := map[string]string(nil)
			if tc.name == "other zone than the class's" {
				params = map[string]string{"availability": "zone-b"}
			}
			_, state, err := e.provision(options(claim, newClass(params)))
			if err == nil || state != controller.ProvisioningFinished {
				t.Fatalf("Provision = %v, %v; want a final refusal", state, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if msg := e.oneWarning(tc.reason); !strings.Contains(msg, tc.want) {
				t.Errorf("event %q does not say %q", msg, tc.want)
			}
			if c := e.calls(fake.OpCreateVolume); len(c) != 0 {
				t.Errorf("creates = %v, want none", c)
			}
			if tc.src != nil && !tc.src.deleting {
				if f := e.sourceFinalizers(); slices.Contains(f, contract.FinalizerCloneSource) {
					t.Errorf("source keeps finalizer %s after a refusal", contract.FinalizerCloneSource)
				}
			}
		})
	}
}

// The source's status changes between the check and the create (an admin,
// another controller): Cinder refuses, nothing is left, the source is
// released.
func TestCloneCinderRefusesSource(t *testing.T) {
	e := newEnv(t)
	srcID := e.addSource(sourceSpec{})
	e.cinder.Hook(fake.OpCreateVolume, func(context.Context, fake.Call) error {
		return e.cinder.SetStatus(srcID, "maintenance")
	})
	_, state, err := e.provision(options(cloneClaim("1Gi"), newClass(nil)))
	if err == nil || state != controller.ProvisioningFinished || !errors.Is(err, cinder.ErrInvalid) {
		t.Fatalf("Provision = %v, %v; want Cinder's refusal", state, err)
	}
	if !strings.Contains(err.Error(), "Originating source volume status must be one of 'available, in-use'") {
		t.Errorf("error %q is not Cinder's", err)
	}
	e.oneWarning(ReasonCinderRejected)
	if vols := e.cinder.Volumes(); len(vols) != 1 {
		t.Errorf("Cinder has %d volumes, want the source only", len(vols))
	}
	if f := e.sourceFinalizers(); slices.Contains(f, contract.FinalizerCloneSource) {
		t.Errorf("source keeps finalizer %s", contract.FinalizerCloneSource)
	}
}

// Every interruption of a clone converges: found again by name, one volume,
// the source released at the end.
func TestCloneConvergence(t *testing.T) {
	tests := []struct {
		name   string
		inject func(e *env)
		// first attempt's state
		first controller.ProvisioningState
	}{
		{"create answer lost", func(e *env) {
			e.cinder.LoseAnswer(fake.OpCreateVolume, cinder.NewError("create volume", testPVName, cinder.ErrUnavailable, "connection reset"))
		}, controller.ProvisioningInBackground},
		{"crash after the create", func(e *env) { e.cinder.CrashAt(fake.OpCreateVolume) }, controller.ProvisioningInBackground},
		{"clone still creating when the wait ends", func(e *env) {
			e.cinder.LoseAnswer(fake.OpWaitForVolumeStatus, cinder.NewError("wait for volume", "", cinder.ErrUnavailable, "cut"))
		}, controller.ProvisioningInBackground},
		{"finalizer release fails once", func(e *env) {
			n := 0
			e.kube.PrependReactor("update", "persistentvolumeclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
				c := a.(k8stesting.UpdateAction).GetObject().(*corev1.PersistentVolumeClaim)
				if !slices.Contains(c.Finalizers, contract.FinalizerCloneSource) && n == 0 {
					n++
					return true, nil, apierrors.NewServiceUnavailable("etcd leader change")
				}
				return false, nil, nil
			})
		}, controller.ProvisioningInBackground},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			srcID := e.addSource(sourceSpec{})
			tc.inject(e)
			opts := options(cloneClaim("1Gi"), newClass(nil))
			_, state, err := e.provision(opts)
			if err == nil || state != tc.first {
				t.Fatalf("first attempt = %v, %v; want %v with an error", state, err, tc.first)
			}
			if e.cinder.Crashed() {
				e.cinder.Restart()
			}
			pv, state, err := e.provision(opts)
			if err != nil || state != controller.ProvisioningFinished {
				t.Fatalf("retry = %v, %v; want a PV", state, err)
			}
			vols := e.cinder.Volumes()
			if len(vols) != 2 {
				t.Fatalf("Cinder has %d volumes, want the source and one clone", len(vols))
			}
			if v, _ := e.cinder.Volume(pv.Annotations[contract.AnnVolumeID]); v.SourceVolumeID != srcID {
				t.Errorf("PV's volume %+v is not the clone of %s", v, srcID)
			}
			if n := len(e.calls(fake.OpCreateVolume)); n != 1 {
				t.Errorf("%d creates, want 1", n)
			}
			if f := e.sourceFinalizers(); slices.Contains(f, contract.FinalizerCloneSource) {
				t.Errorf("source keeps finalizer %s", contract.FinalizerCloneSource)
			}
		})
	}
}

// A clone that ends in error is removed, and the source released.
func TestCloneEndsInError(t *testing.T) {
	e := newEnv(t)
	e.addSource(sourceSpec{})
	e.cinder.SetCreateFinalStatus(cinder.StatusError)
	_, state, err := e.provision(options(cloneClaim("1Gi"), newClass(nil)))
	if err == nil || state != controller.ProvisioningFinished || !errors.Is(err, cinder.ErrVolumeError) {
		t.Fatalf("Provision = %v, %v; want the volume error", state, err)
	}
	e.oneWarning(ReasonVolumeError)
	if vols := e.cinder.Volumes(); len(vols) != 1 {
		t.Errorf("Cinder has %d volumes, want the source only", len(vols))
	}
	if f := e.sourceFinalizers(); slices.Contains(f, contract.FinalizerCloneSource) {
		t.Errorf("source keeps finalizer %s", contract.FinalizerCloneSource)
	}
}

// A volume found by name that was made from another source is never bound.
func TestCloneFoundVolumeOfAnotherSource(t *testing.T) {
	e := newEnv(t)
	e.addSource(sourceSpec{})
	e.attempted = true // an earlier attempt made it
	e.cinder.AddVolume(cinder.Volume{Name: testPVName, SizeGiB: 1, AvailabilityZone: "nova",
		Metadata: map[string]string{contract.MetaClusterID: testClusterID, contract.MetaPVName: testPVName}})
	_, state, err := e.provision(options(cloneClaim("1Gi"), newClass(nil)))
	if err == nil || state != controller.ProvisioningInBackground {
		t.Fatalf("Provision = %v, %v; want a mismatch", state, err)
	}
	if msg := e.oneWarning(ReasonVolumeMismatch); !strings.Contains(msg, "cloned from volume \"\"") {
		t.Errorf("event %q does not name the source", msg)
	}
}

// A clone claim deleted while its volume is made: the volume goes, the
// source is released.
func TestCloneClaimDeleted(t *testing.T) {
	e := newEnv(t)
	e.addSource(sourceSpec{})
	opts := options(cloneClaim("1Gi"), newClass(nil))
	e.cinder.LoseAnswer(fake.OpWaitForVolumeStatus, cinder.NewError("wait for volume", "", cinder.ErrUnavailable, "cut"))
	if _, state, _ := e.provision(opts); state != controller.ProvisioningInBackground {
		t.Fatalf("first attempt = %v, want InBackground", state)
	}
	if !slices.Contains(e.sourceFinalizers(), contract.FinalizerCloneSource) {
		t.Fatal("source not protected while its clone is made")
	}
	if err := e.kube.CoreV1().PersistentVolumeClaims("app").Delete(e.ctx, opts.PVC.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, state, err := e.p.Provision(e.ctx, opts)
	//nolint:errorlint // the library tells an IgnoredError by type assertion: so must the test
	if _, ok := err.(*controller.IgnoredError); !ok || state != controller.ProvisioningFinished {
		t.Fatalf("after delete = %v, %v; want forgotten", state, err)
	}
	if vols := e.cinder.Volumes(); len(vols) != 1 {
		t.Errorf("Cinder has %d volumes, want the source only", len(vols))
	}
	if slices.Contains(e.sourceFinalizers(), contract.FinalizerCloneSource) {
		t.Error("source keeps the finalizer")
	}
}

// What a crash left (a finalizer and no pending clone) is released by the
// sweep; a Pending clone keeps it.
func TestReleaseStaleProtections(t *testing.T) {
	e := newEnv(t)
	e.addSource(sourceSpec{})
	c, _ := e.kube.CoreV1().PersistentVolumeClaims("app").Get(e.ctx, srcClaimName, metav1.GetOptions{})
	c.Finalizers = append(c.Finalizers, contract.FinalizerCloneSource)
	if _, err := e.kube.CoreV1().PersistentVolumeClaims("app").Update(e.ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pendingClone := cloneClaim("1Gi")
	pendingClone.Status.Phase = corev1.ClaimPending
	e.ensureClaim(pendingClone)
	if n, err := e.p.releaseStaleProtections(e.ctx); err != nil || n != 0 {
		t.Fatalf("with a Pending clone: released %d, %v; want 0", n, err)
	}
	if !slices.Contains(e.sourceFinalizers(), contract.FinalizerCloneSource) {
		t.Fatal("the finalizer went while a clone is Pending")
	}
	if err := e.kube.CoreV1().PersistentVolumeClaims("app").Delete(e.ctx, pendingClone.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.p.releaseStaleProtections(e.ctx); err != nil || n != 1 {
		t.Fatalf("without a Pending clone: released %d, %v; want 1", n, err)
	}
	if slices.Contains(e.sourceFinalizers(), contract.FinalizerCloneSource) {
		t.Error("the finalizer stayed")
	}
}

func TestPopulatorDataSourceIgnored(t *testing.T) {
	for name, ref := range map[string]corev1.TypedObjectReference{
		"populator":             {APIGroup: ptr("hello.example.com"), Kind: "Hello", Name: "h"},
		"core kind not a claim": {Kind: "ConfigMap", Name: "c"},
		"snapshot of a group":   {APIGroup: ptr("example.com"), Kind: kindSnapshot, Name: "s"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			claim := newClaim(claimSpec{})
			claim.Spec.DataSourceRef = &ref
			pv, state, err := e.provision(options(claim, newClass(nil)))
			//nolint:errorlint // the library tells an IgnoredError by type assertion: so must the test
			if _, ok := err.(*controller.IgnoredError); !ok || pv != nil || state != controller.ProvisioningFinished {
				t.Fatalf("Provision = %v, %v, %v; want a bare *controller.IgnoredError", pv, state, err)
			}
			if evs := e.drainEvents(); len(evs) != 0 {
				t.Errorf("events = %q, want none", evs)
			}
			if ops := e.ops(); len(ops) != 0 {
				t.Errorf("Cinder calls %v, want none", ops)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// snapshotEnv adds a VolumeSnapshot, its content and a Cinder snapshot of
// 1 GiB; it returns the Cinder snapshot id.
type snapshotSpec struct {
	notReady, unbound, otherRef, noHandle, preProvisioned bool
	restoreSize                                           string // default 1Gi
	cinderStatus                                          string // "": available; "-": none in Cinder
	sizeGiB                                               int    // default 1
}

func (e *env) addSnapshot(s snapshotSpec) string {
	e.t.Helper()
	if s.sizeGiB == 0 {
		s.sizeGiB = 1
	}
	if s.restoreSize == "" {
		s.restoreSize = "1Gi"
	}
	volID := e.cinder.AddVolume(cinder.Volume{Name: "snapped", SizeGiB: s.sizeGiB, AvailabilityZone: "nova"})
	snapID := "5a000000-0000-4000-8000-00000000ffff"
	if s.cinderStatus != "-" {
		var err error
		snapID, err = e.cinder.AddSnapshot(cinder.Snapshot{VolumeID: volID, Status: s.cinderStatus})
		if err != nil {
			e.t.Fatal(err)
		}
	}
	status := map[string]any{"readyToUse": !s.notReady, "restoreSize": s.restoreSize}
	if !s.unbound {
		status["boundVolumeSnapshotContentName"] = "content-1"
	}
	snap := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": "snap", "namespace": "app", "uid": "snap-uid"},
		"spec":     map[string]any{"source": map[string]any{"volumeSnapshotContentName": "content-1"}},
		"status":   status,
	}}
	refUID := "snap-uid"
	if s.otherRef {
		refUID = "other"
	}
	handle := snapID
	if s.noHandle {
		handle = "rbd-pool/csi-snap-1"
	}
	content := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
		"metadata": map[string]any{"name": "content-1"},
		"spec": map[string]any{
			"driver": "cinder.csi.openstack.org", "deletionPolicy": "Retain",
			"volumeSnapshotRef": map[string]any{"name": "snap", "namespace": "app", "uid": refUID},
			"source":            map[string]any{"snapshotHandle": handle},
		},
	}}
	if !s.preProvisioned {
		content.Object["status"] = map[string]any{"snapshotHandle": handle, "readyToUse": true}
	}
	e.p.dynamic = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		gvrSnapshot: "VolumeSnapshotList", gvrSnapshotContent: "VolumeSnapshotContentList",
	}, snap, content)
	return snapID
}

func restoreClaim(size string) *corev1.PersistentVolumeClaim {
	c := newClaim(claimSpec{size: size})
	c.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: ptr(snapshotGroup), Kind: kindSnapshot, Name: "snap"}
	return c
}

func TestRestoreFromSnapshot(t *testing.T) {
	for _, pre := range []bool{false, true} {
		name := "dynamic content"
		if pre {
			name = "pre-provisioned content"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			snapID := e.addSnapshot(snapshotSpec{preProvisioned: pre})
			pv, state, err := e.provision(options(restoreClaim("2Gi"), newClass(nil)))
			if err != nil || state != controller.ProvisioningFinished {
				t.Fatalf("Provision = %v, %v; want a PV", state, err)
			}
			creates := e.calls(fake.OpCreateVolume)
			if len(creates) != 1 || creates[0].Request.SnapshotID != snapID || creates[0].Request.SourceVolumeID != "" {
				t.Fatalf("creates = %+v, want one with snapshot_id %s", creates, snapID)
			}
			if md := creates[0].Request.Metadata; md[contract.MetaSourceSnapshot] != snapID {
				t.Errorf("metadata %v does not record the snapshot", md)
			}
			if v, _ := e.cinder.Volume(pv.Annotations[contract.AnnVolumeID]); v.SnapshotID != snapID || v.SizeGiB != 2 {
				t.Errorf("volume %+v, want 2 GiB from snapshot %s", v, snapID)
			}
		})
	}
}

func TestRestoreRefusals(t *testing.T) {
	tests := []struct {
		name   string
		snap   snapshotSpec
		setup  func(e *env)
		size   string
		reason string
		want   string
	}{
		{"not ready", snapshotSpec{notReady: true}, nil, "", ReasonInvalidDataSource, "not readyToUse"},
		{"not bound", snapshotSpec{unbound: true}, nil, "", ReasonInvalidDataSource, "not bound to a VolumeSnapshotContent"},
		{"content bound elsewhere", snapshotSpec{otherRef: true}, nil, "", ReasonInvalidDataSource, "bound to another snapshot"},
		{"handle no Cinder id", snapshotSpec{noHandle: true}, nil, "", ReasonInvalidDataSource, "not a Cinder snapshot id"},
		{"not in Cinder", snapshotSpec{cinderStatus: "-"}, nil, "", ReasonInvalidDataSource, "does not exist in this Cinder project"},
		{"Cinder snapshot in error", snapshotSpec{cinderStatus: "error"}, nil, "", ReasonInvalidDataSource, "is error: Cinder restores only available snapshots"},
		{"Cinder snapshot creating", snapshotSpec{cinderStatus: "creating"}, nil, "", ReasonInvalidDataSource, "is creating"},
		{"smaller than the restore size", snapshotSpec{restoreSize: "3Gi", sizeGiB: 3}, nil, "2Gi", ReasonInvalidClaim, "less than the restore size 3Gi"},
		{"smaller than the Cinder snapshot", snapshotSpec{restoreSize: "1Gi", sizeGiB: 3}, nil, "2Gi", ReasonInvalidClaim, "less than the 3 GiB of Cinder snapshot"},
		{"no snapshot API", snapshotSpec{}, func(e *env) {
			d := dynfake.NewSimpleDynamicClient(runtime.NewScheme())
			d.PrependReactor("get", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 404,
					Reason: metav1.StatusReasonNotFound, Message: "the server could not find the requested resource"}}
			})
			e.p.dynamic = d
		}, "", ReasonInvalidDataSource, "is not installed in this cluster"},
		{"no such VolumeSnapshot", snapshotSpec{}, func(e *env) {
			e.p.dynamic = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
				gvrSnapshot: "VolumeSnapshotList", gvrSnapshotContent: "VolumeSnapshotContentList"})
		}, "", ReasonInvalidDataSource, "VolumeSnapshot app/snap does not exist"},
		{"no dynamic client", snapshotSpec{}, func(e *env) { e.p.dynamic = nil }, "", ReasonInvalidDataSource, "no client for the snapshot API"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addSnapshot(tc.snap)
			if tc.setup != nil {
				tc.setup(e)
			}
			size := tc.size
			if size == "" {
				size = "1Gi"
			}
			_, state, err := e.provision(options(restoreClaim(size), newClass(nil)))
			if err == nil || state != controller.ProvisioningFinished {
				t.Fatalf("Provision = %v, %v; want a refusal", state, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if msg := e.oneWarning(tc.reason); !strings.Contains(msg, tc.want) {
				t.Errorf("event %q does not say %q", msg, tc.want)
			}
			if c := e.calls(fake.OpCreateVolume); len(c) != 0 {
				t.Errorf("creates = %v, want none", c)
			}
		})
	}
}

// A restore whose create answer was lost is found again by name.
func TestRestoreCreateAnswerLost(t *testing.T) {
	e := newEnv(t)
	snapID := e.addSnapshot(snapshotSpec{})
	opts := options(restoreClaim("1Gi"), newClass(nil))
	e.cinder.LoseAnswer(fake.OpCreateVolume, cinder.NewError("create volume", testPVName, cinder.ErrUnavailable, "reset"))
	if _, state, err := e.provision(opts); err == nil || state != controller.ProvisioningInBackground {
		t.Fatalf("first attempt = %v, %v; want InBackground", state, err)
	}
	pv, _, err := e.provision(opts)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if v, _ := e.cinder.Volume(pv.Annotations[contract.AnnVolumeID]); v.SnapshotID != snapID {
		t.Errorf("volume %+v is not the restore of %s", v, snapID)
	}
	if n := len(e.calls(fake.OpCreateVolume)); n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
}

// A source refusal is not remembered as final: once the source is ready
// the claim is served without a change to the claim or the class.
func TestSourceRefusalIsRetried(t *testing.T) {
	e := newEnv(t)
	e.addSource(sourceSpec{phase: corev1.ClaimPending})
	opts := options(cloneClaim("1Gi"), newClass(nil))
	if _, _, err := e.provision(opts); err == nil {
		t.Fatal("a Pending source was cloned")
	}
	c, _ := e.kube.CoreV1().PersistentVolumeClaims("app").Get(e.ctx, srcClaimName, metav1.GetOptions{})
	c.Status.Phase = corev1.ClaimBound
	if _, err := e.kube.CoreV1().PersistentVolumeClaims("app").UpdateStatus(e.ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.provision(opts); err != nil {
		t.Fatalf("after the source is Bound: %v", err)
	}
}

// A clone made, whose export failed, and whose source claim is deleted
// before the retry: the finished clone is bound, not removed, whatever
// status the failed export left it in (the backend failing inside the
// attachment create leaves it reserved: the only copy of the data then).
func TestCloneMadeThenSourceDeleted(t *testing.T) {
	for _, op := range []string{fake.OpExport, fake.OpInitializeConnection} {
		t.Run("export failed at "+op, func(t *testing.T) {
			e := newEnv(t)
			srcID := e.addSource(sourceSpec{})
			opts := options(cloneClaim("1Gi"), newClass(nil))
			e.cinder.FailNext(op, cinder.NewError("export volume", "", cinder.ErrUnavailable, "tgtd down"))
			if _, state, err := e.provision(opts); err == nil || state != controller.ProvisioningInBackground {
				t.Fatalf("first attempt = %v, %v; want InBackground", state, err)
			}
			if slices.Contains(e.sourceFinalizers(), contract.FinalizerCloneSource) {
				t.Fatal("source still protected once the clone exists")
			}
			if err := e.kube.CoreV1().PersistentVolumeClaims("app").Delete(e.ctx, srcClaimName, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			e.drainEvents()
			pv, state, err := e.provision(opts)
			if err != nil || state != controller.ProvisioningFinished {
				t.Fatalf("retry = %v, %v; want a PV", state, err)
			}
			if v, _ := e.cinder.Volume(pv.Annotations[contract.AnnVolumeID]); v.SourceVolumeID != srcID {
				t.Errorf("PV's volume %+v is not the clone of %s", v, srcID)
			}
			if n := len(e.calls(fake.OpCreateVolume)); n != 1 {
				t.Errorf("%d creates, want 1", n)
			}
			if n := len(e.calls(fake.OpDeleteVolume)); n != 0 {
				t.Errorf("%d DELETEs: the clone was removed", n)
			}
		})
	}
}
