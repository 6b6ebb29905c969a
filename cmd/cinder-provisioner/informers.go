package main

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// newInformers is the one cache of claims, PVs and StorageClasses that the
// library's controller and the resizer share, instead of a cache each: a
// cluster's every claim and PV are held once. Objects are kept without
// their managedFields, which nothing here reads and which are a large part
// of each object (P3 in docs/performance.md measures the difference). The
// resync is the library's own default.
func newInformers(kube kubernetes.Interface) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(kube, controller.DefaultResyncPeriod, informers.WithTransform(dropManagedFields))
}

// dropManagedFields is the informers' transform: an object goes into the
// cache without its managedFields. Anything that is not an object (a
// tombstone) passes unchanged.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
