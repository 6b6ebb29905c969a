package snapshotter

import (
	"context"
	"slices"
	"strings"
	"testing"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

const (
	testName  = "cinder.openstack.org/provisioner"
	testNS    = "apps"
	testClass = "cinder-snap"
)

// env is one cluster (fake API server objects) and one Cinder (the fake)
// with a claim of ours bound to a PV of ours on an available volume.
type env struct {
	t        *testing.T
	cinder   *fake.Fake
	kube     *kubefake.Clientset
	snaps    *snapfake.Clientset
	recorder *record.FakeRecorder
	s        *Snapshotter
	volumeID string
	pv       *corev1.PersistentVolume
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	f := fake.New()
	v, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "pvc-1", SizeGiB: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetVolume(ctx, v.ID); err != nil { // available
		t.Fatal(err)
	}
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: testNS, UID: "claim-uid"},
		Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-1",
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-1", Annotations: map[string]string{
			contract.AnnProvisionerIdentity: testName, contract.AnnVolumeID: v.ID}},
		Spec: corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: testNS, Name: "data", UID: "claim-uid"}},
	}
	class := &snapv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: testClass}, Driver: testName, DeletionPolicy: snapv1.VolumeSnapshotContentDelete}
	e := &env{t: t, cinder: f, kube: kubefake.NewClientset(claim, pv), snaps: snapfake.NewSimpleClientset(class), //nolint:staticcheck // client/v8 generates no apply configurations, so its fake has no NewClientset
		recorder: record.NewFakeRecorder(100), volumeID: v.ID, pv: pv}
	e.s = e.snapshotter()
	return e
}

// snapshotter is a new Snapshotter on the env's clients: a restarted
// process (kill -9) has nothing but what Kubernetes and Cinder hold.
func (e *env) snapshotter() *Snapshotter {
	s, err := New(Config{Cinder: e.cinder, Kube: e.kube, Snapshots: e.snaps, Recorder: e.recorder, Name: testName, ClusterID: "c1", Now: e.cinder.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// volumeSnapshot creates a VolumeSnapshot of the claim with the class.
func (e *env) volumeSnapshot(name, class string) *snapv1.VolumeSnapshot {
	e.t.Helper()
	claim := "data"
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: types.UID("uid-" + name)},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim}, VolumeSnapshotClassName: &class},
	}
	vs, err := e.snaps.SnapshotV1().VolumeSnapshots(testNS).Create(context.Background(), vs, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return vs
}

// sync fills the snapshotter's listers with what the fake API server
// holds now: the informers' caches, caught up.
func (e *env) sync() {
	e.t.Helper()
	ctx := context.Background()
	vsIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	cIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	clIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	vss, _ := e.snaps.SnapshotV1().VolumeSnapshots("").List(ctx, metav1.ListOptions{})
	for i := range vss.Items {
		_ = vsIdx.Add(&vss.Items[i])
	}
	cs, _ := e.snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{})
	for i := range cs.Items {
		_ = cIdx.Add(&cs.Items[i])
	}
	cls, _ := e.snaps.SnapshotV1().VolumeSnapshotClasses().List(ctx, metav1.ListOptions{})
	for i := range cls.Items {
		_ = clIdx.Add(&cls.Items[i])
	}
	e.s.vss = snaplisters.NewVolumeSnapshotLister(vsIdx)
	e.s.contents = snaplisters.NewVolumeSnapshotContentLister(cIdx)
	e.s.classes = snaplisters.NewVolumeSnapshotClassLister(clIdx)
}

// pass runs one pass over key on caught-up caches.
func (e *env) pass(key string) result {
	e.t.Helper()
	e.sync()
	return e.s.pass(context.Background(), key)
}

// until runs passes over key until one ends with want, at most max.
func (e *env) until(key string, want outcome, maxPasses int) {
	e.t.Helper()
	var got []string
	for range maxPasses {
		res := e.pass(key)
		got = append(got, res.out.String())
		if res.out == want {
			return
		}
	}
	e.t.Fatalf("%s: no %s in %d passes: %v", key, want, maxPasses, got)
}

func (e *env) content(vs *snapv1.VolumeSnapshot) *snapv1.VolumeSnapshotContent {
	e.t.Helper()
	c, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(context.Background(), contentName(vs), metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// deleteVS marks the VolumeSnapshot deleted as external-snapshotter's
// controller sees it: the content gets annBeingDeleted and a deletion
// timestamp (the fake API server keeps objects with finalizers only
// this way).
func (e *env) deleteVS(vs *snapv1.VolumeSnapshot) {
	e.t.Helper()
	ctx := context.Background()
	c := e.content(vs)
	now := metav1.Now()
	c.DeletionTimestamp = &now
	metav1.SetMetaDataAnnotation(&c.ObjectMeta, annBeingDeleted, "yes")
	if !slices.Contains(c.Finalizers, finalizerBound) {
		c.Finalizers = append(c.Finalizers, finalizerBound)
	}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.snaps.SnapshotV1().VolumeSnapshots(vs.Namespace).Delete(ctx, vs.Name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// events drains the recorded Events ("Warning Reason message").
func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.recorder.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func hasEvent(events []string, prefix string) bool {
	return slices.ContainsFunc(events, func(ev string) bool { return strings.HasPrefix(ev, prefix) })
}

// live returns the Cinder snapshots not being deleted.
func (e *env) live() []cinder.Snapshot {
	return slices.DeleteFunc(e.cinder.Snapshots(), func(s cinder.Snapshot) bool { return s.Status == cinder.SnapshotDeleting })
}
