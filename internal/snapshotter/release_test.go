package snapshotter

import (
	"context"
	"slices"
	"testing"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// readySnapshot makes a VolumeSnapshot with the policy and serves it to
// ready.
func readySnapshot(e *env, policy snapv1.DeletionPolicy) *snapv1.VolumeSnapshot {
	e.t.Helper()
	class := testClass
	if policy == snapv1.VolumeSnapshotContentRetain {
		class = "retain"
		c := &snapv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Driver: testName, DeletionPolicy: policy}
		if _, err := e.snaps.SnapshotV1().VolumeSnapshotClasses().Create(context.Background(), c, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	vs := e.volumeSnapshot("snap", class)
	e.until("s/"+testNS+"/snap", contentCreated, 1)
	e.until("c/"+contentName(vs), ready, 5)
	return vs
}

func (e *env) finalizers(vs *snapv1.VolumeSnapshot) []string {
	return e.content(vs).Finalizers
}

// Delete: the Cinder snapshot goes (polled until gone), then the
// finalizers; Retain: the snapshot stays, the finalizers go.
func TestReleasePolicies(t *testing.T) {
	for _, tc := range []struct {
		policy snapv1.DeletionPolicy
		left   int
	}{
		{snapv1.VolumeSnapshotContentDelete, 0},
		{snapv1.VolumeSnapshotContentRetain, 1},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			e := newEnv(t)
			e.cinder.SetSnapshotDeletingPolls(2)
			vs := readySnapshot(e, tc.policy)
			e.deleteVS(vs)
			e.until("c/"+contentName(vs), deleted, 5)
			if n := len(e.cinder.Snapshots()); n != tc.left {
				t.Errorf("%d Cinder snapshots left, want %d", n, tc.left)
			}
			if f := e.finalizers(vs); slices.Contains(f, contract.FinalizerSnapshot) || slices.Contains(f, finalizerBound) {
				t.Errorf("finalizers left: %v", f)
			}
			if res := e.pass("c/" + contentName(vs)); res.out != idle {
				t.Errorf("pass after release: %s", res.out)
			}
		})
	}
}

// A content deleted while its VolumeSnapshot lives (no annotation from
// external-snapshotter's controller) keeps everything, as csi-snapshotter
// does.
func TestReleaseWaitsForTheVolumeSnapshot(t *testing.T) {
	e := newEnv(t)
	vs := readySnapshot(e, snapv1.VolumeSnapshotContentDelete)
	c := e.content(vs)
	now := metav1.Now()
	c.DeletionTimestamp = &now
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Update(context.Background(), c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if res := e.pass("c/" + c.Name); res.out != idle {
		t.Errorf("pass %s, want idle", res.out)
	}
	if len(e.live()) != 1 || !slices.Contains(e.finalizers(vs), contract.FinalizerSnapshot) {
		t.Errorf("snapshot or finalizer gone: %v %v", e.live(), e.finalizers(vs))
	}
}

// A VolumeSnapshot deleted while Cinder creates its snapshot (status not
// written yet): the snapshot is found by name, waited for, deleted; none
// is left. One deleted before its content's pass: the content is deleted
// and no Cinder snapshot is ever made.
func TestDeletedWhileCreating(t *testing.T) {
	t.Run("creating", func(t *testing.T) {
		e := newEnv(t)
		e.cinder.SetSnapshotCreatingPolls(3)
		vs := e.volumeSnapshot("snap", testClass)
		e.until("s/"+testNS+"/snap", contentCreated, 1)
		if res := e.pass("c/" + contentName(vs)); res.out != inProgress {
			t.Fatalf("pass %s", res.out)
		}
		e.deleteVS(vs)
		e.until("c/"+contentName(vs), deleted, 8)
		if n := len(e.cinder.Snapshots()); n != 0 {
			t.Errorf("%d Cinder snapshots left: %v", n, e.cinder.Snapshots())
		}
	})
	t.Run("before the snapshot", func(t *testing.T) {
		e := newEnv(t)
		vs := e.volumeSnapshot("snap", testClass)
		e.until("s/"+testNS+"/snap", contentCreated, 1)
		if err := e.snaps.SnapshotV1().VolumeSnapshots(testNS).Delete(context.Background(), "snap", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.pass("c/" + contentName(vs))
		if _, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(context.Background(), contentName(vs), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("content of a deleted VolumeSnapshot: %v, want deleted", err)
		}
		if n := len(e.cinder.Snapshots()); n != 0 {
			t.Errorf("%d Cinder snapshots made", n)
		}
	})
}

// A snapshot Cinder cannot delete (error_deleting) keeps the content, with
// an Event; nothing is deleted that is not the content's.
func TestReleaseKeepsWhatItCannotProve(t *testing.T) {
	e := newEnv(t)
	vs := readySnapshot(e, snapv1.VolumeSnapshotContentDelete)
	// another snapshot of the same volume under the same name, for
	// another VolumeSnapshot (no matching UID): never touched
	foreign, err := e.cinder.AddSnapshot(cinder.Snapshot{VolumeID: e.volumeID, Name: contentName(vs), Metadata: map[string]string{contract.MetaSnapshotUID: "other"}})
	if err != nil {
		t.Fatal(err)
	}
	mine := *e.content(vs).Status.SnapshotHandle
	if err := e.cinder.SetSnapshotStatus(mine, cinder.SnapshotErrorDeleting); err != nil {
		t.Fatal(err)
	}
	e.deleteVS(vs)
	if res := e.pass("c/" + contentName(vs)); res.out != retry || res.reason != ReasonDeleteFailed {
		t.Errorf("pass %s %s, want retry %s", res.out, res.reason, ReasonDeleteFailed)
	}
	if !slices.Contains(e.finalizers(vs), contract.FinalizerSnapshot) {
		t.Error("finalizer removed with the snapshot still there")
	}
	_ = e.cinder.SetSnapshotStatus(mine, cinder.SnapshotAvailable)
	e.until("c/"+contentName(vs), deleted, 5)
	if s := e.cinder.Snapshots(); len(s) != 1 || s[0].ID != foreign {
		t.Errorf("snapshots left %v, want only the foreign %s", s, foreign)
	}
}

// A content of our driver made by external-snapshotter's controller for a
// CSI (ceph-csi RBD) PV of ours names the PV's CSI handle: it is taken on
// and the Cinder volume behind the PV is snapshotted. One naming another
// volume is refused.
func TestAdoptCSIContent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle string
		want   outcome
	}{
		{"the PV's CSI handle", "0001-0009-rbd-handle", ready},
		{"another volume", "someone-elses", refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.pv.Spec.CSI = &corev1.CSIPersistentVolumeSource{Driver: "rbd.csi.ceph.com", VolumeHandle: "0001-0009-rbd-handle"}
			if _, err := e.kube.CoreV1().PersistentVolumes().Update(ctx, e.pv, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			vs := e.volumeSnapshot("snap", testClass)
			handle, class := tc.handle, testClass
			c := &snapv1.VolumeSnapshotContent{
				ObjectMeta: metav1.ObjectMeta{Name: contentName(vs)},
				Spec: snapv1.VolumeSnapshotContentSpec{
					VolumeSnapshotRef: corev1.ObjectReference{Kind: "VolumeSnapshot", Namespace: testNS, Name: "snap", UID: vs.UID},
					Source:            snapv1.VolumeSnapshotContentSource{VolumeHandle: &handle}, VolumeSnapshotClassName: &class,
					DeletionPolicy: snapv1.VolumeSnapshotContentDelete, Driver: testName,
				},
			}
			if _, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Create(ctx, c, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if res := e.pass("s/" + testNS + "/snap"); res.out != idle {
				t.Errorf("VolumeSnapshot pass %s, want idle (content exists)", res.out)
			}
			e.until("c/"+c.Name, tc.want, 6)
			if tc.want == ready {
				if s := e.cinder.Snapshots(); len(s) != 1 || s[0].VolumeID != e.volumeID {
					t.Errorf("snapshots %v, want one of %s", s, e.volumeID)
				}
				if got := e.content(vs).Annotations[contract.AnnVolumeID]; got != e.volumeID {
					t.Errorf("volume id annotation %q", got)
				}
			} else if n := len(e.cinder.Snapshots()); n != 0 {
				t.Errorf("%d snapshots made for a mismatched content", n)
			}
		})
	}
}
