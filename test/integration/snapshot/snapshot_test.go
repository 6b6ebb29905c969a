package snapshot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// A claim with a known pattern -> VolumeSnapshot -> readyToUse -> restored
// into a new claim -> the pattern reads back through a login to the new
// PV; data written to the source after the snapshot is not in the restore.
// Deleting the VolumeSnapshot (Delete policy) removes the Cinder snapshot.
// The Warning Events the upstream controller emitted per VolumeSnapshot
// before our content existed are counted and logged.
func TestSnapshotAndRestore(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	src := e.claim("origin", "")
	srcPV := e.waitBound(src)
	p := framework.NewPattern(uint64(time.Now().UnixNano()))
	e.writePattern(srcPV, p)

	vs := e.volumeSnapshot("snap", src.Name)
	vs = e.waitReady(vs.Name)
	content, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(context.Background(), *vs.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if content.Name != "snapcontent-"+string(vs.UID) || content.Status == nil || content.Status.SnapshotHandle == nil {
		t.Fatalf("content %s status %+v", content.Name, content.Status)
	}
	snapID := *content.Status.SnapshotHandle
	cs, err := snapshots.Get(context.Background(), e.cinder, snapID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if cs.Status != "available" || cs.VolumeID != srcPV.Annotations["cinder.openstack.org/volume-id"] || cs.Name != content.Name {
		t.Errorf("Cinder snapshot %+v", cs)
	}
	if n := e.snapshotsNamed(content.Name); n != 1 {
		t.Errorf("%d Cinder snapshots named %s, want 1", n, content.Name)
	}
	if vs.Status.RestoreSize == nil || vs.Status.RestoreSize.Value() != 1<<30 || vs.Status.Error != nil {
		t.Errorf("VolumeSnapshot status %+v", vs.Status)
	}
	warnings := e.warnings("VolumeSnapshot", vs.Name)
	// snapshot-controller records most of its early SnapshotContentCreationFailed
	// with an empty involvedObject: its own log is the full count (docs/design.md)
	t.Logf("MEASURED: %d Warning Events stored on the VolumeSnapshot before it was ready: %q", len(warnings), warnings)

	// the source changes after the snapshot: the restore has the old data
	e.writePattern(srcPV, framework.NewPattern(uint64(time.Now().UnixNano())+7))
	restored := e.claim("restored", vs.Name)
	restoredPV := e.waitBound(restored)
	e.expectPattern(restoredPV, p, true, "restore, through a login to the new PV")

	// Delete policy: the Cinder snapshot goes with the VolumeSnapshot
	e.deleteVS(vs)
	e.waitNoSnapshots()
	e.deleteClaimsAndVolumes()
}

// Deleting a claim whose volume has a snapshot: the volume stays (Cinder
// refuses), the PV carries a Warning naming the snapshot, and no DELETE
// reaches Cinder while it exists; once the VolumeSnapshot is deleted, the
// volume goes.
func TestClaimWithSnapshotsIsKept(t *testing.T) {
	e := newEnv(t)
	proxy := e.s.NewCinderProxy(t)
	// the rule never fires: it only records the volume DELETEs it sees
	var mu sync.Mutex
	var volumeDeletes []string
	proxy.AfterApplied(func(r framework.ProxyRequest) bool {
		if r.Method == "DELETE" && strings.Contains(r.Path, "/volumes/") {
			mu.Lock()
			volumeDeletes = append(volumeDeletes, r.Path)
			mu.Unlock()
		}
		return false
	}, func() {})
	e.provisioner("provisioner", "--cloud-config", e.s.CloudConfVia(t, proxy))
	src := e.claim("origin", "")
	srcPV := e.waitBound(src)
	vs := e.volumeSnapshot("snap", src.Name)
	vs = e.waitReady(vs.Name)
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Delete(context.Background(), src.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	volumeID := srcPV.Annotations["cinder.openstack.org/volume-id"]
	// the library's VolumeFailedDelete on the PV names the snapshot
	framework.Eventually(t, timeout, "no Warning naming the snapshot on PV "+srcPV.Name, func(ctx context.Context) (bool, error) {
		evs, err := e.s.Kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + srcPV.Name})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Type == "Warning" && strings.Contains(ev.Message, "snapcontent-"+string(vs.UID)) {
				t.Logf("PV event %s: %s", ev.Reason, ev.Message)
				return true, nil
			}
		}
		return false, nil
	})
	if v, err := volumes.Get(context.Background(), e.cinder, volumeID).Extract(); err != nil || v.Status == "deleting" {
		t.Fatalf("volume %s with a snapshot: %v %v", volumeID, v, err)
	}
	mu.Lock()
	if len(volumeDeletes) != 0 {
		t.Errorf("DELETE sent to Cinder for a volume with snapshots: %v", volumeDeletes)
	}
	mu.Unlock()
	e.deleteVS(vs)
	e.waitNoSnapshots()
	e.deleteClaimsAndVolumes()
}

// kill -9 of the provisioner right after Cinder accepted the snapshot
// create (its answer never arrives): the next process finds the snapshot
// by name; exactly one Cinder snapshot, none after the VolumeSnapshot is
// deleted.
func TestSnapshotKilledAfterCreate(t *testing.T) {
	e := newEnv(t)
	first := e.provisioner("provisioner")
	src := e.claim("origin", "")
	e.waitBound(src)
	first.Stop(t)

	proxy := e.s.NewCinderProxy(t)
	var killed *framework.Process
	proxy.AfterApplied(isPost("/snapshots"), func() { killed.Kill(t) })
	killed = e.provisioner("provisioner-killed", "--cloud-config", e.s.CloudConfVia(t, proxy))
	vs := e.volumeSnapshot("snap", src.Name)
	proxy.Fired(t, timeout)
	framework.Eventually(t, 30*time.Second, "provisioner not dead", func(context.Context) (bool, error) { return killed.Exited(), nil })
	if n := e.snapshotsNamed("snapcontent-" + string(vs.UID)); n != 1 {
		t.Fatalf("%d Cinder snapshots after the kill, want 1", n)
	}
	e.provisioner("provisioner-2")
	e.waitReady(vs.Name)
	if n := e.snapshotsNamed("snapcontent-" + string(vs.UID)); n != 1 {
		t.Errorf("%d Cinder snapshots, want 1", n)
	}
	e.deleteVS(vs)
	e.waitNoSnapshots()
	e.deleteClaimsAndVolumes()
}

// A 30 s cinder-api outage during a burst of 5 VolumeSnapshots: each ends
// ready with exactly one Cinder snapshot, and none is left after they are
// deleted.
func TestSnapshotBurstThroughCinderOutage(t *testing.T) {
	const n = 5
	e := newEnv(t)
	e.provisioner("provisioner")
	src := e.claim("origin", "")
	e.waitBound(src)
	var vss []*snapv1.VolumeSnapshot
	for i := range n {
		vss = append(vss, e.volumeSnapshot(fmt.Sprintf("snap-%d", i), src.Name))
		if i == 1 {
			e.s.StopService(t, "cinder-api")
		}
	}
	time.Sleep(30 * time.Second) // the outage: a fixed length by design
	e.s.StartService(t, "cinder-api")
	// cinder-api killed between its insert and its cast leaves a snapshot
	// creating for ever: the provisioner says so (CinderSnapshotStuck) and
	// the admin's reset to error lets it converge
	resets := e.resetStuck(vss, 5*time.Minute)
	t.Logf("MEASURED: %d Cinder snapshots left creating by the outage, reset by the admin after a %s Warning", resets, "CinderSnapshotStuck")
	for _, vs := range vss {
		e.waitReady(vs.Name)
	}
	for _, vs := range vss {
		if got := e.snapshotsNamed("snapcontent-" + string(vs.UID)); got != 1 {
			t.Errorf("VolumeSnapshot %s: %d Cinder snapshots, want 1", vs.Name, got)
		}
	}
	all, err := e.cinderSnapshots(context.Background())
	if err != nil || len(all) != n {
		t.Errorf("%d Cinder snapshots of the test, want %d (%v)", len(all), n, err)
	}
	for _, vs := range vss {
		e.deleteVS(vs)
	}
	e.waitNoSnapshots()
	e.deleteClaimsAndVolumes()
}
