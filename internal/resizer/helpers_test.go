package resizer

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

const (
	testName      = "openstack.org/standalone-cinder"
	testNamespace = "apps"
	testClaim     = "data"
	testClaimUID  = types.UID("6a1d2c3e-0000-4000-8000-000000000001")
	testPV        = "pvc-6a1d2c3e-0000-4000-8000-000000000001"
	testClass     = "fast"
	testKey       = testNamespace + "/" + testClaim
)

// env is a Resizer on the stateful Cinder fake and a fake clientset holding
// one Bound claim of 1Gi, its PV and an expandable class; the claim's
// volume is in-use (exported, as every volume of ours).
type env struct {
	t        *testing.T
	ctx      context.Context
	cinder   *fake.Fake
	kube     *k8sfake.Clientset
	events   *record.FakeRecorder
	r        *Resizer
	volumeID string

	mu   sync.Mutex
	sent []sentExtend // os-extends the resizer sent, oldest first
}

// sentExtend is one os-extend the resizer sent and what the claim's status
// said at that moment.
type sentExtend struct {
	sizeGiB   int
	allocated string // status.allocatedResources[storage]
	state     string // status.allocatedResourceStatuses[storage]
}

// extendLog is the fake as the resizer sees it: each os-extend is noted,
// with the claim's status when it leaves, then passed on.
type extendLog struct {
	*fake.Fake
	e *env
}

func (l *extendLog) ExtendVolume(ctx context.Context, id string, sizeGiB int) error {
	s := sentExtend{sizeGiB: sizeGiB}
	if c, err := l.e.kube.CoreV1().PersistentVolumeClaims(testNamespace).Get(ctx, testClaim, metav1.GetOptions{}); err == nil {
		s.allocated = storageOf(c.Status.AllocatedResources)
		s.state = string(c.Status.AllocatedResourceStatuses[corev1.ResourceStorage])
	}
	l.e.mu.Lock()
	l.e.sent = append(l.e.sent, s)
	l.e.mu.Unlock()
	return l.Fake.ExtendVolume(ctx, id, sizeGiB)
}

// extends returns the os-extends sent so far.
func (e *env) extends() []sentExtend {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]sentExtend(nil), e.sent...)
}

// restart replaces the Resizer by a new one on the same Cinder and cluster:
// a new process, which remembers nothing.
func (e *env) restart() {
	e.t.Helper()
	r, err := New(Config{Cinder: &extendLog{Fake: e.cinder, e: e}, Kube: e.kube, Recorder: e.events, Name: testName, PassTimeout: time.Minute})
	if err != nil {
		e.t.Fatal(err)
	}
	e.r = r
}

// spec says what the test's PV and class are.
type spec struct {
	source     string // iscsi (default), fc, csi
	block      bool
	noExpand   bool // class without allowVolumeExpansion
	noClass    bool
	request    string // claim request (default 2Gi)
	pvCap      string // default 1Gi
	claimCap   string // default 1Gi
	volumeSize int    // default 1
	status     string // volume status (default in-use)
	notOurs    bool   // PV of another provisioner
}

func newEnv(t *testing.T, s spec) *env {
	t.Helper()
	e := &env{t: t, cinder: fake.New(), events: record.NewFakeRecorder(100)}
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(4)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	e.ctx = klog.NewContext(ctx, logger)
	if s.request == "" {
		s.request = "2Gi"
	}
	if s.pvCap == "" {
		s.pvCap = "1Gi"
	}
	if s.claimCap == "" {
		s.claimCap = "1Gi"
	}
	if s.volumeSize == 0 {
		s.volumeSize = 1
	}
	if s.status == "" {
		s.status = cinder.StatusInUse
	}
	v := cinder.Volume{Name: testPV, SizeGiB: s.volumeSize, Status: s.status}
	if s.status == cinder.StatusInUse {
		v.AttachmentIDs = []string{"att-1"}
	}
	e.volumeID = e.cinder.AddVolume(v)

	mode := corev1.PersistentVolumeFilesystem
	if s.block {
		mode = corev1.PersistentVolumeBlock
	}
	class := testClass
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: testPV, Annotations: map[string]string{
			contract.AnnProvisionerIdentity: testName, contract.AnnVolumeID: e.volumeID,
		}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(s.pvCap)},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			ClaimRef:         &corev1.ObjectReference{Namespace: testNamespace, Name: testClaim, UID: testClaimUID},
			StorageClassName: class,
			VolumeMode:       &mode,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	if s.notOurs {
		pv.Annotations[contract.AnnProvisionerIdentity] = "someone.else/provisioner"
	}
	switch s.source {
	case "", "iscsi":
		pv.Spec.ISCSI = &corev1.ISCSIPersistentVolumeSource{TargetPortal: "127.0.0.1:3260", IQN: "iqn.2010-10.org.openstack:volume-" + e.volumeID, Lun: 1}
	case "fc":
		pv.Spec.FC = &corev1.FCVolumeSource{TargetWWNs: []string{"500a098188fc1c0a"}, Lun: new(int32)}
	case "csi":
		pv.Spec.CSI = &corev1.CSIPersistentVolumeSource{Driver: "rbd.csi.ceph.com", VolumeHandle: "volumes/volume-" + e.volumeID}
	}
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testClaim, UID: testClaimUID,
			Annotations: map[string]string{contract.AnnStorageProvisioner: testName}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(s.request)}},
			StorageClassName: &class,
			VolumeName:       testPV,
			VolumeMode:       &mode,
		},
		Status: corev1.PersistentVolumeClaimStatus{
			Phase:    corev1.ClaimBound,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(s.claimCap)},
		},
	}
	expand := !s.noExpand
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: testClass}, Provisioner: testName, AllowVolumeExpansion: &expand}
	objs := []k8sruntime.Object{pv, claim}
	if !s.noClass {
		objs = append(objs, sc)
	}
	e.kube = k8sfake.NewClientset(objs...)
	e.restart()
	return e
}

func (e *env) claim() *corev1.PersistentVolumeClaim {
	e.t.Helper()
	c, err := e.kube.CoreV1().PersistentVolumeClaims(testNamespace).Get(e.ctx, testClaim, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) pv() *corev1.PersistentVolume {
	e.t.Helper()
	pv, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, testPV, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pv
}

func (e *env) volume() cinder.Volume {
	e.t.Helper()
	v, ok := e.cinder.Volume(e.volumeID)
	if !ok {
		e.t.Fatal("volume gone")
	}
	return v
}

// setRequest changes the claim's request, as a user's edit.
func (e *env) setRequest(q string) {
	e.t.Helper()
	c := e.claim()
	c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(q)
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(testNamespace).Update(e.ctx, c, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// drainEvents returns the Events recorded so far ("Type Reason message").
func (e *env) drainEvents() []string {
	var out []string
	for {
		select {
		case ev := <-e.events.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// setStatus sets the claim's allocatedResources and
// allocatedResourceStatuses of storage ("" leaves one out), as an earlier
// pass or the kubelet left them.
func (e *env) setStatus(allocated string, state corev1.ClaimResourceStatus) {
	e.t.Helper()
	c := e.claim()
	c.Status.AllocatedResources, c.Status.AllocatedResourceStatuses = nil, nil
	if allocated != "" {
		c.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(allocated)}
	}
	if state != "" {
		c.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: state}
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(testNamespace).UpdateStatus(e.ctx, c, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// charge is what ResourceQuota charges for the claim's storage, as
// Kubernetes' claim evaluator computes it (getStorageUsage): the larger of
// the request and status.allocatedResources.
func charge(c *corev1.PersistentVolumeClaim) resource.Quantity {
	q := c.Spec.Resources.Requests[corev1.ResourceStorage]
	if a, ok := c.Status.AllocatedResources[corev1.ResourceStorage]; ok && a.Cmp(q) > 0 {
		q = a
	}
	return q
}

// chargesAtLeast fails the test when quota would charge the claim less than
// sizeGiB, what Cinder holds or is extending the volume to.
func (e *env) chargesAtLeast(when string, sizeGiB int) {
	e.t.Helper()
	c := e.claim()
	got := charge(c)
	if got.Cmp(*resource.NewQuantity(int64(sizeGiB)*giB, resource.BinarySI)) < 0 {
		e.t.Errorf("%s: quota charges %s (request %s, allocatedResources %q) while Cinder holds or is extending to %d GiB",
			when, got.String(), storageOf(c.Spec.Resources.Requests), storageOf(c.Status.AllocatedResources), sizeGiB)
	}
}

func reasons(events []string) []string {
	out := []string{}
	for _, ev := range events {
		f := strings.Fields(ev)
		if len(f) >= 2 {
			out = append(out, f[0]+" "+f[1])
		}
	}
	return out
}

func storageOf(l corev1.ResourceList) string {
	q, ok := l[corev1.ResourceStorage]
	if !ok {
		return ""
	}
	return q.String()
}
