// Package snapshot tests VolumeSnapshots of our claims on the real local
// stack: external-snapshotter's snapshot-controller (hack/local-snapshot.sh),
// the built cinder-provisioner binary, a real Cinder with tgtd; data written
// and read through a userspace iSCSI login (libiscsi).
package snapshot

import (
	"context"
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

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	initiatorIQN = "iqn.2026-11.org.cinder-provisioner:integration"
	timeout      = 2 * time.Minute
)

// env is one test's world: its own provisioner name (the snapshot
// driver), cluster id, namespaces, VolumeSnapshotClass.
type env struct {
	t         *testing.T
	s         *framework.Stack
	name      string
	clusterID string
	ns        string
	secretNS  string
	cinder    *gophercloud.ServiceClient
	snaps     snapclient.Interface
	class     string // StorageClass
	snapClass string // VolumeSnapshotClass, deletionPolicy Delete
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := framework.Get(t)
	id := framework.UniqueName("it")
	e := &env{t: t, s: s, name: id + ".cinder.openstack.org/standalone-cinder", clusterID: id,
		ns: s.Namespace(t, "claims"), secretNS: s.Namespace(t, "provisioner"), cinder: s.CinderClient(t)}
	e.cinder.Microversion = "3.54"
	e.snaps = s.SnapshotClient(t)
	// cleanups run last first: Cinder snapshots go before the volumes
	// (Cinder keeps a volume that has snapshots), the volumes before the
	// namespaces
	s.CleanupClusterVolumes(t, e.cinder, e.clusterID)
	t.Cleanup(e.cleanupSnapshots)
	e.class = e.storageClass()
	e.snapClass = e.snapshotClass(snapv1.VolumeSnapshotContentDelete)
	return e
}

// provisioner starts the binary for this env; extra args override.
func (e *env) provisioner(name string, extra ...string) *framework.Process {
	e.t.Helper()
	a := framework.ProvisionerArgs{Name: e.name, ClusterID: e.clusterID, SecretNamespace: e.secretNS, Initiator: initiatorIQN, Verbosity: 4}
	return e.s.StartProvisioner(e.t, name, a, extra...)
}

func (e *env) storageClass() string {
	e.t.Helper()
	return framework.CreateStorageClass(e.t, e.s.Kube, framework.StorageClass("it-snap", e.name, map[string]string{"type": "tgtfile"}))
}

func (e *env) snapshotClass(policy snapv1.DeletionPolicy) string {
	e.t.Helper()
	return framework.CreateSnapshotClass(e.t, e.snaps, framework.UniqueName("it-snapclass"), e.name, policy)
}

// claim makes a block claim, from a VolumeSnapshot when from != "".
func (e *env) claim(name, from string) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	return framework.CreateClaim(e.t, e.s.Kube, framework.Claim(e.ns, name, e.class, "1Gi", func(pvc *corev1.PersistentVolumeClaim) {
		block := corev1.PersistentVolumeBlock
		pvc.Spec.VolumeMode = &block
		if from != "" {
			group := snapv1.GroupName
			pvc.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: from}
		}
	}))
}

func (e *env) waitBound(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	e.t.Helper()
	return framework.WaitBoundPV(e.t, e.s.Kube, e.ns, pvc.Name, timeout)
}

// volumeSnapshot makes a VolumeSnapshot of the claim with the env's class.
func (e *env) volumeSnapshot(name, claim string) *snapv1.VolumeSnapshot {
	e.t.Helper()
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim},
			VolumeSnapshotClassName: &e.snapClass},
	}
	out, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(context.Background(), vs, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create VolumeSnapshot %s: %v", name, err)
	}
	return out
}

// waitReady waits until the VolumeSnapshot is readyToUse and returns it.
func (e *env) waitReady(name string) *snapv1.VolumeSnapshot {
	e.t.Helper()
	var vs *snapv1.VolumeSnapshot
	framework.Eventually(e.t, timeout, "VolumeSnapshot "+name+" not readyToUse", func(ctx context.Context) (bool, error) {
		var err error
		vs, err = e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return framework.VolumeSnapshotReady(vs), nil
	})
	return vs
}

// deleteVS deletes the VolumeSnapshot and waits until it and its content
// are gone from the API server.
func (e *env) deleteVS(vs *snapv1.VolumeSnapshot) {
	e.t.Helper()
	if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Delete(context.Background(), vs.Name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete VolumeSnapshot %s: %v", vs.Name, err)
	}
	framework.Eventually(e.t, timeout, "VolumeSnapshot "+vs.Name+" or its content not gone", func(ctx context.Context) (bool, error) {
		_, err1 := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(ctx, vs.Name, metav1.GetOptions{})
		_, err2 := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, "snapcontent-"+string(vs.UID), metav1.GetOptions{})
		return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2), nil
	})
}

// cinderSnapshots lists this env's Cinder snapshots (by the cluster id in
// their metadata), every status.
func (e *env) cinderSnapshots(ctx context.Context) ([]snapshots.Snapshot, error) {
	return framework.ClusterSnapshots(ctx, e.cinder, e.clusterID)
}

// snapshotsNamed counts this env's Cinder snapshots named name.
func (e *env) snapshotsNamed(name string) int {
	e.t.Helper()
	all, err := e.cinderSnapshots(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, s := range all {
		if s.Name == name {
			n++
		}
	}
	return n
}

// waitNoSnapshots waits until this env has no Cinder snapshot left.
func (e *env) waitNoSnapshots() {
	e.t.Helper()
	framework.Eventually(e.t, timeout, "Cinder snapshots left", func(ctx context.Context) (bool, error) {
		all, err := e.cinderSnapshots(ctx)
		return err == nil && len(all) == 0, err
	})
}

// cleanupSnapshots removes what a failed test left: VolumeSnapshots and
// contents of this env (finalizers dropped: the provisioner may be gone)
// and its Cinder snapshots, before the volumes go.
func (e *env) cleanupSnapshots() {
	if err := framework.CleanupSnapshots(e.snaps, e.cinder, e.name, e.ns, e.clusterID); err != nil {
		e.t.Errorf("cleanup: list Cinder snapshots: %v", err)
	}
}

// deleteClaimsAndPVs deletes every claim of the env and waits until their
// PVs and volumes are gone (the provisioner must run).
func (e *env) deleteClaimsAndVolumes() {
	e.t.Helper()
	ctx := context.Background()
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		e.t.Fatal(err)
	}
	framework.Eventually(e.t, 3*timeout, "volumes of the test left in Cinder", func(ctx context.Context) (bool, error) {
		vols, err := framework.ClusterVolumes(ctx, e.cinder, e.clusterID)
		return err == nil && len(vols) == 0, err
	})
}

// warnings returns the Warning Events on an object of the namespace, as
// "Source/Reason: message".
func (e *env) warnings(kind, name string) []string {
	e.t.Helper()
	evs, err := framework.EventsOf(context.Background(), e.s.Kube, e.ns, kind, name)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Type == corev1.EventTypeWarning {
			for range max(ev.Count, 1) {
				out = append(out, ev.Source.Component+"/"+ev.Reason+": "+ev.Message)
			}
		}
	}
	return out
}

func iscsiLogin(e *env, pv *corev1.PersistentVolume) framework.ISCSILogin {
	e.t.Helper()
	l, err := framework.ISCSILoginFromPV(context.Background(), e.s.Kube, pv)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

func (e *env) writePattern(pv *corev1.PersistentVolume, p framework.Pattern) {
	e.t.Helper()
	if err := framework.WritePattern(context.Background(), iscsiLogin(e, pv), p); err != nil {
		e.t.Fatalf("write pattern: %v", err)
	}
	e.expectPattern(pv, p, true, "source, read back")
}

// expectPattern reads the PV's LUN through a fresh login and checks the
// pattern is there (want) or not.
func (e *env) expectPattern(pv *corev1.PersistentVolume, p framework.Pattern, want bool, what string) {
	e.t.Helper()
	got, _, err := framework.ReadPattern(context.Background(), iscsiLogin(e, pv), p)
	if err != nil {
		e.t.Fatalf("%s: read: %v", what, err)
	}
	if got != want {
		e.t.Fatalf("%s: pattern present %v, want %v", what, got, want)
	}
}

func isPost(suffix string) func(framework.ProxyRequest) bool {
	return func(r framework.ProxyRequest) bool { return r.Method == "POST" && strings.HasSuffix(r.Path, suffix) }
}

// resetStuck waits (at most max) until every VolumeSnapshot is ready or
// has a CinderSnapshotStuck Warning; for each of the latter it resets the
// Cinder snapshots of its content that are creating to error, as an admin
// would (os-reset_status). It returns how many it reset; a reset that
// fails fails the test.
func (e *env) resetStuck(vss []*snapv1.VolumeSnapshot, max time.Duration) int {
	e.t.Helper()
	resets, err := framework.ResetStuckSnapshots(e.s.Kube, e.snaps, e.cinder, e.ns, e.clusterID, vss, max)
	if err != nil {
		e.t.Fatal(err)
	}
	return resets
}
