package provisioner

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// Data safety: the admin workflows Kubernetes documents keep every byte,
// and the only volumes that go are the ones Kubernetes itself says are ours
// and unwanted.

const (
	provisioningFinalizer = "cinder.openstack.org/provisioning-protection"
	metaReclaimPolicy     = "cinder.openstack.org/reclaim-policy"
	// sweeps every 2 s with a grace of 3 s: a volume nothing protects but
	// proof would go within seconds
	sweepArgs = "--sweep-interval=2s"
	graceArg  = "--sweep-grace=3s"
)

// volume reads a volume from Cinder; nil when it is gone.
func (e *env) volume(id string) *volumes.Volume {
	e.t.Helper()
	v, err := volumes.Get(context.Background(), e.cinder, id).Extract()
	if err != nil {
		if strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "not be found") {
			return nil
		}
		e.t.Fatalf("get volume %s: %v", id, err)
	}
	return v
}

// holdsFor checks, every 250 ms for d, that the volume still exists, and
// counts the sweeps the provisioner logged meanwhile.
func (e *env) holdsFor(p *framework.Process, id string, d time.Duration, what string) {
	e.t.Helper()
	before := strings.Count(p.Log(), "Swept for unreferenced volumes")
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if e.volume(id) == nil {
			e.t.Fatalf("%s: volume %s was deleted", what, id)
		}
		time.Sleep(250 * time.Millisecond) // a bounded watch that nothing happens, not a wait for a condition
	}
	sweeps := strings.Count(p.Log(), "Swept for unreferenced volumes") - before
	if sweeps < 3 {
		e.t.Fatalf("%s: only %d sweeps ran in %s; the check proves nothing", what, sweeps, d)
	}
	e.t.Logf("%s: volume %s kept through %d sweeps", what, id, sweeps)
}

func (e *env) patchPV(name string, patch string) *corev1.PersistentVolume {
	e.t.Helper()
	pv, err := e.s.Kube.CoreV1().PersistentVolumes().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		e.t.Fatalf("patch PV %s: %v", name, err)
	}
	return pv
}

// The keep-the-disk workflow of the Kubernetes documentation ("Change the
// reclaim policy of a PersistentVolume"): a claim of a Delete class is
// bound and written; the admin patches its PV to Retain, deletes the claim,
// then the Released PV object, and later re-creates the disk as a static PV
// under another name for a new claim. Across many sweeps the volume, its
// export and its CHAP Secret stay, and the new claim reads the data.
func TestKeepTheDiskWorkflowKeepsEveryByte(t *testing.T) {
	e := newEnv(t)
	e.keepVolumes = true
	p := e.provisioner("provisioner", sweepArgs, graceArg)
	class := e.storageClass("tgtfile", nil)
	block := corev1.PersistentVolumeBlock
	pvc := e.claim("keep", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	pv := e.waitBound(pvc)
	id := pv.Annotations[annVolumeID]
	data := framework.NewPattern(uint64(time.Now().UnixNano()))
	e.writePattern(pv, data)

	// 1. Retain, mirrored into the volume's metadata
	e.patchPV(pv.Name, `{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}`)
	framework.Eventually(t, bindTimeout, "reclaim policy Retain never recorded on the volume", func(ctx context.Context) (bool, error) {
		v := e.volume(id)
		return v != nil && v.Metadata[metaReclaimPolicy] == "Retain", nil
	})
	// 2. the claim goes; the PV is Released, its volume kept
	e.deleteClaim(pvc)
	framework.Eventually(t, bindTimeout, "PV never Released", func(ctx context.Context) (bool, error) {
		got, err := e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.VolumeReleased, err
	})
	// 3. the PV object goes too: nothing in Kubernetes refers to the volume
	if err := e.s.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, bindTimeout, "PV object never went", func(ctx context.Context) (bool, error) {
		_, err := e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	e.holdsFor(p, id, 8*time.Second, "no PV, no claim, Retain")
	if !p.LogContains("Keeping a volume no PV refers to") {
		t.Error("the sweep did not report the volume no PV refers to")
	}

	// 4. re-created as a static PV under a new name, bound to a new claim
	static := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: framework.UniqueName("kept-disk")},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      pv.Spec.Capacity,
			AccessModes:                   pv.Spec.AccessModes,
			VolumeMode:                    pv.Spec.VolumeMode,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        pv.Spec.PersistentVolumeSource,
		},
	}
	if _, err := e.s.Kube.CoreV1().PersistentVolumes().Create(context.Background(), static, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.s.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), static.Name, metav1.DeleteOptions{})
	})
	empty := ""
	reuse := e.claim("reuse", "", "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.StorageClassName = &empty
		c.Spec.VolumeName = static.Name
		c.Spec.VolumeMode = &block
	})
	newPV := e.waitBound(reuse)
	e.holdsFor(p, id, 8*time.Second, "static PV of another name in use")
	if st := attachStatuses(e.attachmentsOf(id)); len(st) != 1 || st[0] != "attached" {
		t.Errorf("export of the kept volume: %v, want the one attached export", st)
	}
	e.expectPattern(newPV, data, "kept disk through the re-created static PV")

	// nothing else of the cluster: exactly the kept volume
	vols, err := framework.VolumesWithMetadata(context.Background(), e.cinder, "cinder.openstack.org/cluster-id", e.clusterID)
	if err != nil || len(vols) != 1 || vols[0].ID != id {
		t.Errorf("volumes of the cluster: %d (%v), want only the kept %s", len(vols), err, id)
	}
}

// A claim of a Retain class deleted while its volume is being exported,
// with the provisioner killed between the create and the PV save: no PV
// ever held the volume, so it is no retained data. The claim stays
// Terminating (the finalizer) until a provisioner runs again and removes
// the volume; then the claim goes and nothing is left.
func TestRetainClaimDeletedMidExportWhileDownLeavesNothing(t *testing.T) {
	e := newEnv(t)
	first := e.provisioner("provisioner-1")
	class := e.storageClass("tgtfile", nil, func(sc *storagev1.StorageClass) {
		retain := corev1.PersistentVolumeReclaimRetain
		sc.ReclaimPolicy = &retain
	})
	e.s.StopService(t, "tgtd")
	pvc := e.claim("in-flight", class, "1Gi")
	name := "pvc-" + string(pvc.UID)
	framework.Eventually(t, bindTimeout, "no volume made", func(ctx context.Context) (bool, error) {
		return len(e.volumesNamed(name)) == 1, nil
	})
	e.waitEvent(pvc, "CinderUnavailable")
	first.Kill(t)
	e.deleteClaim(pvc)
	live, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(context.Background(), pvc.Name, metav1.GetOptions{})
	if err != nil || live.DeletionTimestamp == nil || !slices.Contains(live.Finalizers, provisioningFinalizer) {
		t.Fatalf("claim deleted while no provisioner runs: %v, finalizers %v; want it Terminating, held by %s", err, live.Finalizers, provisioningFinalizer)
	}
	e.s.StartService(t, "tgtd")
	start := e.restartUntilClaimGone("provisioner-2", pvc)
	e.waitNoVolumeNamed(name)
	t.Logf("the restarted provisioner removed the volume and released the claim in %.1fs", time.Since(start).Seconds())
}

// orphans --delete --yes run while a clone's export fails (tgtd down) and
// its source claim has been deleted: the clone's volume is the only copy of
// the data, and its claim is still provisioning. orphans keeps it; once
// tgtd is back the clone binds and reads the source's pattern.
func TestOrphansNeverDeletesAnInFlightClone(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil)
	block := corev1.PersistentVolumeBlock
	src := e.claim("origin", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	srcPV := e.waitBound(src)
	data := framework.NewPattern(uint64(time.Now().UnixNano()))
	e.writePattern(srcPV, data)

	e.s.StopService(t, "tgtd")
	clone := e.claim("copy", class, "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.VolumeMode = &block
		c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: src.Name}
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: src.Name}
	})
	cloneName := "pvc-" + string(clone.UID)
	framework.Eventually(t, bindTimeout, "no clone volume", func(ctx context.Context) (bool, error) {
		return len(e.volumesNamed(cloneName)) == 1, nil
	})
	e.waitEvent(clone, "CinderUnavailable")
	cloneID := e.onlyVolume(cloneName)
	e.deleteClaim(src)

	// older than --min-age by Cinder's clock: age alone protects nothing
	framework.WaitOlderThan(t, e.cinder, cloneID, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.s.ProvisionerBinary(t), "orphans",
		"--kubeconfig", e.s.Kubeconfig, "--cloud-config", e.s.CloudConf,
		"--cluster-id", e.clusterID, "--provisioner-name", e.name, "--secret-namespace", e.secretNS,
		"--delete", "--yes", "--min-age", "1s").CombinedOutput()
	t.Logf("orphans --delete --yes:\n%s", out)
	if err != nil {
		// a failed deletion elsewhere (the source, being deleted while tgtd is down) may make it exit non-zero
		t.Logf("orphans exited: %v", err)
	}
	if e.volume(cloneID) == nil {
		t.Fatalf("orphans deleted the in-flight clone %s, the only copy of the data", cloneID)
	}
	e.s.StartService(t, "tgtd")
	clonePV := e.waitBoundWithin(clone, recoverTimeout)
	if clonePV.Annotations[annVolumeID] != cloneID {
		t.Errorf("clone bound to %s, want the in-flight %s", clonePV.Annotations[annVolumeID], cloneID)
	}
	e.expectPattern(clonePV, data, "clone kept through orphans --delete")
}

// Two cinder-provisioners of different names in one cluster (two clouds,
// two cluster ids) put the same finalizer on their claims. A claim of B's,
// deleted while B is down with its volume in flight, is left alone by A for
// as long as A runs, well past A's --create-lands window: A cannot see
// whether a volume of it exists, only B can. When B is back it removes the
// volume and the claim goes.
func TestClaimOfAnotherProvisionerIsLeftToIt(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	b.ns = a.ns // one namespace, two provisioners
	class := b.storageClass("tgtfile", nil)
	bProc := b.provisioner("provisioner-b")
	b.s.StopService(t, "tgtd")
	pvc := b.claim("of-b", class, "1Gi")
	name := "pvc-" + string(pvc.UID)
	framework.Eventually(t, bindTimeout, "no volume made", func(ctx context.Context) (bool, error) {
		return len(b.volumesNamed(name)) == 1, nil
	})
	id := b.volumesNamed(name)[0].ID
	b.waitEvent(pvc, "CinderUnavailable")
	bProc.Kill(t)
	b.deleteClaim(pvc)
	b.s.StartService(t, "tgtd")

	aProc := a.provisioner("provisioner-a", "--create-lands=1s", sweepArgs, graceArg)
	framework.Eventually(t, bindTimeout, "provisioner A never led", func(context.Context) (bool, error) {
		return strings.Contains(aProc.Log(), "Guard started"), nil
	})
	deadline := time.Now().Add(8 * time.Second) // eight of A's create windows
	for time.Now().Before(deadline) {
		live, err := a.s.Kube.CoreV1().PersistentVolumeClaims(a.ns).Get(context.Background(), pvc.Name, metav1.GetOptions{})
		if err != nil || !slices.Contains(live.Finalizers, provisioningFinalizer) {
			t.Fatalf("provisioner A released B's claim (err %v): B's volume %s would be left to no one", err, id)
		}
		if b.volume(id) == nil {
			t.Fatalf("B's volume %s was deleted while B was down", id)
		}
		time.Sleep(250 * time.Millisecond) // a bounded watch that nothing happens, not a wait for a condition
	}
	if n := strings.Count(aProc.Log(), "Swept for unreferenced volumes"); n < 2 {
		t.Fatalf("provisioner A swept %d times in 8 s; the check proves little", n)
	}

	start := b.restartUntilClaimGone("provisioner-b-again", pvc)
	b.volumeGone(id)
	t.Logf("A left B's claim alone for 8 s; B, restarted, removed its volume and released it in %.1fs", time.Since(start).Seconds())
}

// restartUntilClaimGone starts a provisioner and waits until it has cleaned
// up the deleted claim and released it; it returns when it started.
func (e *env) restartUntilClaimGone(name string, pvc *corev1.PersistentVolumeClaim) time.Time {
	e.t.Helper()
	start := time.Now()
	e.provisioner(name)
	framework.Eventually(e.t, recoverTimeout, "the deleted claim never went", func(ctx context.Context) (bool, error) {
		_, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	return start
}
