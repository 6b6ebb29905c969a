package provisioner

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const cloneFinalizer = "cinder.openstack.org/cloning-protection"

// iscsiLogin is the userspace login a kubelet would make from the PV.
func (e *env) iscsiLogin(pv *corev1.PersistentVolume) framework.ISCSILogin {
	e.t.Helper()
	l, err := framework.ISCSILoginFromPV(context.Background(), e.s.Kube, pv)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// writePattern puts the pattern on the PV's LUN and reads it back (which
// also proves the reader finds the data, not something else).
func (e *env) writePattern(pv *corev1.PersistentVolume, p framework.Pattern) {
	e.t.Helper()
	if err := framework.WritePattern(context.Background(), e.iscsiLogin(pv), p); err != nil {
		e.t.Fatalf("write pattern: %v", err)
	}
	e.expectPattern(pv, p, "source, read back")
}

func (e *env) expectPattern(pv *corev1.PersistentVolume, p framework.Pattern, what string) {
	e.t.Helper()
	holds, head, err := framework.ReadPattern(context.Background(), e.iscsiLogin(pv), p)
	if err != nil {
		e.t.Fatalf("%s: read: %v", what, err)
	}
	if !holds {
		e.t.Fatalf("%s: PV %s's LUN does not hold the pattern (first bytes %x, want %x)", what, pv.Name, head[:8], p.Head[:8])
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
	p := framework.NewPattern(uint64(time.Now().UnixNano()))
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

func TestRestoreFromVolumeSnapshot(t *testing.T) {
	e := newEnv(t)
	dyn := e.s.InstallSnapshotCRDs(t, bindTimeout)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil)
	block := corev1.PersistentVolumeBlock
	src := e.claim("origin", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	srcPV := e.waitBound(src)
	p := framework.NewPattern(uint64(time.Now().UnixNano()) + 1)
	e.writePattern(srcPV, p)
	ctx := context.Background()

	// the Cinder snapshot, taken straight through Cinder's API (the volume
	// is in-use: exported to the PV's connector, so force); deleted before
	// the final check
	snap := framework.CreateCinderSnapshot(t, e.cinder, srcPV.Annotations["cinder.openstack.org/volume-id"], "it-"+e.clusterID, bindTimeout)

	// the VolumeSnapshot and its pre-provisioned content, statuses set by
	// hand (with or without the stack's snapshot-controller)
	contentName := "it-content-" + e.clusterID
	vs := framework.CreateStaticVolumeSnapshot(t, dyn, e.ns, "snap", contentName)
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
	framework.CreateStaticSnapshotContent(t, dyn, vs, contentName, snap.ID)
	framework.MarkSnapshotReady(t, dyn, vs, contentName, snap.ID, 1<<30, bindTimeout)
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
