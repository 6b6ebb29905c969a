package framework

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// A pre-provisioned VolumeSnapshot: a Cinder snapshot taken straight
// through Cinder's API, a VolumeSnapshotContent naming it and a
// VolumeSnapshot bound to that content, their statuses written by hand as
// csi-snapshotter and the snapshot controller would (with or without the
// stack's snapshot-controller). Through the dynamic client: the CRDs come
// from testdata.

var (
	gvrCRD = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	// GVRSnapshot is the VolumeSnapshot resource.
	GVRSnapshot = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
	// GVRSnapshotContent is the VolumeSnapshotContent resource.
	GVRSnapshotContent = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}
)

// InstallSnapshotCRDs installs external-snapshotter's v1 CRDs from testdata
// (left installed: other tests use them) and waits until the API server
// serves them.
func (s *Stack) InstallSnapshotCRDs(t testing.TB, timeout time.Duration) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(s.RepoRoot, "test/integration/testdata/snapshot-crds/*.yaml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("snapshot CRDs in testdata: %v %v", files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := dyn.Resource(gvrCRD).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", obj.GetName(), err)
		}
	}
	Eventually(t, timeout, "snapshot CRDs not served", func(ctx context.Context) (bool, error) {
		_, err1 := dyn.Resource(GVRSnapshotContent).List(ctx, metav1.ListOptions{Limit: 1})
		_, err2 := dyn.Resource(GVRSnapshot).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1})
		return err1 == nil && err2 == nil, nil
	})
	return dyn
}

// CreateCinderSnapshot takes a Cinder snapshot of the volume straight
// through Cinder's API (force: the volume may be in-use) and waits until
// it is available; a snapshot that goes to error fails the test. When the
// test ends it is deleted and waited for: the cleanup is registered now,
// so it runs after the cleanups registered later (the restores made from
// it go first) and before those registered earlier (the source volume can
// only go once its snapshot is gone).
func CreateCinderSnapshot(t testing.TB, sc *gophercloud.ServiceClient, volumeID, name string, timeout time.Duration) *snapshots.Snapshot {
	t.Helper()
	snap, err := snapshots.Create(context.Background(), sc, snapshots.CreateOpts{VolumeID: volumeID, Force: true, Name: name}).Extract()
	if err != nil {
		t.Fatalf("create Cinder snapshot: %v", err)
	}
	t.Cleanup(func() {
		_ = snapshots.Delete(context.Background(), sc, snap.ID).ExtractErr()
		Eventually(t, timeout, "Cinder snapshot "+snap.ID+" not deleted", func(ctx context.Context) (bool, error) {
			_, err := snapshots.Get(ctx, sc, snap.ID).Extract()
			return gophercloud.ResponseCodeIs(err, http.StatusNotFound), nil
		})
	})
	Eventually(t, timeout, "Cinder snapshot never available", func(ctx context.Context) (bool, error) {
		s, err := snapshots.Get(ctx, sc, snap.ID).Extract()
		if err != nil {
			return false, err
		}
		if s.Status == "error" {
			t.Fatalf("Cinder snapshot %s went to error (cinder-volume's driver)", snap.ID)
		}
		return s.Status == "available", nil
	})
	return snap
}

// CreateStaticVolumeSnapshot creates the VolumeSnapshot name in namespace
// ns bound to the pre-provisioned content contentName (which may not
// exist yet).
func CreateStaticVolumeSnapshot(t testing.TB, dyn dynamic.Interface, ns, name, contentName string) *unstructured.Unstructured {
	t.Helper()
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"source": map[string]any{"volumeSnapshotContentName": contentName}},
	}}
	out, err := dyn.Resource(GVRSnapshot).Namespace(ns).Create(context.Background(), vs, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create VolumeSnapshot: %v", err)
	}
	return out
}

// CreateStaticSnapshotContent creates the pre-provisioned content
// contentName of the Cinder snapshot handle for the VolumeSnapshot vs
// (deletionPolicy Retain). When the test ends both are deleted, the
// content's finalizers dropped (the stack's snapshot-controller puts its
// bound-protection finalizer on it; no sidecar of that driver removes it).
func CreateStaticSnapshotContent(t testing.TB, dyn dynamic.Interface, vs *unstructured.Unstructured, contentName, handle string) {
	t.Helper()
	content := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
		"metadata": map[string]any{"name": contentName},
		"spec": map[string]any{
			"driver": "cinder.csi.openstack.org", "deletionPolicy": "Retain",
			"source":            map[string]any{"snapshotHandle": handle},
			"volumeSnapshotRef": map[string]any{"name": vs.GetName(), "namespace": vs.GetNamespace(), "uid": string(vs.GetUID())},
		},
	}}
	if _, err := dyn.Resource(GVRSnapshotContent).Create(context.Background(), content, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create VolumeSnapshotContent: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = dyn.Resource(GVRSnapshot).Namespace(vs.GetNamespace()).Delete(ctx, vs.GetName(), metav1.DeleteOptions{})
		_ = dyn.Resource(GVRSnapshotContent).Delete(ctx, contentName, metav1.DeleteOptions{})
		if c, err := dyn.Resource(GVRSnapshotContent).Get(ctx, contentName, metav1.GetOptions{}); err == nil {
			c.SetFinalizers(nil)
			_, _ = dyn.Resource(GVRSnapshotContent).Update(ctx, c, metav1.UpdateOptions{})
		}
	})
}

// MarkSnapshotReady writes the statuses csi-snapshotter (the content) and
// the snapshot controller (the VolumeSnapshot) would write for a ready
// snapshot of handle restoring size bytes, on the objects' latest
// versions, again until timeout when an update fails (the stack's
// snapshot-controller may write them too: a conflict); an object already
// ready is left as it is. An error reading an object fails the test.
func MarkSnapshotReady(t testing.TB, dyn dynamic.Interface, vs *unstructured.Unstructured, contentName, handle string, size int64, timeout time.Duration) {
	t.Helper()
	setStatus(t, dyn.Resource(GVRSnapshotContent), contentName, timeout,
		map[string]any{"snapshotHandle": handle, "readyToUse": true, "restoreSize": size})
	setStatus(t, dyn.Resource(GVRSnapshot).Namespace(vs.GetNamespace()), vs.GetName(), timeout,
		map[string]any{"boundVolumeSnapshotContentName": contentName, "readyToUse": true, "restoreSize": resource.NewQuantity(size, resource.BinarySI).String()})
}

// setStatus merges status into the object's status on its latest version,
// retrying a failed update until timeout; an object already readyToUse is
// left as it is.
func setStatus(t testing.TB, ri dynamic.ResourceInterface, name string, timeout time.Duration, status map[string]any) {
	t.Helper()
	Eventually(t, timeout, "status of "+name+" not set", func(ctx context.Context) (bool, error) {
		obj, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if ready, _, _ := unstructured.NestedBool(obj.Object, "status", "readyToUse"); ready {
			return true, nil
		}
		st, _ := obj.Object["status"].(map[string]any)
		if st == nil {
			st = map[string]any{}
		}
		for k, v := range status {
			st[k] = v
		}
		obj.Object["status"] = st
		_, err = ri.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		return err == nil, nil
	})
}
