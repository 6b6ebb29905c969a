// Package snapshot tests VolumeSnapshots of our claims on the real local
// stack: external-snapshotter's snapshot-controller (hack/local-snapshot.sh),
// the built cinder-provisioner binary, a real Cinder with tgtd; data written
// and read through a userspace iSCSI login (libiscsi).
package snapshot

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	initiatorIQN = "iqn.2026-11.org.cinder-provisioner:integration"
	timeout      = 2 * time.Minute
	metaCluster  = "cinder.openstack.org/cluster-id"
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
	var err error
	if e.snaps, err = snapclient.NewForConfig(s.RESTConfig); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotClasses().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatalf("the snapshot API is not served (hack/local-snapshot.sh installs it): %v", err)
	}
	// cleanups run last first: Cinder snapshots go before the volumes
	// (Cinder keeps a volume that has snapshots), the volumes before the
	// namespaces
	s.CleanupVolumesWithMetadata(t, e.cinder, metaCluster, e.clusterID)
	t.Cleanup(e.cleanupSnapshots)
	e.class = e.storageClass()
	e.snapClass = e.snapshotClass(snapv1.VolumeSnapshotContentDelete)
	return e
}

// provisioner starts the binary for this env; extra args override.
func (e *env) provisioner(name string, extra ...string) *framework.Process {
	e.t.Helper()
	args := []string{
		"--kubeconfig", e.s.Kubeconfig, "--cloud-config", e.s.CloudConf,
		"--provisioner-name", e.name, "--cluster-id", e.clusterID,
		"--secret-namespace", e.secretNS, "--iscsi-initiator-name", initiatorIQN,
		"--metrics-address", "", "--leader-elect=false", "-v", "4",
	}
	return framework.Start(e.t, name, e.s.ProvisionerBinary(e.t), append(args, extra...)...)
}

func (e *env) storageClass() string {
	e.t.Helper()
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: framework.UniqueName("it-snap")}, Provisioner: e.name,
		Parameters: map[string]string{"type": "tgtfile"}}
	if _, err := e.s.Kube.StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.s.Kube.StorageV1().StorageClasses().Delete(context.Background(), sc.Name, metav1.DeleteOptions{})
	})
	return sc.Name
}

func (e *env) snapshotClass(policy snapv1.DeletionPolicy) string {
	e.t.Helper()
	c := &snapv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: framework.UniqueName("it-snapclass")}, Driver: e.name, DeletionPolicy: policy}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotClasses().Create(context.Background(), c, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.snaps.SnapshotV1().VolumeSnapshotClasses().Delete(context.Background(), c.Name, metav1.DeleteOptions{})
	})
	return c.Name
}

// claim makes a block claim, from a VolumeSnapshot when from != "".
func (e *env) claim(name, from string) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	block := corev1.PersistentVolumeBlock
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &e.class, VolumeMode: &block,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if from != "" {
		group := snapv1.GroupName
		pvc.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: from}
	}
	out, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Create(context.Background(), pvc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create claim %s: %v", name, err)
	}
	return out
}

func (e *env) waitBound(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	e.t.Helper()
	var pv *corev1.PersistentVolume
	framework.Eventually(e.t, timeout, "claim "+pvc.Name+" not bound", func(ctx context.Context) (bool, error) {
		c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil || c.Status.Phase != corev1.ClaimBound {
			return false, err
		}
		pv, err = e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		return err == nil, err
	})
	return pv
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
		return vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse, nil
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
	pages, err := snapshots.List(e.cinder, snapshots.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := snapshots.ExtractSnapshots(pages)
	if err != nil {
		return nil, err
	}
	var out []snapshots.Snapshot
	for _, s := range all {
		if s.Metadata[metaCluster] == e.clusterID {
			out = append(out, s)
		}
	}
	return out, nil
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
	ctx := context.Background()
	if list, err := e.snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{}); err == nil {
		for _, c := range list.Items {
			if c.Spec.Driver != e.name {
				continue
			}
			c.Finalizers = nil
			_, _ = e.snaps.SnapshotV1().VolumeSnapshotContents().Update(ctx, &c, metav1.UpdateOptions{})
			_ = e.snaps.SnapshotV1().VolumeSnapshotContents().Delete(ctx, c.Name, metav1.DeleteOptions{})
		}
	}
	if list, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, vs := range list.Items {
			vs.Finalizers = nil
			_, _ = e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Update(ctx, &vs, metav1.UpdateOptions{})
			_ = e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Delete(ctx, vs.Name, metav1.DeleteOptions{})
		}
	}
	all, err := e.cinderSnapshots(ctx)
	if err != nil {
		e.t.Errorf("cleanup: list Cinder snapshots: %v", err)
		return
	}
	for _, s := range all {
		if s.Status == "creating" { // stuck: only a reset lets it go
			body := map[string]any{"os-reset_status": map[string]any{"status": "error"}}
			_, _ = e.cinder.Post(ctx, e.cinder.ServiceURL("snapshots", s.ID, "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
		}
		_ = snapshots.Delete(ctx, e.cinder, s.ID).ExtractErr()
	}
	deadline := time.Now().Add(timeout)
	for _, s := range all {
		for time.Now().Before(deadline) {
			if _, err := snapshots.Get(ctx, e.cinder, s.ID).Extract(); gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				break
			}
			time.Sleep(time.Second)
		}
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
		vols, err := framework.VolumesWithMetadata(ctx, e.cinder, metaCluster, e.clusterID)
		return err == nil && len(vols) == 0, err
	})
}

// warnings returns the Warning Events on an object of the namespace, as
// "Source/Reason: message".
func (e *env) warnings(kind, name string) []string {
	e.t.Helper()
	sel := fields.Set{"involvedObject.name": name, "involvedObject.kind": kind}.AsSelector().String()
	evs, err := e.s.Kube.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs.Items {
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
	src := pv.Spec.ISCSI
	if src == nil || src.InitiatorName == nil || src.SecretRef == nil {
		e.t.Fatalf("PV %s has no iSCSI source with an initiator and a CHAP Secret", pv.Name)
	}
	sec, err := e.s.Kube.CoreV1().Secrets(src.SecretRef.Namespace).Get(context.Background(), src.SecretRef.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return framework.ISCSILogin{Initiator: *src.InitiatorName, Portal: src.TargetPortal, IQN: src.IQN, LUN: src.Lun,
		Username: string(sec.Data["node.session.auth.username"]), Password: string(sec.Data["node.session.auth.password"])}
}

// pattern is 64 KiB of seeded pseudo-random data at LBA 0 and 512 MiB.
type pattern struct{ head, mid []byte }

const patternMidLBA = 512 << 20 / 512

func newPattern(seed uint64) pattern {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := pattern{head: make([]byte, 64<<10), mid: make([]byte, 64<<10)}
	for i := range p.head {
		p.head[i], p.mid[i] = byte(r.Uint32()), byte(r.Uint32())
	}
	return p
}

func (e *env) writePattern(pv *corev1.PersistentVolume, p pattern) {
	e.t.Helper()
	ctx := context.Background()
	l := iscsiLogin(e, pv)
	if err := framework.WriteBlocks(ctx, l, 0, p.head); err != nil {
		e.t.Fatalf("write pattern: %v", err)
	}
	if err := framework.WriteBlocks(ctx, l, patternMidLBA, p.mid); err != nil {
		e.t.Fatalf("write pattern: %v", err)
	}
	e.expectPattern(pv, p, true, "source, read back")
}

// expectPattern reads the PV's LUN through a fresh login and checks the
// pattern is there (want) or not.
func (e *env) expectPattern(pv *corev1.PersistentVolume, p pattern, want bool, what string) {
	e.t.Helper()
	ctx := context.Background()
	l := iscsiLogin(e, pv)
	head, err := framework.ReadBlocks(ctx, l, 0, len(p.head))
	if err != nil {
		e.t.Fatalf("%s: read: %v", what, err)
	}
	mid, err := framework.ReadBlocks(ctx, l, patternMidLBA, len(p.mid))
	if err != nil {
		e.t.Fatalf("%s: read: %v", what, err)
	}
	if got := bytes.Equal(head, p.head) && bytes.Equal(mid, p.mid); got != want {
		e.t.Fatalf("%s: pattern present %v, want %v", what, got, want)
	}
}

func isPost(suffix string) func(framework.ProxyRequest) bool {
	return func(r framework.ProxyRequest) bool { return r.Method == "POST" && strings.HasSuffix(r.Path, suffix) }
}

// resetStuck waits (at most max) until every VolumeSnapshot is ready or
// has a CinderSnapshotStuck Warning; for each of the latter it resets the
// Cinder snapshots of its content that are creating to error, as an admin
// would (os-reset_status). It returns how many it reset.
func (e *env) resetStuck(vss []*snapv1.VolumeSnapshot, max time.Duration) int {
	e.t.Helper()
	ctx := context.Background()
	resets := 0
	done := map[string]bool{}
	for end := time.Now().Add(max); time.Now().Before(end) && len(done) < len(vss); time.Sleep(2 * time.Second) {
		for _, vs := range vss {
			if done[vs.Name] {
				continue
			}
			got, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(ctx, vs.Name, metav1.GetOptions{})
			if err == nil && got.Status != nil && got.Status.ReadyToUse != nil && *got.Status.ReadyToUse {
				done[vs.Name] = true
				continue
			}
			stuck := false
			for _, w := range e.warnings("VolumeSnapshot", vs.Name) {
				stuck = stuck || strings.Contains(w, "/CinderSnapshotStuck:")
			}
			if !stuck {
				continue
			}
			all, err := e.cinderSnapshots(ctx)
			if err != nil {
				continue
			}
			for _, s := range all {
				if s.Name == "snapcontent-"+string(vs.UID) && s.Status == "creating" {
					body := map[string]any{"os-reset_status": map[string]any{"status": "error"}}
					if _, err := e.cinder.Post(ctx, e.cinder.ServiceURL("snapshots", s.ID, "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}}); err != nil {
						e.t.Fatalf("reset snapshot %s: %v", s.ID, err)
					}
					resets++
				}
			}
			done[vs.Name] = true
		}
	}
	return resets
}
