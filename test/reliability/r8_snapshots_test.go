package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
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
	snaps, err := snapclient.NewForConfig(e.s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.SnapshotV1().VolumeSnapshotClasses().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatalf("the snapshot API is not served (hack/local-snapshot.sh installs it): %v", err)
	}
	t.Cleanup(func() { r8Cleanup(e, snaps) })
	vsc := &snapv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: e.clusterID}, Driver: e.name, DeletionPolicy: snapv1.VolumeSnapshotContentDelete}
	if _, err := snaps.SnapshotV1().VolumeSnapshotClasses().Create(ctx, vsc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = snaps.SnapshotV1().VolumeSnapshotClasses().Delete(context.Background(), vsc.Name, metav1.DeleteOptions{})
	})
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
			Spec: snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim}, VolumeSnapshotClassName: &vsc.Name}}
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
	resets := r8ResetStuck(e, snaps, vss, 5*time.Minute)

	// every VolumeSnapshot ready, with exactly one Cinder snapshot
	var recover time.Duration
	deadline := time.Now().Add(6 * time.Minute)
	notReady := 0
	for _, vs := range vss {
		ready := false
		for !ready && time.Now().Before(deadline) {
			got, err := snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(ctx, vs.Name, metav1.GetOptions{})
			ready = err == nil && got.Status != nil && got.Status.ReadyToUse != nil && *got.Status.ReadyToUse
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
		sel := fields.Set{"involvedObject.name": vs.Name, "involvedObject.kind": "VolumeSnapshot"}.AsSelector().String()
		evs, err := e.s.Kube.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs.Items {
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
	pages, err := snapshots.List(e.cinder, snapshots.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := snapshots.ExtractSnapshots(pages)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, s := range all {
		if s.Metadata[metaClusterID] == e.clusterID {
			out[s.Name] = append(out[s.Name], s.ID+" "+s.Status)
		}
	}
	return out, nil
}

// r8Cleanup removes what a failed run left (finalizers dropped) and the
// env's Cinder snapshots, before its volumes go.
func r8Cleanup(e *env, snaps snapclient.Interface) {
	ctx := context.Background()
	if list, err := snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{}); err == nil {
		for _, c := range list.Items {
			if c.Spec.Driver == e.name {
				c.Finalizers = nil
				_, _ = snaps.SnapshotV1().VolumeSnapshotContents().Update(ctx, &c, metav1.UpdateOptions{})
				_ = snaps.SnapshotV1().VolumeSnapshotContents().Delete(ctx, c.Name, metav1.DeleteOptions{})
			}
		}
	}
	if list, err := snaps.SnapshotV1().VolumeSnapshots(e.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, vs := range list.Items {
			vs.Finalizers = nil
			_, _ = snaps.SnapshotV1().VolumeSnapshots(e.ns).Update(ctx, &vs, metav1.UpdateOptions{})
			_ = snaps.SnapshotV1().VolumeSnapshots(e.ns).Delete(ctx, vs.Name, metav1.DeleteOptions{})
		}
	}
	left, err := r8Snapshots(ctx, e)
	if err != nil {
		return
	}
	for _, ids := range left {
		for _, id := range ids {
			f := strings.Fields(id)
			if len(f) == 2 && f[1] == "creating" { // stuck: only a reset lets it go
				body := map[string]any{"os-reset_status": map[string]any{"status": "error"}}
				_, _ = e.cinder.Post(ctx, e.cinder.ServiceURL("snapshots", f[0], "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
			}
			_ = snapshots.Delete(ctx, e.cinder, f[0]).ExtractErr()
		}
	}
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		if left, err := r8Snapshots(ctx, e); err == nil && len(left) == 0 {
			return
		}
	}
}

// r8ResetStuck plays the admin: each VolumeSnapshot not ready that has a
// CinderSnapshotStuck Warning gets its creating Cinder snapshots reset to
// error (os-reset_status). It waits at most max for every VolumeSnapshot
// to be ready or stuck, and returns how many it reset.
func r8ResetStuck(e *env, snaps snapclient.Interface, vss []*snapv1.VolumeSnapshot, max time.Duration) int {
	ctx := context.Background()
	resets := 0
	done := map[string]bool{}
	for end := time.Now().Add(max); time.Now().Before(end) && len(done) < len(vss); time.Sleep(2 * time.Second) {
		for _, vs := range vss {
			if done[vs.Name] {
				continue
			}
			got, err := snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(ctx, vs.Name, metav1.GetOptions{})
			if err == nil && got.Status != nil && got.Status.ReadyToUse != nil && *got.Status.ReadyToUse {
				done[vs.Name] = true
				continue
			}
			sel := fields.Set{"involvedObject.name": vs.Name, "involvedObject.kind": "VolumeSnapshot", "reason": "CinderSnapshotStuck"}.AsSelector().String()
			evs, err := e.s.Kube.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
			if err != nil || len(evs.Items) == 0 {
				continue
			}
			left, err := r8Snapshots(ctx, e)
			if err != nil {
				continue
			}
			for _, id := range left["snapcontent-"+string(vs.UID)] {
				if f := strings.Fields(id); len(f) == 2 && f[1] == "creating" {
					body := map[string]any{"os-reset_status": map[string]any{"status": "error"}}
					if _, err := e.cinder.Post(ctx, e.cinder.ServiceURL("snapshots", f[0], "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}}); err == nil {
						resets++
					}
				}
			}
			done[vs.Name] = true
		}
	}
	return resets
}
