package main

import (
	"fmt"

	"k8s.io/client-go/dynamic"
)

// newDynamicClient is the client for the snapshot API
// (snapshot.storage.k8s.io VolumeSnapshots and VolumeSnapshotContents, read
// as unstructured objects: no dependency on external-snapshotter's client).
func newDynamicClient(o *Options) (dynamic.Interface, error) {
	cfg, err := kubeRESTConfig(o)
	if err != nil {
		return nil, err
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	return d, nil
}
