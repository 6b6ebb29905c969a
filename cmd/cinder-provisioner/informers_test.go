package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestInformersKeepObjectsWithoutManagedFields(t *testing.T) {
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{
		Name:          "pv",
		Annotations:   map[string]string{"a": "b"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate}},
	}}
	out, err := dropManagedFields(pv)
	if err != nil {
		t.Fatalf("dropManagedFields: %v", err)
	}
	got := out.(*corev1.PersistentVolume)
	if got.ManagedFields != nil || got.Name != "pv" || got.Annotations["a"] != "b" {
		t.Errorf("transformed = %+v, want the PV with its name and annotations and no managedFields", got.ObjectMeta)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "pv"}
	if out, err := dropManagedFields(tomb); err != nil || out != tomb {
		t.Errorf("tombstone: %v, %v; want it unchanged", out, err)
	}
}
