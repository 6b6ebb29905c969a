package rbd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

var (
	gvrCRD             = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gvrSnapshot        = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
	gvrSnapshotContent = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}
)

// installSnapshotCRDs installs external-snapshotter's v1 CRDs from testdata
// (left installed: other tests use them) and waits until they are served.
func installSnapshotCRDs(t *testing.T, s *framework.Stack) dynamic.Interface {
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
	framework.Eventually(t, bindTimeout, "snapshot CRDs not served", func(ctx context.Context) (bool, error) {
		_, err1 := dyn.Resource(gvrSnapshotContent).List(ctx, metav1.ListOptions{Limit: 1})
		_, err2 := dyn.Resource(gvrSnapshot).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1})
		return err1 == nil && err2 == nil, nil
	})
	return dyn
}

// A claim restored from a VolumeSnapshot whose content holds a Cinder
// snapshot of an RBD volume (an RBD snapshot in Ceph) reads the pattern the
// source held when the snapshot was taken, not what was written after.
func TestRBDRestoreFromCinderSnapshot(t *testing.T) {
	e := newEnv(t)
	dyn := installSnapshotCRDs(t, e.s)
	e.provisioner("provisioner")
	class := e.rbdClass()
	src := e.claim("origin", class, "1Gi", blockMode)
	srcPV := e.waitBound(src)
	p := newPattern(uint64(time.Now().UnixNano()) + 21)
	e.writePattern(srcPV, p)
	ctx := context.Background()

	snap, err := snapshots.Create(ctx, e.cinder, snapshots.CreateOpts{VolumeID: srcPV.Annotations[annVolumeID], Force: true, Name: "it-" + e.clusterID}).Extract()
	if err != nil {
		t.Fatalf("create Cinder snapshot: %v", err)
	}
	// the source volume can only go once its snapshot is gone: runs before
	// the final check (cleanups run last first)
	t.Cleanup(func() {
		_ = snapshots.Delete(context.Background(), e.cinder, snap.ID).ExtractErr()
		framework.Eventually(t, bindTimeout, "Cinder snapshot "+snap.ID+" not deleted", func(ctx context.Context) (bool, error) {
			_, err := snapshots.Get(ctx, e.cinder, snap.ID).Extract()
			return err != nil && strings.Contains(err.Error(), "404"), nil
		})
	})
	framework.Eventually(t, bindTimeout, "Cinder snapshot never available", func(ctx context.Context) (bool, error) {
		s, err := snapshots.Get(ctx, e.cinder, snap.ID).Extract()
		if err != nil {
			return false, err
		}
		if s.Status == "error" {
			t.Fatalf("Cinder snapshot %s went to error (cinder-volume's RBD driver)", snap.ID)
		}
		return s.Status == "available", nil
	})
	// written after the snapshot: the restore must not see it
	e.writePattern(srcPV, newPattern(uint64(time.Now().UnixNano())+22))

	// the VolumeSnapshot and its pre-provisioned content, statuses set by
	// hand: no snapshot controller runs here
	contentName := "rbd-content-" + e.clusterID
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": "snap", "namespace": e.ns},
		"spec":     map[string]any{"source": map[string]any{"volumeSnapshotContentName": contentName}},
	}}
	vs, err = dyn.Resource(gvrSnapshot).Namespace(e.ns).Create(ctx, vs, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create VolumeSnapshot: %v", err)
	}
	content := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
		"metadata": map[string]any{"name": contentName},
		"spec": map[string]any{
			"driver": "cinder.csi.openstack.org", "deletionPolicy": "Retain",
			"source":            map[string]any{"snapshotHandle": snap.ID},
			"volumeSnapshotRef": map[string]any{"name": "snap", "namespace": e.ns, "uid": string(vs.GetUID())},
		},
	}}
	if _, err = dyn.Resource(gvrSnapshotContent).Create(ctx, content, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create VolumeSnapshotContent: %v", err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(gvrSnapshot).Namespace(e.ns).Delete(context.Background(), "snap", metav1.DeleteOptions{})
		_ = dyn.Resource(gvrSnapshotContent).Delete(context.Background(), contentName, metav1.DeleteOptions{})
	})
	setStatus(t, dyn.Resource(gvrSnapshotContent), contentName,
		map[string]any{"snapshotHandle": snap.ID, "readyToUse": true, "restoreSize": int64(1 << 30)})
	setStatus(t, dyn.Resource(gvrSnapshot).Namespace(e.ns), "snap",
		map[string]any{"boundVolumeSnapshotContentName": contentName, "readyToUse": true, "restoreSize": "1Gi"})
	restore := e.claim("restored", class, "1Gi", blockMode, func(c *corev1.PersistentVolumeClaim) {
		group := "snapshot.storage.k8s.io"
		c.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: "snap"}
	})
	restorePV := e.waitBoundWithin(restore, 2*bindTimeout)
	e.checkRBDPV(restore, restorePV, gib(1))
	e.expectPattern(restorePV, p, "restore")
	if v := e.cinderVolume(restorePV); v.SnapshotID != snap.ID {
		t.Errorf("restored volume's snapshot_id %q, want %s", v.SnapshotID, snap.ID)
	}
	// the restore's claim and volume go before the snapshot's cleanup
	id := restorePV.Annotations[annVolumeID]
	e.deleteClaim(restore)
	e.imageGone(id)
}

// setStatus sets an object's status on its latest version, again on a
// conflict (a snapshot controller, where one runs, writes it too).
func setStatus(t *testing.T, ri dynamic.ResourceInterface, name string, status map[string]any) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := ri.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st, _ := obj.Object["status"].(map[string]any)
		if st == nil {
			st = map[string]any{}
		}
		for k, v := range status {
			st[k] = v
		}
		obj.Object["status"] = st
		_, err = ri.UpdateStatus(context.Background(), obj, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("set status of %s: %v", name, err)
	}
}
