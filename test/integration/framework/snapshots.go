package framework

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// reasonSnapshotStuck is the Warning the snapshotter records on a
// VolumeSnapshot whose Cinder snapshot is stuck creating.
const reasonSnapshotStuck = "CinderSnapshotStuck"

// SnapshotClient returns a client of the VolumeSnapshot API; the test fails
// when the API server does not serve it (hack/local-snapshot.sh installs
// it with external-snapshotter's snapshot-controller).
func (s *Stack) SnapshotClient(t testing.TB) snapclient.Interface {
	t.Helper()
	snaps, err := snapclient.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.SnapshotV1().VolumeSnapshotClasses().List(context.Background(), metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatalf("the snapshot API is not served (hack/local-snapshot.sh installs it): %v", err)
	}
	return snaps
}

// CreateSnapshotClass creates the VolumeSnapshotClass name of driver with
// the deletion policy and deletes it when the test ends; it returns its
// name.
func CreateSnapshotClass(t testing.TB, snaps snapclient.Interface, name, driver string, policy snapv1.DeletionPolicy) string {
	t.Helper()
	c := &snapv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Driver: driver, DeletionPolicy: policy}
	if _, err := snaps.SnapshotV1().VolumeSnapshotClasses().Create(context.Background(), c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = snaps.SnapshotV1().VolumeSnapshotClasses().Delete(context.Background(), c.Name, metav1.DeleteOptions{})
	})
	return c.Name
}

// VolumeSnapshotReady reports whether the VolumeSnapshot is readyToUse.
func VolumeSnapshotReady(vs *snapv1.VolumeSnapshot) bool {
	return vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse
}

// ClusterSnapshots lists the Cinder snapshots, in any status, that the
// provisioner created with cluster id clusterID.
func ClusterSnapshots(ctx context.Context, sc *gophercloud.ServiceClient, clusterID string) ([]snapshots.Snapshot, error) {
	pages, err := snapshots.List(sc, snapshots.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := snapshots.ExtractSnapshots(pages)
	if err != nil {
		return nil, err
	}
	var out []snapshots.Snapshot
	for _, s := range all {
		if s.Metadata[contract.MetaClusterID] == clusterID {
			out = append(out, s)
		}
	}
	return out, nil
}

// ResetSnapshotToError sets a Cinder snapshot's status to error, as an
// admin does for one stuck creating (os-reset_status): only then can it be
// deleted.
func ResetSnapshotToError(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
	body := map[string]any{"os-reset_status": map[string]any{"status": "error"}}
	_, err := sc.Post(ctx, sc.ServiceURL("snapshots", id, "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
	return err
}

// CleanupSnapshots removes what a test left of snapshots: the
// VolumeSnapshotContents of driver and the VolumeSnapshots of namespace ns
// (finalizers dropped: the provisioner may be gone), then the Cinder
// snapshots of cluster id clusterID (those stuck creating reset first),
// and waits until Cinder holds none of them, at most two minutes. It
// returns the error listing the Cinder snapshots, if any.
func CleanupSnapshots(snaps snapclient.Interface, sc *gophercloud.ServiceClient, driver, ns, clusterID string) error {
	ctx := context.Background()
	if list, err := snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{}); err == nil {
		for _, c := range list.Items {
			if c.Spec.Driver != driver {
				continue
			}
			c.Finalizers = nil
			_, _ = snaps.SnapshotV1().VolumeSnapshotContents().Update(ctx, &c, metav1.UpdateOptions{})
			_ = snaps.SnapshotV1().VolumeSnapshotContents().Delete(ctx, c.Name, metav1.DeleteOptions{})
		}
	}
	if list, err := snaps.SnapshotV1().VolumeSnapshots(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, vs := range list.Items {
			vs.Finalizers = nil
			_, _ = snaps.SnapshotV1().VolumeSnapshots(ns).Update(ctx, &vs, metav1.UpdateOptions{})
			_ = snaps.SnapshotV1().VolumeSnapshots(ns).Delete(ctx, vs.Name, metav1.DeleteOptions{})
		}
	}
	all, err := ClusterSnapshots(ctx, sc, clusterID)
	if err != nil {
		return err
	}
	for _, s := range all {
		if s.Status == "creating" { // stuck: only a reset lets it go
			_ = ResetSnapshotToError(ctx, sc, s.ID)
		}
		_ = snapshots.Delete(ctx, sc, s.ID).ExtractErr()
	}
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		if left, err := ClusterSnapshots(ctx, sc, clusterID); err == nil && len(left) == 0 {
			break
		}
	}
	return nil
}

// ResetStuckSnapshots plays the admin: it waits (at most max) until every
// VolumeSnapshot of vss (namespace ns) is readyToUse or has a
// CinderSnapshotStuck Warning; for each of the latter it resets the Cinder
// snapshots of its content (cluster id clusterID) that are creating to
// error. It returns how many it reset, and the errors of the resets that
// failed.
func ResetStuckSnapshots(kube kubernetes.Interface, snaps snapclient.Interface, sc *gophercloud.ServiceClient, ns, clusterID string, vss []*snapv1.VolumeSnapshot, max time.Duration) (int, error) {
	ctx := context.Background()
	resets := 0
	var errs []error
	done := map[string]bool{}
	for end := time.Now().Add(max); time.Now().Before(end) && len(done) < len(vss); time.Sleep(2 * time.Second) {
		for _, vs := range vss {
			if done[vs.Name] {
				continue
			}
			got, err := snaps.SnapshotV1().VolumeSnapshots(ns).Get(ctx, vs.Name, metav1.GetOptions{})
			if err == nil && VolumeSnapshotReady(got) {
				done[vs.Name] = true
				continue
			}
			if !stuck(ctx, kube, ns, vs.Name) {
				continue
			}
			all, err := ClusterSnapshots(ctx, sc, clusterID)
			if err != nil {
				continue
			}
			for _, s := range all {
				if s.Name != "snapcontent-"+string(vs.UID) || s.Status != "creating" {
					continue
				}
				if err := ResetSnapshotToError(ctx, sc, s.ID); err != nil {
					errs = append(errs, fmt.Errorf("reset snapshot %s: %w", s.ID, err))
					continue
				}
				resets++
			}
			done[vs.Name] = true
		}
	}
	return resets, errors.Join(errs...)
}

// stuck reports whether the VolumeSnapshot has a CinderSnapshotStuck
// Warning.
func stuck(ctx context.Context, kube kubernetes.Interface, ns, name string) bool {
	evs, err := EventsOf(ctx, kube, ns, "VolumeSnapshot", name)
	if err != nil {
		return false
	}
	for _, ev := range evs {
		if ev.Type == corev1.EventTypeWarning && ev.Reason == reasonSnapshotStuck {
			return true
		}
	}
	return false
}
