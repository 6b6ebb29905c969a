package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// TestR8Snapshots takes bursts of VolumeSnapshots of bound claims while the
// provisioner is killed (kill -9) at random moments and cinder-api is down
// for 30 s, with external-snapshotter's snapshot-controller running: every
// VolumeSnapshot must end readyToUse with exactly one Cinder snapshot, and
// none may be left once they are deleted (Delete policy). It counts the
// Warning Events snapshot-controller records per VolumeSnapshot before
// our content exists.
func TestR8Snapshots(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	snaps := e.s.SnapshotClient(t)
	// what a failed run left (finalizers dropped) and the env's Cinder
	// snapshots go before its volumes
	t.Cleanup(func() { _ = framework.CleanupSnapshots(snaps, e.cinder, e.name, e.ns, e.clusterID) })
	vsc := framework.CreateSnapshotClass(t, snaps, e.clusterID, e.name, snapv1.VolumeSnapshotContentDelete)
	class := e.storageClass(nil)
	nClaims, perClaim, nKills := pick(4, 2), pick(5, 3), pick(6, 3)
	start := time.Now()

	cur := e.provisioner("provisioner-0")
	var live []*corev1.PersistentVolumeClaim
	var made []string
	for i := range nClaims {
		pvc, err := e.claim(fmt.Sprintf("r8-%d", i), class, "1Gi")
		if err != nil {
			t.Fatalf("create claim: %v", err)
		}
		live = append(live, pvc)
		made = append(made, "pvc-"+string(pvc.UID))
	}
	for _, pvc := range live {
		e.waitBound(pvc, 3*time.Minute)
	}

	// the burst, with kills at random moments and one 30 s outage of
	// cinder-api in its middle
	var vss []*snapv1.VolumeSnapshot
	kills := 0
	total := nClaims * perClaim
	outageAt := total / 2
	for i := range total {
		claim := live[i%nClaims].Name
		vs := &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r8-snap-%02d", i), Namespace: e.ns},
			Spec: snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim}, VolumeSnapshotClassName: &vsc}}
		out, err := snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(ctx, vs, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create VolumeSnapshot: %v", err)
		}
		vss = append(vss, out)
		if i == outageAt {
			e.s.StopService(t, "cinder-api")
			time.Sleep(30 * time.Second) // the outage: a fixed length by design
			e.s.StartService(t, "cinder-api")
		}
		time.Sleep(time.Duration(200+e.rng.IntN(800)) * time.Millisecond) // the load's pace, and a random kill moment
		if kills < nKills && e.rng.IntN(total) < 2*nKills {
			cur.Kill(t)
			kills++
			cur = e.provisioner(fmt.Sprintf("provisioner-%d", kills))
		}
	}
	faultsEnd := time.Now()
	// the admin's resets: one that fails is not counted (the VolumeSnapshot
	// then never gets ready, which the check below reports)
	resets, _ := framework.ResetStuckSnapshots(e.s.Kube, snaps, e.cinder, e.ns, e.clusterID, vss, 5*time.Minute)

	// every VolumeSnapshot ready, with exactly one Cinder snapshot
	var recover time.Duration
	deadline := time.Now().Add(6 * time.Minute)
	notReady := 0
	for _, vs := range vss {
		ready := false
		for !ready && time.Now().Before(deadline) {
			got, err := snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(ctx, vs.Name, metav1.GetOptions{})
			ready = err == nil && framework.VolumeSnapshotReady(got)
			if !ready {
				time.Sleep(time.Second) // bounded by the deadline
			}
		}
		if !ready {
			notReady++
			t.Errorf("VolumeSnapshot %s never readyToUse", vs.Name)
		}
	}
	recover = time.Since(faultsEnd)
	byName, err := r8Snapshots(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	double, missing := 0, 0
	for _, vs := range vss {
		switch n := len(byName["snapcontent-"+string(vs.UID)]); {
		case n > 1:
			double++
			t.Errorf("VolumeSnapshot %s: %d Cinder snapshots %v, want 1", vs.Name, n, byName["snapcontent-"+string(vs.UID)])
		case n == 0:
			missing++
			t.Errorf("VolumeSnapshot %s: no Cinder snapshot", vs.Name)
		}
	}
	warnings := 0
	for _, vs := range vss {
		evs, err := framework.EventsOf(ctx, e.s.Kube, e.ns, "VolumeSnapshot", vs.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Source.Component == "snapshot-controller" {
				warnings += int(max(ev.Count, 1))
			}
		}
	}

	// deleted: no Cinder snapshot left
	for _, vs := range vss {
		if err := snaps.SnapshotV1().VolumeSnapshots(e.ns).Delete(ctx, vs.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("delete VolumeSnapshot: %v", err)
		}
	}
	leftSnaps := 0
	for end := time.Now().Add(4 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		left, err := r8Snapshots(ctx, e)
		if err != nil {
			continue
		}
		leftSnaps = 0
		for _, ids := range left {
			leftSnaps += len(ids)
		}
		if leftSnaps == 0 {
			break
		}
	}
	if leftSnaps > 0 {
		t.Errorf("%d Cinder snapshots left after every VolumeSnapshot was deleted", leftSnaps)
	}
	o := e.settle(live, made, faultsEnd, 3*time.Minute)
	results.add(row{
		scenario: "R8 snapshots",
		load:     fmt.Sprintf("%d VolumeSnapshots of %d bound claims (Delete policy), then all deleted; %d never ready, %d without a Cinder snapshot", total, nClaims, notReady, missing),
		faults:   fmt.Sprintf("%d × kill -9 at random moments of the burst; cinder-api down 30 s in its middle (%d Cinder snapshots it left creating, reset by the admin after a CinderSnapshotStuck Warning)", kills, resets),
		bound:    o.bound, claims: o.live, leaked: o.leaked + leftSnaps, wronglyDeleted: o.wronglyDeleted, double: o.double + double,
		events:   fmt.Sprintf("%d Warning Events from snapshot-controller over %d VolumeSnapshots", warnings, total),
		recover:  fmt.Sprintf("all ready %.0fs after the faults", recover.Seconds()),
		duration: time.Since(start), passed: !t.Failed(),
	})
}

// r8Snapshots returns the env's Cinder snapshots (cluster id in their
// metadata) by name: ids with their status.
func r8Snapshots(ctx context.Context, e *env) (map[string][]string, error) {
	all, err := framework.ClusterSnapshots(ctx, e.cinder, e.clusterID)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, s := range all {
		out[s.Name] = append(out[s.Name], s.ID+" "+s.Status)
	}
	return out, nil
}
