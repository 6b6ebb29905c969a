package provisioner

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
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
	var found corev1.Event
	sel := fields.Set{"involvedObject.name": pvc.Name, "involvedObject.kind": "PersistentVolumeClaim"}.AsSelector().String()
	framework.Eventually(e.t, resizeTimeout, "no "+typ+" "+reason+" event on claim "+pvc.Name, func(ctx context.Context) (bool, error) {
		evs, err := e.s.Kube.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == reason && ev.Type == typ {
				found = ev
				return true, nil
			}
		}
		return false, nil
	})
	return found
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
	c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(context.Background(), pvc.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get claim %s: %v", pvc.Name, err)
	}
	return c
}

func (e *env) getPV(name string) *corev1.PersistentVolume {
	e.t.Helper()
	pv, err := e.s.Kube.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get PV %s: %v", name, err)
	}
	return pv
}

// TestResizeBlockClaimGrowsVolumePVClaimAndLUN: a Bound raw block iSCSI
// claim grown from 1Gi to 2Gi: Cinder extends the exported (in-use) volume
// with microversion 3.42, the PV and the claim show 2Gi, the claim keeps
// no allocatedResources, a VolumeResized Event says so, and a userspace
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
	if len(c.Status.AllocatedResources) != 0 || len(c.Status.AllocatedResourceStatuses) != 0 {
		t.Errorf("claim keeps allocatedResources %v / allocatedResourceStatuses %v", c.Status.AllocatedResources, c.Status.AllocatedResourceStatuses)
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
