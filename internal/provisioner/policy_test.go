package provisioner

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// The keep-the-disk workflow Kubernetes documents: the admin patches the
// PV to Retain. The volume's metadata says so from then on.
func TestRetainPatchIsMirroredIntoTheVolume(t *testing.T) {
	e := newEnv(t)
	pv := provisioned(t, e, nil)
	id := pv.Annotations[contract.AnnVolumeID]
	if e.p.needsMirror(nil, pv) {
		t.Fatal("a new PV in step with its volume needs a mirror")
	}
	old := pv.DeepCopy()
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	pv = e.edit(pv)
	if !e.p.needsMirror(old, pv) {
		t.Fatal("a Retain patch does not need a mirror")
	}
	if err := e.p.mirrorPolicy(e.ctx, pv); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.cinder.Volume(id); v.Metadata[contract.MetaReclaimPolicy] != "Retain" {
		t.Errorf("volume metadata %s = %q, want Retain", contract.MetaReclaimPolicy, v.Metadata[contract.MetaReclaimPolicy])
	}
	live, _ := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pv.Name, metav1.GetOptions{})
	if live.Annotations[contract.AnnReclaimPolicy] != "Retain" {
		t.Errorf("PV annotation %s = %q, want Retain", contract.AnnReclaimPolicy, live.Annotations[contract.AnnReclaimPolicy])
	}
	// a restart sees the PV in step: no Cinder call
	e.cinder.ResetCalls()
	if e.p.needsMirror(nil, live) {
		t.Error("a PV in step needs a mirror after a restart")
	}
}

// PVs made before the annotation existed cost no Cinder call at a restart,
// and are mirrored on their first observed change.
func TestPVsWithoutTheAnnotationAreMirroredOnChangeOnly(t *testing.T) {
	e := newEnv(t)
	pv := provisioned(t, e, nil)
	delete(pv.Annotations, contract.AnnReclaimPolicy)
	pv = e.edit(pv)
	if e.p.needsMirror(nil, pv) {
		t.Error("an old PV first seen needs a mirror: a restart would cost a Cinder call per PV")
	}
	old := pv.DeepCopy()
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	if !e.p.needsMirror(old, pv) {
		t.Error("an old PV's Retain patch needs no mirror")
	}
	e.cinder.ResetCalls()
	if err := e.p.mirrorPolicy(e.ctx, pv); err != nil {
		t.Fatal(err)
	}
	if n := len(e.calls(fake.OpUpdateMetadata)); n != 1 {
		t.Errorf("%d metadata updates, want 1", n)
	}
}

// The library's copy of a PV may be older than the admin's Retain patch:
// Delete reads the PV live and keeps the volume.
func TestDeleteReadsThePVLive(t *testing.T) {
	tests := []struct {
		name string
		live func(e *env, pv *corev1.PersistentVolume)
	}{
		{"switched to Retain while it waited in the queue", func(e *env, pv *corev1.PersistentVolume) {
			pv = pv.DeepCopy()
			pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
			e.edit(pv)
		}},
		{"PV object deleted (its volume is reported, not deleted)", func(e *env, pv *corev1.PersistentVolume) {
			if err := e.kube.CoreV1().PersistentVolumes().Delete(e.ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"re-created under the same name by an admin", func(e *env, pv *corev1.PersistentVolume) {
			if err := e.kube.CoreV1().PersistentVolumes().Delete(e.ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
				e.t.Fatal(err)
			}
			again := pv.DeepCopy()
			again.ResourceVersion = ""
			again.UID = "another-uid"
			if _, err := e.kube.CoreV1().PersistentVolumes().Create(e.ctx, again, metav1.CreateOptions{}); err != nil {
				e.t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pv := provisioned(t, e, nil) // the library's copy: Delete
			id := pv.Annotations[contract.AnnVolumeID]
			tc.live(e, pv)
			e.cinder.ResetCalls()
			err := e.p.Delete(e.ctx, pv)
			var ig *controller.IgnoredError
			if !errors.As(err, &ig) {
				t.Fatalf("Delete = %v, want IgnoredError", err)
			}
			if _, ok := e.cinder.Volume(id); !ok {
				t.Fatal("the volume was deleted")
			}
			if ops := e.ops(); len(ops) != 0 {
				t.Errorf("Cinder calls %q, want none", ops)
			}
		})
	}
}
