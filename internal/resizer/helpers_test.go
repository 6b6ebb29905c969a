package resizer

import (
	"context"
	"strings"
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
	"github.com/cinder-provisioner/cinder-provisioner/internal/provisioner"
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
			provisioner.AnnProvisionerIdentity: testName, provisioner.AnnVolumeID: e.volumeID,
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
		pv.Annotations[provisioner.AnnProvisionerIdentity] = "someone.else/provisioner"
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
			Annotations: map[string]string{annStorageProvisioner: testName}},
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
	r, err := New(Config{Cinder: e.cinder, Kube: e.kube, Recorder: e.events, Name: testName, PassTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
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
