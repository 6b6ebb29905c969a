package refs

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

func TestReferencesFindEveryFieldThatCarriesAVolumeID(t *testing.T) {
	const id = "27538f5a-9af1-4bcc-8880-718454a94e26"
	for _, tc := range []struct {
		name string
		pv   corev1.PersistentVolume
	}{
		{"our annotation", corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{contract.AnnVolumeID: id}}}},
		{"the original provisioner's annotation", corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{contract.AnnLegacyVolumeID: id}}}},
		{"a static iSCSI PV an admin wrote by hand (IQN)", corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
			ISCSI: &corev1.ISCSIPersistentVolumeSource{TargetPortal: "127.0.0.1:3260", IQN: "iqn.2010-10.org.openstack:volume-" + id, Lun: 1}}}}},
		{"a ceph-csi static PV (image name)", corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
			CSI: &corev1.CSIPersistentVolumeSource{Driver: "rbd.csi.ceph.com", VolumeHandle: "volume-" + id}}}}},
		{"a cinder-csi PV (volumeHandle)", corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
			CSI: &corev1.CSIPersistentVolumeSource{Driver: "cinder.csi.openstack.org", VolumeHandle: id}}}}},
		{"an id without dashes, upper case, inside a longer name", corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
			FC: &corev1.FCVolumeSource{WWIDs: []string{"3600A0980" + "27538F5A9AF14BCC8880718454A94E26"}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refs := &References{}
			tc.pv.Name = "pv-x"
			refs.Add(&tc.pv)
			if got := refs.Of(id); !slices.Equal(got, []string{"pv-x"}) {
				t.Errorf("References.Of(%s) = %v, want [pv-x] ", id, got)
			}
			if got := refs.Of("11111111-2222-3333-4444-555555555555"); got != nil {
				t.Errorf("an unrelated id is referenced by %v", got)
			}
			if got := refs.Of("not-a-uuid"); len(got) == 0 {
				t.Error("an id that is not a UUID counts as unreferenced")
			}
		})
	}
}

// The sweep and orphans look every volume of the cluster up: one map read
// each, whatever the number of PVs.
func BenchmarkReferences10000PVs(b *testing.B) {
	refs := &References{}
	for i := range 10000 {
		id := fmt.Sprintf("%08x-9af1-4bcc-8880-718454a94e26", i)
		refs.Add(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pv-%d", i), Annotations: map[string]string{contract.AnnVolumeID: id}},
			Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
				TargetPortal: "127.0.0.1:3260", IQN: "iqn.2010-10.org.openstack:volume-" + id, Lun: 1}}}})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if got := refs.Of(fmt.Sprintf("%08x-9af1-4bcc-8880-718454a94e26", i%10000)); len(got) != 1 {
			b.Fatalf("got %v", got)
		}
	}
}
