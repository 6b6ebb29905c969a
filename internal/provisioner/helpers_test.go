package provisioner

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

const (
	testClusterID       = "cluster-a"
	testSecretNamespace = "cinder-provisioner"
	testIQN             = "iqn.2026-01.org.example:k8s-provisioner"
	testHost            = "k8s-provisioner"
	testClaimUID        = "6a1d2c3e-0000-4000-8000-000000000001"
	testPVName          = "pvc-" + testClaimUID
	// the fake's CHAP passwords are chap-secret-<n>
	chapPasswordPrefix = "chap-secret-"
)

// env is a Provisioner wired to the stateful Cinder fake, a fake clientset,
// a fake event recorder, and a logger that keeps what is logged.
type env struct {
	t      *testing.T
	ctx    context.Context
	cinder *fake.Fake
	kube   *k8sfake.Clientset
	events *record.FakeRecorder
	logger klog.Logger
	p      *Provisioner
	// attempted: an earlier attempt sent Cinder requests for the test's
	// claim, so it carries what that attempt put on it (earlierVolume)
	attempted bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{
		t:      t,
		cinder: fake.New(),
		kube:   k8sfake.NewClientset(),
		events: record.NewFakeRecorder(100),
	}
	e.logger = ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(10), ktesting.BufferLogs(true)))
	// a bound so that a hang fails the test instead of timing out the binary
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	e.ctx = klog.NewContext(ctx, e.logger)
	p, err := New(Config{
		Cinder:          e.cinder,
		Kube:            e.kube,
		Recorder:        e.events,
		ClusterID:       testClusterID,
		SecretNamespace: testSecretNamespace,
		Connector:       cinder.Connector{Initiator: testIQN, Host: testHost, IP: "192.0.2.10", Platform: "x86_64", OSType: "linux2"},
		// the fake answers every create at once: no create can land
		// later, unless a test says so (inflight_test.go)
		CreateLands: time.Nanosecond,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// the fake's clock starts at 2026-01-01 and ticks a second per volume:
	// every volume it makes is young
	e.p = p
	return e
}

var fakeEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// logs returns everything logged so far.
func (e *env) logs() string {
	return e.logger.GetSink().(ktesting.Underlier).GetBuffer().String()
}

// drainEvents returns the recorded events ("Type Reason message").
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

// oneWarning asserts that exactly one event was recorded, a Warning with
// reason, and returns its message.
func (e *env) oneWarning(reason string) string {
	e.t.Helper()
	evs := e.drainEvents()
	if len(evs) != 1 {
		e.t.Fatalf("events = %q, want exactly one Warning %s", evs, reason)
	}
	prefix := corev1.EventTypeWarning + " " + reason + " "
	if !strings.HasPrefix(evs[0], prefix) {
		e.t.Fatalf("event = %q, want a Warning with reason %s", evs[0], reason)
	}
	return strings.TrimPrefix(evs[0], prefix)
}

// noCredentials asserts that no event, log line or error shows a CHAP
// password of the fake.
func (e *env) noCredentials(err error, events ...string) {
	e.t.Helper()
	if err != nil && strings.Contains(err.Error(), chapPasswordPrefix) {
		e.t.Errorf("error shows a CHAP password: %v", err)
	}
	for _, ev := range events {
		if strings.Contains(ev, chapPasswordPrefix) {
			e.t.Errorf("event shows a CHAP password: %s", ev)
		}
	}
	if l := e.logs(); strings.Contains(l, chapPasswordPrefix) {
		e.t.Errorf("logs show a CHAP password:\n%s", l)
	}
}

// ops returns the Cinder call log as "Op volume [export]" strings.
func (e *env) ops() []string {
	var out []string
	for _, c := range e.cinder.Calls() {
		out = append(out, c.Op)
	}
	return out
}

// calls returns the Cinder calls of op.
func (e *env) calls(op string) []fake.Call {
	var out []fake.Call
	for _, c := range e.cinder.Calls() {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// provision calls Provision for a claim that exists in the API server (it
// is created there first when missing): Provision tells a deleted claim by
// reading it.
func (e *env) provision(opts controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	e.ensureClaim(opts.PVC)
	return e.p.Provision(e.ctx, opts)
}

// ensureClaim creates the claim in the API server unless it is there.
func (e *env) ensureClaim(claim *corev1.PersistentVolumeClaim) {
	e.t.Helper()
	if claim == nil {
		return
	}
	if e.attempted {
		claim = attemptedBefore(claim)
	}
	_, err := e.kube.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(e.ctx, claim, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatalf("create claim: %v", err)
	}
}

// attemptedBefore is the claim as an earlier attempt that sent Cinder
// requests for it left it: protected, and marked as started.
func attemptedBefore(claim *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	c := claim.DeepCopy()
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[contract.AnnProvisioningStarted] = "true"
	if !slices.Contains(c.Finalizers, contract.FinalizerProvisioning) {
		c.Finalizers = append(c.Finalizers, contract.FinalizerProvisioning)
	}
	return c
}

type claimSpec struct {
	size  string // default 1Gi
	block bool
	modes []corev1.PersistentVolumeAccessMode // default RWO
}

func newClaim(s claimSpec) *corev1.PersistentVolumeClaim {
	if s.size == "" {
		s.size = "1Gi"
	}
	if s.modes == nil {
		s.modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	mode := corev1.PersistentVolumeFilesystem
	if s.block {
		mode = corev1.PersistentVolumeBlock
	}
	class := "cinder"
	return &corev1.PersistentVolumeClaim{
		// the PV binder names the class's provisioner on the claim
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "app", UID: types.UID(testClaimUID),
			Annotations: map[string]string{contract.AnnStorageProvisioner: DefaultName}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      s.modes,
			StorageClassName: &class,
			VolumeMode:       &mode,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(s.size)},
			},
		},
	}
}

func newClass(params map[string]string) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "cinder"},
		Provisioner: DefaultName,
		Parameters:  params,
	}
}

func options(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) controller.ProvisionOptions {
	return controller.ProvisionOptions{StorageClass: class, PVName: testPVName, PVC: claim}
}

// bind binds the claim to its PV as kube-controller-manager does, and
// releases it from contract.FinalizerProvisioning as the Guard does.
func (e *env) bind(pv *corev1.PersistentVolume) {
	e.t.Helper()
	c, err := e.kube.CoreV1().PersistentVolumeClaims("app").Get(e.ctx, "data", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	c.Spec.VolumeName = pv.Name
	c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == contract.FinalizerProvisioning })
	if _, err := e.kube.CoreV1().PersistentVolumeClaims("app").Update(e.ctx, c, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}
