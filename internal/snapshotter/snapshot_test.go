package snapshotter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// A VolumeSnapshot of ours gets snapcontent-<uid> pointing back to it by
// UID, then one forced Cinder snapshot named after the content with the
// VolumeSnapshot in its metadata, then the content's status.
func TestSnapshotReady(t *testing.T) {
	e := newEnv(t)
	e.cinder.SetSnapshotCreatingPolls(1)
	if err := e.cinder.SetStatus(e.volumeID, cinder.StatusInUse); err != nil {
		t.Fatal(err)
	}
	// the volume says it may have snapshots before the first one exists:
	// its delete then checks first
	markedFirst := false
	e.cinder.Hook(fake.OpCreateSnapshot, func(context.Context, fake.Call) error {
		v, _ := e.cinder.Volume(e.volumeID)
		markedFirst = v.Metadata[contract.MetaSnapshotted] == "true"
		return nil
	})
	vs := e.volumeSnapshot("snap", testClass)
	if res := e.pass("s/" + testNS + "/snap"); res.out != contentCreated {
		t.Fatalf("first pass %s, want content_created", res.out)
	}
	c := e.content(vs)
	if c.Spec.VolumeSnapshotRef.UID != vs.UID || c.Spec.VolumeSnapshotRef.Name != "snap" || c.Spec.VolumeSnapshotRef.Kind != "VolumeSnapshot" ||
		*c.Spec.Source.VolumeHandle != e.volumeID || c.Spec.Driver != testName || c.Spec.DeletionPolicy != snapv1.VolumeSnapshotContentDelete ||
		!slices.Contains(c.Finalizers, contract.FinalizerSnapshot) || c.Status != nil {
		t.Fatalf("content %+v", c)
	}
	if res := e.pass("s/" + testNS + "/snap"); res.out != idle {
		t.Errorf("second pass over the VolumeSnapshot %s, want idle", res.out)
	}
	e.until("c/"+c.Name, ready, 5)
	snaps := e.cinder.Snapshots()
	if len(snaps) != 1 {
		t.Fatalf("%d Cinder snapshots, want 1", len(snaps))
	}
	if !markedFirst {
		t.Errorf("the volume did not carry %s when its snapshot was requested", contract.MetaSnapshotted)
	}
	s := snaps[0]
	if s.Name != c.Name || s.VolumeID != e.volumeID || s.Metadata[contract.MetaSnapshotUID] != string(vs.UID) ||
		s.Metadata[contract.MetaSnapshotName] != "snap" || s.Metadata[contract.MetaClusterID] != "c1" {
		t.Errorf("Cinder snapshot %+v", s)
	}
	c = e.content(vs)
	if c.Status == nil || *c.Status.SnapshotHandle != s.ID || !*c.Status.ReadyToUse || *c.Status.RestoreSize != 2*giB || *c.Status.CreationTime != s.CreatedAt.UnixNano() {
		t.Errorf("content status %+v", c.Status)
	}
	if res := e.pass("c/" + c.Name); res.out != idle {
		t.Errorf("pass over a ready content %s, want idle", res.out)
	}
	if n := len(e.cinder.Snapshots()); n != 1 {
		t.Errorf("%d Cinder snapshots after more passes", n)
	}
	ev := e.events()
	if !hasEvent(ev, "Normal "+ReasonContentCreated) || !hasEvent(ev, "Normal "+ReasonSnapshotReady) {
		t.Errorf("events %v", ev)
	}
}

// A VolumeSnapshot whose class is another driver's, or whose claim is not
// on a volume of ours, gets nothing from us.
func TestSnapshotNotOurs(t *testing.T) {
	e := newEnv(t)
	other := &snapv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: "csi"}, Driver: "cinder.csi.openstack.org", DeletionPolicy: snapv1.VolumeSnapshotContentDelete}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotClasses().Create(context.Background(), other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.volumeSnapshot("csi", "csi")
	if res := e.pass("s/" + testNS + "/csi"); res.out != idle {
		t.Errorf("another driver's class: %s, want idle", res.out)
	}
	e.pv.Annotations[contract.AnnProvisionerIdentity] = "someone.else/provisioner"
	if _, err := e.kube.CoreV1().PersistentVolumes().Update(context.Background(), e.pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.volumeSnapshot("foreign", testClass)
	if res := e.pass("s/" + testNS + "/foreign"); res.out != refused || res.reason != ReasonSourceNotOurs {
		t.Errorf("claim of another provisioner: %s %s, want refused %s", res.out, res.reason, ReasonSourceNotOurs)
	}
	if list, _ := e.snaps.SnapshotV1().VolumeSnapshotContents().List(context.Background(), metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("%d contents made", len(list.Items))
	}
	if len(e.cinder.Snapshots()) != 0 {
		t.Error("a Cinder snapshot was made")
	}
}

// Convergence: whatever step is interrupted, a VolumeSnapshot ends with
// exactly one Cinder snapshot.
func TestSnapshotConvergence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env)
		// restart: a new Snapshotter (a process killed and started again)
		// after the first pass over the content
		restart bool
		creates int // CreateSnapshot calls, failed ones included
	}{
		{name: "create answer lost", setup: func(e *env) { e.cinder.LoseAnswer(fake.OpCreateSnapshot, nil) }, creates: 1},
		{name: "create fails, nothing made", creates: 2, setup: func(e *env) {
			e.cinder.FailNext(fake.OpCreateSnapshot, cinder.NewError("create snapshot", "", cinder.ErrUnavailable, "503"))
		}},
		{name: "killed between create and status write", setup: func(e *env) { e.cinder.SetSnapshotCreatingPolls(3) }, restart: true, creates: 1},
		{name: "cinder down at the list", creates: 1, setup: func(e *env) {
			e.cinder.FailNext(fake.OpListSnapshots, cinder.NewError("list snapshots", "", cinder.ErrUnavailable, "connection refused"))
		}},
		{name: "status write conflicts", creates: 1, setup: func(e *env) {
			e.snaps.PrependReactor("update", "volumesnapshotcontents", conflictOnce())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setup(e)
			vs := e.volumeSnapshot("snap", testClass)
			e.until("s/"+testNS+"/snap", contentCreated, 1)
			key := "c/" + contentName(vs)
			e.pass(key)
			if tc.restart {
				e.s = e.snapshotter()
			}
			e.until(key, ready, 10)
			if n := len(e.cinder.Snapshots()); n != 1 {
				t.Errorf("%d Cinder snapshots, want 1: %v", n, e.cinder.Snapshots())
			}
			creates := 0
			for _, c := range e.cinder.Calls() {
				if c.Op == fake.OpCreateSnapshot {
					creates++
				}
			}
			if creates != tc.creates {
				t.Errorf("%d CreateSnapshot calls, want %d", creates, tc.creates)
			}
		})
	}
}

// Cinder's refusals and failures are Events on the VolumeSnapshot and
// retried; an error snapshot is deleted before the next is made.
func TestSnapshotFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(e *env)
		reason string
	}{
		{name: "quota", reason: ReasonQuotaExceeded, setup: func(e *env) {
			e.cinder.SetSnapshotQuota(1)
			if _, err := e.cinder.AddSnapshot(cinder.Snapshot{VolumeID: e.volumeID, Name: "manual"}); err != nil {
				e.t.Fatal(err)
			}
		}},
		{name: "volume in error", reason: ReasonVolumeNotSnapshottable, setup: func(e *env) {
			if err := e.cinder.SetStatus(e.volumeID, cinder.StatusError); err != nil {
				e.t.Fatal(err)
			}
		}},
		{name: "volume extending", reason: ReasonVolumeNotSnapshottable, setup: func(e *env) {
			if err := e.cinder.SetStatus(e.volumeID, "extending"); err != nil {
				e.t.Fatal(err)
			}
		}},
		{name: "snapshot went to error", reason: ReasonSnapshotFailed, setup: func(e *env) { e.cinder.SetSnapshotFinalStatus(cinder.SnapshotError) }},
		{name: "cinder down", reason: ReasonCinderUnavailable, setup: func(e *env) { e.cinder.SetDown(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setup(e)
			before := len(e.cinder.Snapshots())
			vs := e.volumeSnapshot("snap", testClass)
			e.until("s/"+testNS+"/snap", contentCreated, 1)
			key := "c/" + contentName(vs)
			e.until(key, retry, 3)
			ev := e.events()
			if !hasEvent(ev, "Warning "+tc.reason) {
				t.Fatalf("events %v, want a Warning %s", ev, tc.reason)
			}
			if tc.reason == ReasonSnapshotFailed {
				if live := e.live(); len(live) != 0 {
					t.Errorf("error snapshot not deleted: %v", live)
				}
				if !strings.Contains(ev[len(ev)-1], "went to error") {
					t.Errorf("event %q", ev[len(ev)-1])
				}
			} else if n := len(e.cinder.Snapshots()); n != before {
				t.Errorf("%d Cinder snapshots, want %d", n, before)
			}
			// the cause passes: the same content ends ready with one snapshot
			e.cinder.SetDown(false)
			e.cinder.SetSnapshotQuota(0)
			e.cinder.SetSnapshotFinalStatus(cinder.SnapshotAvailable)
			_ = e.cinder.SetStatus(e.volumeID, cinder.StatusAvailable)
			e.until(key, ready, 6)
			mine := slices.DeleteFunc(e.cinder.Snapshots(), func(s cinder.Snapshot) bool { return s.Name != contentName(vs) })
			if len(mine) != 1 {
				t.Errorf("%d Cinder snapshots for the VolumeSnapshot, want 1: %v", len(mine), mine)
			}
		})
	}
}

// conflictOnce fails the first content update with a 409, as an API
// server whose object changed meanwhile does.
func conflictOnce() func(action k8stesting.Action) (bool, runtime.Object, error) {
	done := false
	return func(action k8stesting.Action) (bool, runtime.Object, error) {
		if done || action.GetSubresource() != "status" {
			return false, nil, nil
		}
		done = true
		return true, nil, apierrors.NewConflict(snapv1.Resource("volumesnapshotcontents"), "x", errors.New("the object has been modified"))
	}
}

// A snapshot left creating for ever (cinder-api killed between its insert
// and its cast) is a Warning, not a second snapshot; once an admin resets
// it to error it is deleted and one new snapshot is made.
func TestSnapshotStuckCreating(t *testing.T) {
	e := newEnv(t)
	e.cinder.SetSnapshotFinalStatus(cinder.SnapshotCreating)
	vs := e.volumeSnapshot("snap", testClass)
	e.until("s/"+testNS+"/snap", contentCreated, 1)
	key := "c/" + contentName(vs)
	if res := e.pass(key); res.out != inProgress {
		t.Fatalf("first pass %s", res.out)
	}
	if res := e.pass(key); res.out != inProgress {
		t.Errorf("young creating snapshot: %s, want in_progress", res.out)
	}
	e.cinder.Advance(3 * time.Minute)
	if res := e.pass(key); res.out != retry || res.reason != ReasonSnapshotStuck {
		t.Fatalf("stale creating snapshot: %s %s, want retry %s", res.out, res.reason, ReasonSnapshotStuck)
	}
	if n := len(e.cinder.Snapshots()); n != 1 {
		t.Fatalf("%d snapshots, want the stuck one only", n)
	}
	stuck := e.cinder.Snapshots()[0].ID
	if err := e.cinder.SetSnapshotStatus(stuck, cinder.SnapshotError); err != nil { // the admin's reset
		t.Fatal(err)
	}
	e.cinder.SetSnapshotFinalStatus(cinder.SnapshotAvailable)
	e.until(key, ready, 6)
	if s := e.live(); len(s) != 1 || s[0].ID == stuck {
		t.Errorf("snapshots %v, want one new one", s)
	}
}
