package provisioner

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// kill -9 right after Cinder accepted a clone's create: the source keeps its
// cloning-protection finalizer; the next process finds the clone by name,
// binds the claim to it (one volume, the source's data) and releases the
// source.
func TestKillAfterCloneCreateBindsOneCloneAndReleasesSource(t *testing.T) {
	e := newEnv(t)
	proxy := e.s.NewCinderProxy(t)
	var first *framework.Process
	proxy.AfterApplied(isPost("/volumes", "source_volid"), func() { first.Kill(t) })
	first = e.provisioner("provisioner-1", "--cloud-config", e.s.CloudConfVia(t, proxy))
	class := e.storageClass("tgtfile", nil)
	block := corev1.PersistentVolumeBlock
	src := e.claim("origin", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	srcPV := e.waitBound(src)
	p := framework.NewPattern(uint64(time.Now().UnixNano()) + 2)
	e.writePattern(srcPV, p)

	clone := e.claim("copy", class, "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.VolumeMode = &block
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: src.Name}
	})
	proxy.Fired(t, bindTimeout)
	name := "pvc-" + string(clone.UID)
	id := e.onlyVolume(name)
	if !slices.Contains(e.sourceFinalizers(src.Name), cloneFinalizer) {
		t.Errorf("after the kill the source has finalizers %v, want %s", e.sourceFinalizers(src.Name), cloneFinalizer)
	}
	start := time.Now()
	e.provisioner("provisioner-2", createApplied)
	pv := e.waitBoundWithin(clone, recoverTimeout)
	if got := e.onlyVolume(name); got != id || pv.Annotations[annVolumeID] != id {
		t.Errorf("clone bound to volume %s (PV says %s), want the one made before the kill, %s", got, pv.Annotations[annVolumeID], id)
	}
	t.Logf("clone bound %.1fs after the restart, to volume %s", time.Since(start).Seconds(), id)
	e.expectPattern(pv, p, "clone made before the kill")
	framework.Eventually(t, bindTimeout, "the source keeps the cloning-protection finalizer", func(context.Context) (bool, error) {
		return !slices.Contains(e.sourceFinalizers(src.Name), cloneFinalizer), nil
	})
}
