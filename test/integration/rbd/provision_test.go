package rbd

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// A filesystem and a block claim of an RBD class each become one RBD image
// of Cinder's rbd backend; each PV is a ceph-csi static volume whose image
// opens through librbd from the PV's fields only, holds what is written to
// it and has the claim's size. Deleting the claims removes the volumes and
// the images from the pool.
func TestRBDClaimsBindToImagesReadThroughTheirPVs(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.rbdClass()
	fs := e.claim("fs", class, "1Gi")
	block := e.claim("block", class, "1Gi", blockMode)
	for _, pvc := range []*corev1.PersistentVolumeClaim{fs, block} {
		start := time.Now()
		pv := e.waitBound(pvc)
		t.Logf("claim %s bound to PV %s in %s", pvc.Name, pv.Name, time.Since(start).Round(time.Millisecond))
		e.checkRBDPV(pvc, pv, gib(1))
		wantFS := pvc.Name == "fs"
		if (pv.Spec.CSI.FSType != "") != wantFS || (pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == corev1.PersistentVolumeBlock) == wantFS {
			t.Errorf("PV %s: fsType %q, volumeMode %v", pv.Name, pv.Spec.CSI.FSType, pv.Spec.VolumeMode)
		}
		p := newPattern(uint64(time.Now().UnixNano()))
		e.writePattern(pv, p)
		e.expectPattern(pv, p, pvc.Name)
		if v := e.cinderVolume(pv); v.VolumeType != "rbd" || v.Status != "in-use" {
			t.Errorf("Cinder volume %s: type %s, status %s; want rbd, in-use", v.ID, v.VolumeType, v.Status)
		}
	}
	if imgs := e.images(); len(imgs) != 2 {
		t.Errorf("the pool holds %v of the test's images, want 2", imgs)
	}
	// delete one claim: its volume and its image go, the other stays
	id := e.cinderVolume(e.waitBound(fs)).ID
	e.deleteClaim(fs)
	e.imageGone(id)
	framework.Eventually(t, bindTimeout, "volume "+id+" still in Cinder", func(ctx context.Context) (bool, error) {
		return len(e.volumesNamed("pvc-"+string(fs.UID))) == 0, nil
	})
	if imgs := e.images(); len(imgs) != 1 {
		t.Errorf("after deleting one claim the pool holds %v, want only the block claim's image", imgs)
	}
}

// A clone of an RBD claim reads its source's pattern through its own PV.
func TestRBDCloneReadsSourcePattern(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.rbdClass()
	src := e.claim("origin", class, "1Gi", blockMode)
	srcPV := e.waitBound(src)
	p := newPattern(uint64(time.Now().UnixNano()) + 7)
	e.writePattern(srcPV, p)

	clone := e.claim("copy", class, "2Gi", blockMode, func(c *corev1.PersistentVolumeClaim) {
		c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: src.Name}
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: src.Name}
	})
	clonePV := e.waitBoundWithin(clone, 2*bindTimeout)
	e.checkRBDPV(clone, clonePV, gib(2))
	e.expectPattern(clonePV, p, "clone")
	v := e.cinderVolume(clonePV)
	if v.SourceVolID != srcPV.Annotations[annVolumeID] || v.Size != 2 {
		t.Errorf("clone volume: source_volid %q, size %d; want a 2 GiB clone of %s", v.SourceVolID, v.Size, srcPV.Annotations[annVolumeID])
	}
	// the clone is its own image: writing to it leaves the source as it was
	q := newPattern(uint64(time.Now().UnixNano()) + 8)
	e.writePattern(clonePV, q)
	e.expectPattern(srcPV, p, "source after writing the clone")

	// The clone goes first, and fully, before its source: Cinder 21's RBD
	// driver leaks the source's image when both are deleted at once (the
	// source, which still has a dependent clone, is renamed
	// volume-<id>.deleted while the clone's delete looks its parent up by
	// the old name, fails with ImageNotFound and never removes the
	// .deleted image nor its protected clone_snap; seen here with both
	// claims in one DeleteCollection). Not ours to fix: docs/configuration.md.
	cloneID := clonePV.Annotations[annVolumeID]
	e.deleteClaim(clone)
	e.imageGone(cloneID)
}

// Resizing: a block claim's image grows in Ceph (read through librbd from
// the PV); a filesystem claim's volume grows and the claim is left
// NodeResizePending, for the kubelet (ceph-csi's NodeExpandVolume) to grow
// the filesystem.
func TestRBDResizeBlockAndFilesystem(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.rbdClass(expandable)
	block := e.claim("grow-block", class, "1Gi", blockMode)
	fs := e.claim("grow-fs", class, "1Gi")
	blockPV, fsPV := e.waitBound(block), e.waitBound(fs)
	p := newPattern(uint64(time.Now().UnixNano()) + 3)
	e.writePattern(blockPV, p)
	for _, pvc := range []*corev1.PersistentVolumeClaim{block, fs} {
		patch := `{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`
		if _, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(context.Background(), pvc.Name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("grow claim %s: %v", pvc.Name, err)
		}
	}
	// block: done by the controller alone
	framework.Eventually(t, 2*time.Minute, "block claim never showed 2Gi", func(ctx context.Context) (bool, error) {
		c := e.getClaim(block)
		q := c.Status.Capacity[corev1.ResourceStorage]
		return q.Value() == gib(2), nil
	})
	e.waitEvent(block, corev1.EventTypeNormal, "VolumeResized")
	blockPV = e.getPV(blockPV.Name)
	if v := e.cinderVolume(blockPV); v.Size != 2 {
		t.Errorf("block claim's Cinder volume is %d GiB, want 2", v.Size)
	}
	e.expectSize(blockPV, gib(2))
	e.expectPattern(blockPV, p, "grown block image")

	// filesystem: the volume grows, the kubelet's part is left pending
	framework.Eventually(t, 2*time.Minute, "filesystem claim never NodeResizePending", func(ctx context.Context) (bool, error) {
		c := e.getClaim(fs)
		return c.Status.AllocatedResourceStatuses[corev1.ResourceStorage] == corev1.PersistentVolumeClaimNodeResizePending, nil
	})
	ev := e.waitEvent(fs, corev1.EventTypeNormal, "FileSystemResizePending")
	t.Logf("filesystem claim: %s", ev.Message)
	c := e.getClaim(fs)
	if q := c.Status.Capacity[corev1.ResourceStorage]; q.Value() != gib(1) {
		t.Errorf("filesystem claim's capacity %s before the kubelet grew it, want 1Gi", q.String())
	}
	if q := c.Status.AllocatedResources[corev1.ResourceStorage]; q.Value() != gib(2) {
		t.Errorf("filesystem claim's allocatedResources %s, want 2Gi", q.String())
	}
	fsPV = e.getPV(fsPV.Name)
	if q := fsPV.Spec.Capacity[corev1.ResourceStorage]; q.Value() != gib(2) {
		t.Errorf("filesystem PV capacity %s, want 2Gi", q.String())
	}
	e.expectSize(fsPV, gib(2))
}

// A Retain class keeps the volume and its image when the claim goes; the
// test then removes them itself, and the pool holds none of them.
func TestRBDRetainKeepsVolumeAndImage(t *testing.T) {
	e := newEnv(t)
	e.keep = true
	e.provisioner("provisioner")
	class := e.rbdClass(func(sc *storagev1.StorageClass) {
		r := corev1.PersistentVolumeReclaimRetain
		sc.ReclaimPolicy = &r
	})
	pvc := e.claim("kept", class, "1Gi", blockMode)
	pv := e.waitBound(pvc)
	p := newPattern(uint64(time.Now().UnixNano()) + 5)
	e.writePattern(pv, p)
	id := pv.Annotations[annVolumeID]
	e.deleteClaim(pvc)
	framework.Eventually(t, bindTimeout, "PV never Released", func(ctx context.Context) (bool, error) {
		return e.getPV(pv.Name).Status.Phase == corev1.VolumeReleased, nil
	})
	// give a wrong deletion the time to happen
	time.Sleep(5 * time.Second)
	if v := e.cinderVolume(pv); v.ID != id {
		t.Fatalf("volume %s gone", id)
	}
	if imgs := e.images(); len(imgs) != 1 {
		t.Fatalf("the pool holds %v, want the retained image", imgs)
	}
	e.expectPattern(e.getPV(pv.Name), p, "retained image")
	// the admin's cleanup: the PV; the volume (still exported, as Retain
	// leaves it) goes with the framework's cleanup, which unexports first
	e.deletePVs()
	// the framework's cleanup force-removes what is still exported; the
	// pool must then hold nothing of the test (noImagesLeft)
}

// A class naming a Ceph Secret that does not exist is refused before any
// volume is made, with an Event naming the Secret; once the admin creates
// the Secret the claim binds. A Secret without userKey is refused too.
func TestRBDMissingOrWrongCephSecretRefusedWithNothingLeft(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	missing := e.rbdClass(func(sc *storagev1.StorageClass) { sc.Parameters["cephSecretName"] = "not-there" })
	pvc := e.claim("no-secret", missing, "1Gi")
	ev := e.waitEvent(pvc, corev1.EventTypeWarning, "ProvisioningFailed")
	if !strings.Contains(ev.Message, "not-there") {
		t.Errorf("event %q does not name the missing Secret", ev.Message)
	}
	t.Logf("missing Secret: %s", ev.Message)
	if n := len(e.volumes()); n != 0 {
		t.Errorf("%d volumes made for a claim whose Ceph Secret is missing", n)
	}

	wrong := e.rbdClass(func(sc *storagev1.StorageClass) { sc.Parameters["cephSecretName"] = "no-key" })
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "no-key", Namespace: e.cephNS}, StringData: map[string]string{"userID": "cinder"}}
	if _, err := e.s.Kube.CoreV1().Secrets(e.cephNS).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc2 := e.claim("no-key", wrong, "1Gi")
	ev = e.waitEvent(pvc2, corev1.EventTypeWarning, "ProvisioningFailed")
	if !strings.Contains(ev.Message, "userKey") {
		t.Errorf("event %q does not say the Secret lacks userKey", ev.Message)
	}
	t.Logf("Secret without userKey: %s", ev.Message)
	if n := len(e.volumes()); n != 0 {
		t.Errorf("%d volumes made for claims whose Ceph Secret is missing or wrong", n)
	}

	// the admin creates the missing Secret: the first claim binds
	e.s.CephSecret(t, e.cephNS, "not-there")
	pv := e.waitBoundWithin(pvc, 3*bindTimeout)
	e.checkRBDPVWithSecret(pvc, pv, gib(1), "not-there")
}
