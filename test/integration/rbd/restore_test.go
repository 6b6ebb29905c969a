package rbd

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// A claim restored from a VolumeSnapshot whose content holds a Cinder
// snapshot of an RBD volume (an RBD snapshot in Ceph) reads the pattern the
// source held when the snapshot was taken, not what was written after.
func TestRBDRestoreFromCinderSnapshot(t *testing.T) {
	e := newEnv(t)
	dyn := e.s.InstallSnapshotCRDs(t, bindTimeout)
	e.provisioner("provisioner")
	class := e.rbdClass()
	src := e.claim("origin", class, "1Gi", blockMode)
	srcPV := e.waitBound(src)
	p := newPattern(uint64(time.Now().UnixNano()) + 21)
	e.writePattern(srcPV, p)

	// deleted before the final check: the source volume can only go once
	// its snapshot is gone
	snap := framework.CreateCinderSnapshot(t, e.cinder, srcPV.Annotations[annVolumeID], "it-"+e.clusterID, bindTimeout)
	// written after the snapshot: the restore must not see it
	e.writePattern(srcPV, newPattern(uint64(time.Now().UnixNano())+22))

	// the VolumeSnapshot and its pre-provisioned content, statuses set by
	// hand (with or without the stack's snapshot-controller)
	contentName := "rbd-content-" + e.clusterID
	vs := framework.CreateStaticVolumeSnapshot(t, dyn, e.ns, "snap", contentName)
	framework.CreateStaticSnapshotContent(t, dyn, vs, contentName, snap.ID)
	framework.MarkSnapshotReady(t, dyn, vs, contentName, snap.ID, gib(1), bindTimeout)
	restore := e.claim("restored", class, "1Gi", blockMode, func(c *corev1.PersistentVolumeClaim) {
		group := "snapshot.storage.k8s.io"
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: "snap"}
	})
	restorePV := e.waitBoundWithin(restore, 2*bindTimeout)
	e.checkRBDPV(restore, restorePV, gib(1))
	e.expectPattern(restorePV, p, "restore")
	if v := e.cinderVolume(restorePV); v.SnapshotID != snap.ID {
		t.Errorf("restored volume's snapshot_id %q, want %s", v.SnapshotID, snap.ID)
	}
	// the restore's claim and volume go before the snapshot's cleanup
	id := restorePV.Annotations[annVolumeID]
	e.deleteClaim(restore)
	e.imageGone(id)
}
