package provisioner

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const resizeTimeout = 2 * time.Minute

func expandable(sc *storagev1.StorageClass) {
	allow := true
	sc.AllowVolumeExpansion = &allow
}

// grow sets the claim's storage request, as a user's kubectl edit does.
func (e *env) grow(pvc *corev1.PersistentVolumeClaim, size string) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size)
	if _, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(context.Background(), pvc.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatalf("grow claim %s to %s: %v", pvc.Name, size, err)
	}
}

// waitEventOfType waits for an event of type and reason on the claim.
func (e *env) waitEventOfType(pvc *corev1.PersistentVolumeClaim, typ, reason string) corev1.Event {
	e.t.Helper()
	return framework.WaitEvent(e.t, e.s.Kube, e.ns, pvc.Name, typ, reason, resizeTimeout)
}

func (e *env) cinderVolume(pv *corev1.PersistentVolume) *volumes.Volume {
	e.t.Helper()
	id := pv.Annotations["cinder.openstack.org/volume-id"]
	v, err := volumes.Get(context.Background(), e.cinder, id).Extract()
	if err != nil {
		e.t.Fatalf("get Cinder volume %s of PV %s: %v", id, pv.Name, err)
	}
	return v
}

func (e *env) getClaim(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	return framework.GetClaim(e.t, e.s.Kube, e.ns, pvc.Name)
}

func (e *env) getPV(name string) *corev1.PersistentVolume {
	e.t.Helper()
	return framework.GetPV(e.t, e.s.Kube, name)
}

// TestResizeBlockClaimGrowsVolumePVClaimAndLUN: a Bound raw block iSCSI
// claim grown from 1Gi to 2Gi: Cinder extends the exported (in-use) volume
// with microversion 3.42, the PV and the claim show 2Gi, the claim's
// allocatedResources says 2Gi and no resize status is left, a VolumeResized
// Event says so, and a userspace
// iSCSI login made from nothing but the PV's fields and CHAP Secret reads a
// 2 GiB LUN (the local target is re-read by Cinder's tgtadm helper, as
// with LVM).
func TestResizeBlockClaimGrowsVolumePVClaimAndLUN(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil, expandable)
	block := corev1.PersistentVolumeBlock
	pvc := e.claim("grow-block", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	pv := e.waitBound(pvc)
	if v := e.cinderVolume(pv); v.Size != 1 || v.Status != "in-use" {
		t.Fatalf("volume before the resize: %d GiB %s", v.Size, v.Status)
	}
	if size, err := e.loginFromPV(pv); err != nil || size != 1<<30 {
		t.Fatalf("login before the resize: %d bytes, %v", size, err)
	}

	start := time.Now()
	e.grow(pvc, "2Gi")
	framework.Eventually(t, resizeTimeout, "claim "+pvc.Name+" never showed 2Gi", func(ctx context.Context) (bool, error) {
		c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		q := c.Status.Capacity[corev1.ResourceStorage]
		return q.Cmp(resource.MustParse("2Gi")) == 0, nil
	})
	t.Logf("claim shows 2Gi %s after the request grew", time.Since(start).Round(time.Millisecond))
	ev := e.waitEventOfType(pvc, corev1.EventTypeNormal, "VolumeResized")
	t.Logf("event: %s", ev.Message)

	c := e.getClaim(pvc)
	if got := c.Status.AllocatedResources[corev1.ResourceStorage]; got.Cmp(resource.MustParse("2Gi")) != 0 || len(c.Status.AllocatedResourceStatuses) != 0 {
		t.Errorf("claim has allocatedResources %v / allocatedResourceStatuses %v, want 2Gi (what Cinder holds, kept as Kubernetes ends a resize) and none",
			c.Status.AllocatedResources, c.Status.AllocatedResourceStatuses)
	}
	pv = e.getPV(pv.Name)
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("2Gi")) != 0 {
		t.Errorf("PV capacity %s, want 2Gi", got.String())
	}
	v := e.cinderVolume(pv)
	if v.Size != 2 || v.Status != "in-use" {
		t.Errorf("Cinder volume %s: %d GiB %s, want 2 GiB in-use", v.ID, v.Size, v.Status)
	}
	size, err := e.loginFromPV(pv)
	t.Logf("userspace iSCSI login from PV %s (%s) reads %d bytes", pv.Name, describe(pv), size)
	if err != nil || size != 2<<30 {
		t.Errorf("login after the resize: %d bytes, %v; want %d", size, err, int64(2<<30))
	}
}

// TestResizeFilesystemISCSIClaimIsRefusedAndNothingChanges: a filesystem
// iSCSI claim grown to 2Gi gets a FilesystemExpansionUnsupported Event and
// nothing else: the Cinder volume stays 1 GiB, the PV and the claim's
// status 1Gi, the LUN 1 GiB, the claim's status has no resize state.
func TestResizeFilesystemISCSIClaimIsRefusedAndNothingChanges(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil, expandable)
	pvc := e.claim("grow-fs", class, "1Gi")
	pv := e.waitBound(pvc)

	e.grow(pvc, "2Gi")
	ev := e.waitEventOfType(pvc, corev1.EventTypeWarning, "FilesystemExpansionUnsupported")
	t.Logf("event: %s", ev.Message)

	v := e.cinderVolume(pv)
	if v.Size != 1 || v.Status != "in-use" {
		t.Errorf("Cinder volume %s: %d GiB %s, want 1 GiB in-use (untouched)", v.ID, v.Size, v.Status)
	}
	pv = e.getPV(pv.Name)
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("PV capacity %s, want 1Gi", got.String())
	}
	c := e.getClaim(pvc)
	if got := c.Status.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("claim capacity %s, want 1Gi", got.String())
	}
	if len(c.Status.AllocatedResources) != 0 || len(c.Status.AllocatedResourceStatuses) != 0 {
		t.Errorf("claim status has a resize state nothing would clear: %v %v", c.Status.AllocatedResources, c.Status.AllocatedResourceStatuses)
	}
	if size, err := e.loginFromPV(pv); err != nil || size != 1<<30 {
		t.Errorf("login: %d bytes, %v; want 1 GiB", size, err)
	}
}

// TestResizeKilledAfterExtendIsFinishedByTheNextProcess: the provisioner is
// killed -9 right after Cinder accepted os-extend, before it heard the
// answer or touched the PV. Cinder finishes the extend; the next process
// finds the volume at the new size and only completes the PV and the claim:
// it sends no os-extend of its own, and the LUN reads 2 GiB.
func TestResizeKilledAfterExtendIsFinishedByTheNextProcess(t *testing.T) {
	e := newEnv(t)
	proxy := e.s.NewCinderProxy(t)
	first := e.provisioner("provisioner-1", "--cloud-config", e.s.CloudConfVia(t, proxy))
	class := e.storageClass("tgtfile", nil, expandable)
	block := corev1.PersistentVolumeBlock
	pvc := e.claim("killed-mid-resize", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	pv := e.waitBound(pvc)

	proxy.AfterApplied(isPost("/action", "os-extend"), func() { first.Kill(t) })
	e.grow(pvc, "2Gi")
	proxy.Fired(t, resizeTimeout)
	if got := e.getPV(pv.Name).Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Fatalf("PV capacity %s right after the kill, want 1Gi (the process died before the PV update)", got.String())
	}
	framework.Eventually(t, resizeTimeout, "Cinder never finished the extend", func(ctx context.Context) (bool, error) {
		v, err := volumes.Get(ctx, e.cinder, pv.Annotations["cinder.openstack.org/volume-id"]).Extract()
		return err == nil && v.Size == 2 && v.Status == "in-use", err
	})

	// The second process goes through a proxy that counts its os-extends.
	second := e.s.NewCinderProxy(t)
	var extends atomicCount
	second.AfterApplied(func(r framework.ProxyRequest) bool {
		if isPost("/action", "os-extend")(r) {
			extends.add()
		}
		return false
	}, func() {})
	start := time.Now()
	e.provisioner("provisioner-2", "--cloud-config", e.s.CloudConfVia(t, second))
	framework.Eventually(t, resizeTimeout, "claim never showed 2Gi after the restart", func(ctx context.Context) (bool, error) {
		c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		q := c.Status.Capacity[corev1.ResourceStorage]
		return q.Cmp(resource.MustParse("2Gi")) == 0, nil
	})
	t.Logf("claim shows 2Gi %s after the restart", time.Since(start).Round(time.Millisecond))
	if n := extends.get(); n != 0 {
		t.Errorf("the restarted process sent %d os-extend, want 0 (the volume was already 2 GiB)", n)
	}
	pv = e.getPV(pv.Name)
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("2Gi")) != 0 {
		t.Errorf("PV capacity %s, want 2Gi", got.String())
	}
	if size, err := e.loginFromPV(pv); err != nil || size != 2<<30 {
		t.Errorf("login after the restart: %d bytes, %v; want 2 GiB", size, err)
	}
}

type atomicCount struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCount) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *atomicCount) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestResizeWhileCinderAPIIsDown: a claim grown while cinder-api is down
// gets a CinderUnavailable Event and nothing else; once cinder-api is back,
// a retry of the queue's backoff resizes it.
func TestResizeWhileCinderAPIIsDown(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil, expandable)
	block := corev1.PersistentVolumeBlock
	pvc := e.claim("grow-in-outage", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	pv := e.waitBound(pvc)

	e.s.StopService(t, "cinder-api")
	e.grow(pvc, "2Gi")
	ev := e.waitEventOfType(pvc, corev1.EventTypeWarning, "CinderUnavailable")
	t.Logf("event during the outage: %s", ev.Message)
	if got := e.getPV(pv.Name).Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("PV capacity %s during the outage, want 1Gi", got.String())
	}
	e.s.StartService(t, "cinder-api")
	back := time.Now()
	framework.Eventually(t, resizeTimeout, "claim never showed 2Gi after cinder-api came back", func(ctx context.Context) (bool, error) {
		c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		q := c.Status.Capacity[corev1.ResourceStorage]
		return q.Cmp(resource.MustParse("2Gi")) == 0, nil
	})
	t.Logf("claim shows 2Gi %s after cinder-api came back", time.Since(back).Round(time.Millisecond))
	pv = e.getPV(pv.Name)
	if v := e.cinderVolume(pv); v.Size != 2 {
		t.Errorf("Cinder volume %d GiB, want 2", v.Size)
	}
	if size, err := e.loginFromPV(pv); err != nil || size != 2<<30 {
		t.Errorf("login: %d bytes, %v; want 2 GiB", size, err)
	}
}
