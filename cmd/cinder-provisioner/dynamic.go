package main

import (
	"fmt"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
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

// newSnapshotClient is external-snapshotter's typed client, for the
// snapshot controller (VolumeSnapshots, their contents and classes).
func newSnapshotClient(o *Options) (snapclient.Interface, error) {
	cfg, err := kubeRESTConfig(o)
	if err != nil {
		return nil, err
	}
	c, err := snapclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes snapshot client: %w", err)
	}
	return c, nil
}
