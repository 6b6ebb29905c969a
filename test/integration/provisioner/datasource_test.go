package provisioner

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const cloneFinalizer = "cinder.openstack.org/cloning-protection"

// iscsiLogin is the userspace login a kubelet would make from the PV.
func (e *env) iscsiLogin(pv *corev1.PersistentVolume) framework.ISCSILogin {
	e.t.Helper()
	src := pv.Spec.ISCSI
	if src == nil || src.InitiatorName == nil {
		e.t.Fatalf("PV %s has no iSCSI source with an initiatorName", pv.Name)
	}
	sec := e.chapSecret(pv)
	return framework.ISCSILogin{
		Initiator: *src.InitiatorName, Portal: src.TargetPortal, IQN: src.IQN, LUN: src.Lun,
		Username: string(sec.Data["node.session.auth.username"]), Password: string(sec.Data["node.session.auth.password"]),
	}
}

// pattern is 64 KiB of a seeded pseudo-random pattern, written at two
// places of a LUN: its first blocks and at 512 MiB.
type pattern struct{ head, mid []byte }

const patternMidLBA = 512 << 20 / 512

func newPattern(seed uint64) pattern {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := pattern{head: make([]byte, 64<<10), mid: make([]byte, 64<<10)}
	for i := range p.head {
		p.head[i], p.mid[i] = byte(r.Uint32()), byte(r.Uint32())
	}
	return p
}

// write puts the pattern on the PV's LUN and reads it back (which also
// proves the reader finds the data, not something else).
func (e *env) writePattern(pv *corev1.PersistentVolume, p pattern) {
	e.t.Helper()
	ctx := context.Background()
	l := e.iscsiLogin(pv)
	if err := framework.WriteBlocks(ctx, l, 0, p.head); err != nil {
		e.t.Fatalf("write pattern: %v", err)
	}
	if err := framework.WriteBlocks(ctx, l, patternMidLBA, p.mid); err != nil {
		e.t.Fatalf("write pattern: %v", err)
	}
	e.expectPattern(pv, p, "source, read back")
}

func (e *env) expectPattern(pv *corev1.PersistentVolume, p pattern, what string) {
	e.t.Helper()
	ctx := context.Background()
	l := e.iscsiLogin(pv)
	head, err := framework.ReadBlocks(ctx, l, 0, len(p.head))
	if err != nil {
		e.t.Fatalf("%s: read: %v", what, err)
	}
	mid, err := framework.ReadBlocks(ctx, l, patternMidLBA, len(p.mid))
	if err != nil {
		e.t.Fatalf("%s: read: %v", what, err)
	}
	if !bytes.Equal(head, p.head) || !bytes.Equal(mid, p.mid) {
		e.t.Fatalf("%s: PV %s's LUN does not hold the pattern (first bytes %x, want %x)", what, pv.Name, head[:8], p.head[:8])
	}
	e.t.Logf("%s: PV %s (%s) reads the 128 KiB pattern", what, pv.Name, describe(pv))
}

func (e *env) sourceFinalizers(name string) []string {
	e.t.Helper()
	c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get claim %s: %v", name, err)
	}
	return c.Finalizers
}

func TestCloneOfClaimReadsSourcePattern(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil)
	block := corev1.PersistentVolumeBlock
	src := e.claim("origin", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	srcPV := e.waitBound(src)
	p := newPattern(uint64(time.Now().UnixNano()))
	e.writePattern(srcPV, p)

	start := time.Now()
	clone := e.claim("copy", class, "2Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.VolumeMode = &block
		c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: src.Name}
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: src.Name}
	})
	clonePV := e.waitBound(clone)
	t.Logf("clone bound in %s", time.Since(start).Round(time.Millisecond))
	e.expectPattern(clonePV, p, "clone")

	v, err := volumes.Get(context.Background(), e.cinder, clonePV.Annotations["cinder.openstack.org/volume-id"]).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if v.SourceVolID != srcPV.Annotations["cinder.openstack.org/volume-id"] || v.Size != 2 || v.Metadata["cinder.openstack.org/source-volume-id"] != v.SourceVolID {
		t.Errorf("clone volume: source_volid %q, size %d, metadata %v; want a 2 GiB clone of %s", v.SourceVolID, v.Size, v.Metadata, srcPV.Annotations["cinder.openstack.org/volume-id"])
	}
	framework.Eventually(t, bindTimeout, "the source keeps the cloning-protection finalizer", func(context.Context) (bool, error) {
		return !slices.Contains(e.sourceFinalizers(src.Name), cloneFinalizer), nil
	})
	// a clone smaller than its source is refused before anything is made
	small := e.claim("too-small", class, "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.VolumeMode = &block
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: clone.Name}
	})
	ev := e.waitEvent(small, "UnsupportedClaim")
	if !strings.Contains(ev.Message, "less than the 2 GiB") {
		t.Errorf("event %q does not say the clone is too small", ev.Message)
	}
	if n := len(e.volumesNamed("pvc-" + string(small.UID))); n != 0 {
		t.Errorf("%d volumes for the refused clone", n)
	}
}

var (
	gvrCRD             = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gvrSnapshot        = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
	gvrSnapshotContent = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}
)

// installSnapshotCRDs installs external-snapshotter's v1 CRDs from
// testdata (left installed: other tests may use them) and waits until the
// API server serves them.
func installSnapshotCRDs(t *testing.T, s *framework.Stack) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(s.RepoRoot, "test/integration/testdata/snapshot-crds/*.yaml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("snapshot CRDs in testdata: %v %v", files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := dyn.Resource(gvrCRD).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", obj.GetName(), err)
		}
	}
	framework.Eventually(t, bindTimeout, "snapshot CRDs not served", func(ctx context.Context) (bool, error) {
		_, err1 := dyn.Resource(gvrSnapshotContent).List(ctx, metav1.ListOptions{Limit: 1})
		_, err2 := dyn.Resource(gvrSnapshot).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1})
		return err1 == nil && err2 == nil, nil
	})
	return dyn
}

func TestRestoreFromVolumeSnapshot(t *testing.T) {
	e := newEnv(t)
	dyn := installSnapshotCRDs(t, e.s)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil)
	block := corev1.PersistentVolumeBlock
	src := e.claim("origin", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	srcPV := e.waitBound(src)
	p := newPattern(uint64(time.Now().UnixNano()) + 1)
	e.writePattern(srcPV, p)
	ctx := context.Background()

	// the Cinder snapshot, taken straight through Cinder's API (the volume
	// is in-use: exported to the PV's connector, so force)
	snap, err := snapshots.Create(ctx, e.cinder, snapshots.CreateOpts{VolumeID: srcPV.Annotations["cinder.openstack.org/volume-id"], Force: true, Name: "it-" + e.clusterID}).Extract()
	if err != nil {
		t.Fatalf("create Cinder snapshot: %v", err)
	}
	// the source volume can only go once its snapshot is gone: runs before
	// the final check (cleanups run last first)
	t.Cleanup(func() {
		_ = snapshots.Delete(context.Background(), e.cinder, snap.ID).ExtractErr()
		framework.Eventually(t, bindTimeout, "Cinder snapshot "+snap.ID+" not deleted", func(ctx context.Context) (bool, error) {
			_, err := snapshots.Get(ctx, e.cinder, snap.ID).Extract()
			return err != nil && strings.Contains(err.Error(), "404"), nil
		})
	})
	framework.Eventually(t, bindTimeout, "Cinder snapshot never available", func(ctx context.Context) (bool, error) {
		s, err := snapshots.Get(ctx, e.cinder, snap.ID).Extract()
		if err != nil {
			return false, err
		}
		if s.Status == "error" {
			t.Fatalf("Cinder snapshot %s went to error (cinder-volume's driver)", snap.ID)
		}
		return s.Status == "available", nil
	})

	// the VolumeSnapshot and its pre-provisioned content, statuses set by
	// hand (with or without the stack's snapshot-controller)
	contentName := "it-content-" + e.clusterID
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": "snap", "namespace": e.ns},
		"spec":     map[string]any{"source": map[string]any{"volumeSnapshotContentName": contentName}},
	}}
	vs, err = dyn.Resource(gvrSnapshot).Namespace(e.ns).Create(ctx, vs, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create VolumeSnapshot: %v", err)
	}
	// a claim made before the snapshot is ready (its content does not
	// exist yet) waits, and gets served once it is
	restore := e.claim("restored", class, "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.VolumeMode = &block
		group := "snapshot.storage.k8s.io"
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: "snap"}
	})
	ev := e.waitEvent(restore, "InvalidDataSource")
	if !strings.Contains(ev.Message, "not bound to a VolumeSnapshotContent yet") {
		t.Errorf("event before the snapshot is ready: %q", ev.Message)
	}
	content := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
		"metadata": map[string]any{"name": contentName},
		"spec": map[string]any{
			"driver": "cinder.csi.openstack.org", "deletionPolicy": "Retain",
			"source":            map[string]any{"snapshotHandle": snap.ID},
			"volumeSnapshotRef": map[string]any{"name": "snap", "namespace": e.ns, "uid": string(vs.GetUID())},
		},
	}}
	_, err = dyn.Resource(gvrSnapshotContent).Create(ctx, content, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create VolumeSnapshotContent: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = dyn.Resource(gvrSnapshot).Namespace(e.ns).Delete(ctx, "snap", metav1.DeleteOptions{})
		_ = dyn.Resource(gvrSnapshotContent).Delete(ctx, contentName, metav1.DeleteOptions{})
		// the stack's snapshot-controller puts its bound-protection
		// finalizer on the content; no sidecar of that driver removes it
		if c, err := dyn.Resource(gvrSnapshotContent).Get(ctx, contentName, metav1.GetOptions{}); err == nil {
			c.SetFinalizers(nil)
			_, _ = dyn.Resource(gvrSnapshotContent).Update(ctx, c, metav1.UpdateOptions{})
		}
	})
	// the statuses, as csi-snapshotter (content) and the snapshot
	// controller (VolumeSnapshot) would write them; the stack's
	// snapshot-controller may write the VolumeSnapshot's itself: a
	// conflict is retried, a ready one is left as it is
	framework.Eventually(t, bindTimeout, "VolumeSnapshotContent status not set", func(ctx context.Context) (bool, error) {
		c, err := dyn.Resource(gvrSnapshotContent).Get(ctx, contentName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c.Object["status"] = map[string]any{"snapshotHandle": snap.ID, "readyToUse": true, "restoreSize": int64(1 << 30)}
		_, err = dyn.Resource(gvrSnapshotContent).UpdateStatus(ctx, c, metav1.UpdateOptions{})
		return err == nil, nil
	})
	framework.Eventually(t, bindTimeout, "VolumeSnapshot status not set", func(ctx context.Context) (bool, error) {
		cur, err := dyn.Resource(gvrSnapshot).Namespace(e.ns).Get(ctx, "snap", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if ready, _, _ := unstructured.NestedBool(cur.Object, "status", "readyToUse"); ready {
			return true, nil
		}
		cur.Object["status"] = map[string]any{"boundVolumeSnapshotContentName": contentName, "readyToUse": true, "restoreSize": "1Gi"}
		_, err = dyn.Resource(gvrSnapshot).Namespace(e.ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err == nil, nil
	})
	restorePV := e.waitBoundWithin(restore, 3*bindTimeout)
	e.expectPattern(restorePV, p, "restore")
	v, err := volumes.Get(ctx, e.cinder, restorePV.Annotations["cinder.openstack.org/volume-id"]).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if v.SnapshotID != snap.ID {
		t.Errorf("restored volume's snapshot_id %q, want %s", v.SnapshotID, snap.ID)
	}
	// the restore's PV and volume go before the snapshot's cleanup
	e.deleteClaim(restore)
	e.volumeGone(v.ID)
}

// A claim whose dataSourceRef is a volume populator's is left to it: no
// volume, no Warning Event, Pending.
func TestPopulatorDataSourceLeftAlone(t *testing.T) {
	e := newEnv(t)
	p := e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil)
	group := "hello.example.com"
	pvc := e.claim("populated", class, "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: &group, Kind: "Hello", Name: "greeting"}
	})
	// the library called Provision and was told to leave it (its log)
	framework.Eventually(t, bindTimeout, "the provisioner never looked at the claim", func(context.Context) (bool, error) {
		return p.LogContains("Volume provision ignored") && p.LogContains("populated"), nil
	})
	c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(context.Background(), pvc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" {
		t.Errorf("claim is %s with volume %q, want Pending without one", c.Status.Phase, c.Spec.VolumeName)
	}
	if n := len(e.volumesNamed("pvc-" + string(pvc.UID))); n != 0 {
		t.Errorf("%d Cinder volumes for a populator's claim", n)
	}
	for _, ev := range e.claimEventsTyped(pvc) {
		if ev.Type == corev1.EventTypeWarning {
			t.Errorf("Warning event on a populator's claim: %s: %s", ev.Reason, ev.Message)
		}
	}
}
