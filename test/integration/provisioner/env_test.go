// Package provisioner tests the built cinder-provisioner binary against the
// real local stack: claims on a real kube-apiserver (with the real PV binder)
// become real Cinder volumes, and go away again.
package provisioner

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	initiatorIQN = "iqn.2026-11.org.cinder-provisioner:integration"
	bindTimeout  = 90 * time.Second
)

// env is one test's world: a provisioner name and cluster id of its own (so
// tests never see each other's claims or volumes), a namespace for claims and
// one for the provisioner's Secrets.
type env struct {
	t         *testing.T
	s         *framework.Stack
	name      string
	clusterID string
	ns        string
	secretNS  string
	cinder    *gophercloud.ServiceClient
	// keepVolumes: the test keeps volumes on purpose (Retain); the final
	// check does not require them gone
	keepVolumes bool
	procs       []*framework.Process
	checked     bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := framework.Get(t)
	id := framework.UniqueName("it")
	e := &env{
		t:         t,
		s:         s,
		name:      id + ".cinder.openstack.org/standalone-cinder",
		clusterID: id,
		ns:        s.Namespace(t, "claims"),
		secretNS:  s.Namespace(t, "provisioner"),
		cinder:    s.CinderClient(t),
	}
	e.cinder.Microversion = "3.54"
	// registered after the namespaces, so it runs before they go: every
	// volume the provisioner made for this test is removed, PV or not
	s.CleanupClusterVolumes(t, e.cinder, e.clusterID)
	t.Cleanup(e.deletePVs)
	return e
}

// createApplied is the create window of a provisioner started after its
// predecessor was killed once Cinder had applied the claim's create (its
// answer seen by the test): no create of the dead one can still land, so
// the claim need not be held for the default minute (inflight.go) before
// it is released and the test's cleanup can finish.
const createApplied = "--create-lands=5s"

// provisioner starts the binary for this env; extra args override defaults.
func (e *env) provisioner(name string, extra ...string) *framework.Process {
	e.t.Helper()
	a := framework.ProvisionerArgs{Name: e.name, ClusterID: e.clusterID, SecretNamespace: e.secretNS, Initiator: initiatorIQN, Verbosity: 4}
	p := e.s.StartProvisioner(e.t, name, a, extra...)
	e.procs = append(e.procs, p)
	// runs before the process is stopped (cleanups run last first)
	e.t.Cleanup(e.finalCheck)
	return p
}

// finalCheck ends every test that ran a provisioner: with a provisioner
// running, it deletes every claim of the test and requires that no volume of
// the test's cluster id is left in Cinder, in any status. The framework's
// force-delete of leftovers runs after it and must find nothing.
func (e *env) finalCheck() {
	if e.checked || e.t.Failed() {
		return
	}
	e.checked = true
	if !framework.AnyRunning(e.procs) {
		e.provisioner("provisioner-final-check")
	}
	if e.keepVolumes {
		return
	}
	e.deleteAllAndExpectNothingLeft()
}

func (e *env) storageClass(volumeType string, params map[string]string, mutate ...func(*storagev1.StorageClass)) string {
	e.t.Helper()
	p := map[string]string{}
	if volumeType != "" {
		p["type"] = volumeType
	}
	for k, v := range params {
		p[k] = v
	}
	return framework.CreateStorageClass(e.t, e.s.Kube, framework.StorageClass("it-"+volumeType, e.name, p, mutate...))
}

func (e *env) claim(name, class, size string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	return framework.CreateClaim(e.t, e.s.Kube, framework.Claim(e.ns, name, class, size, mutate...))
}

// waitBound waits until the claim is Bound and returns its PV.
func (e *env) waitBound(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	e.t.Helper()
	return e.waitBoundWithin(pvc, bindTimeout)
}

// waitEvent waits for a Warning event with reason on the claim.
func (e *env) waitEvent(pvc *corev1.PersistentVolumeClaim, reason string) corev1.Event {
	e.t.Helper()
	return framework.WaitEvent(e.t, e.s.Kube, e.ns, pvc.Name, corev1.EventTypeWarning, reason, bindTimeout)
}

// claimEvents returns every event message on the claim.
func (e *env) claimEvents(pvc *corev1.PersistentVolumeClaim) []string {
	e.t.Helper()
	var out []string
	for _, ev := range e.claimEventsTyped(pvc) {
		out = append(out, ev.Reason+": "+ev.Message)
	}
	return out
}

// claimEventsTyped returns every event on the claim.
func (e *env) claimEventsTyped(pvc *corev1.PersistentVolumeClaim) []corev1.Event {
	e.t.Helper()
	evs, err := framework.Events(context.Background(), e.s.Kube, e.ns, pvc.Name)
	if err != nil {
		e.t.Fatalf("list events: %v", err)
	}
	return evs
}

// volumesNamed lists the Cinder volumes carrying name.
func (e *env) volumesNamed(name string) []volumes.Volume {
	e.t.Helper()
	vols, err := framework.ClusterVolumes(context.Background(), e.cinder, e.clusterID)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	var out []volumes.Volume
	for _, v := range vols {
		if v.Name == name {
			out = append(out, v)
		}
	}
	return out
}

// waitNoVolumeNamed waits until no volume of this env carries name.
func (e *env) waitNoVolumeNamed(name string) {
	e.t.Helper()
	framework.Eventually(e.t, bindTimeout, "volume "+name+" still in Cinder", func(ctx context.Context) (bool, error) {
		return len(e.volumesNamed(name)) == 0, nil
	})
}

// volumeGone waits until Cinder answers 404 for the volume id.
func (e *env) volumeGone(id string) {
	e.t.Helper()
	framework.Eventually(e.t, bindTimeout, "volume "+id+" still in Cinder", func(ctx context.Context) (bool, error) {
		_, err := volumes.Get(ctx, e.cinder, id).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusNotFound), nil
	})
}

func (e *env) deleteClaim(pvc *corev1.PersistentVolumeClaim) {
	e.t.Helper()
	framework.DeleteClaim(e.t, e.s.Kube, e.ns, pvc.Name)
}

// deletePVs removes the PVs of this env's provisioner left at the end; the
// volumes go with the metadata cleanup.
func (e *env) deletePVs() {
	framework.DeleteProvisionedPVs(e.t, e.s.Kube, e.name, nil)
}

// chapSecret reads the PV's CHAP Secret.
func (e *env) chapSecret(pv *corev1.PersistentVolume) *corev1.Secret {
	e.t.Helper()
	ref := pv.Spec.ISCSI.SecretRef
	if ref == nil {
		e.t.Fatalf("PV %s has no CHAP secretRef", pv.Name)
	}
	s, err := e.s.Kube.CoreV1().Secrets(ref.Namespace).Get(context.Background(), ref.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get CHAP Secret %s/%s: %v", ref.Namespace, ref.Name, err)
	}
	return s
}

// loginFromPV logs into the PV's LUN from userspace with nothing but the PV's
// spec.iscsi and its CHAP Secret (what the kubelet uses) and returns its size.
func (e *env) loginFromPV(pv *corev1.PersistentVolume) (int64, error) {
	e.t.Helper()
	src := pv.Spec.ISCSI
	if src.InitiatorName == nil {
		e.t.Fatalf("PV %s has no initiatorName", pv.Name)
	}
	sec := e.chapSecret(pv)
	return framework.ReadCapacity(context.Background(), framework.ISCSILogin{
		Initiator: *src.InitiatorName,
		Portal:    src.TargetPortal,
		IQN:       src.IQN,
		LUN:       src.Lun,
		Username:  string(sec.Data["node.session.auth.username"]),
		Password:  string(sec.Data["node.session.auth.password"]),
	})
}

func noPasswordIn(t *testing.T, what string, texts []string, password string) {
	t.Helper()
	if password == "" {
		t.Fatalf("no password to look for")
	}
	for _, s := range texts {
		if strings.Contains(s, password) {
			t.Errorf("%s contains the CHAP password: %q", what, s)
		}
	}
}

func describe(pv *corev1.PersistentVolume) string {
	if pv.Spec.ISCSI != nil {
		return fmt.Sprintf("iscsi %s %s lun %d", pv.Spec.ISCSI.TargetPortal, pv.Spec.ISCSI.IQN, pv.Spec.ISCSI.Lun)
	}
	return "other source"
}
