package provisioner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// Fault tests: each interrupts provisioning at a chosen step with the real
// fault (a SIGKILL of the provisioner whose request Cinder applied, a
// cinder-api or tgtd outage) and checks that the next attempt converges:
// every live claim bound to exactly one working volume, and, once the claims
// are deleted, no volume of the test's cluster id left in any status.

const recoverTimeout = 3 * time.Minute

// attachmentsOf lists every attachment Cinder records for the volume, in
// any status (the volume view shows attached ones only).
func (e *env) attachmentsOf(volumeID string) []map[string]any {
	e.t.Helper()
	var out struct {
		Attachments []map[string]any `json:"attachments"`
	}
	url := e.cinder.ServiceURL("attachments", "detail") + "?volume_id=" + volumeID
	if _, err := e.cinder.Get(context.Background(), url, &out, nil); err != nil {
		e.t.Fatalf("list attachments of %s: %v", volumeID, err)
	}
	return out.Attachments
}

func attachStatuses(atts []map[string]any) []string {
	var out []string
	for _, a := range atts {
		s, _ := a["attach_status"].(string)
		if s == "" {
			s, _ = a["status"].(string)
		}
		out = append(out, s)
	}
	return out
}

// onlyVolume returns the one volume named name; it fails the test when
// there is not exactly one.
func (e *env) onlyVolume(name string) string {
	e.t.Helper()
	vols := e.volumesNamed(name)
	if len(vols) != 1 {
		e.t.Fatalf("%d Cinder volumes named %s, want exactly 1", len(vols), name)
	}
	return vols[0].ID
}

// checkBoundAndWorking asserts that the claim's PV is backed by the claim's
// one volume, which has exactly one attachment (attached), and that an iSCSI
// login from the PV's fields reads the LUN.
func (e *env) checkBoundAndWorking(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	e.t.Helper()
	pv := e.waitBoundWithin(pvc, recoverTimeout)
	id := e.onlyVolume(pv.Name)
	if got := pv.Annotations[annVolumeID]; got != id {
		e.t.Errorf("PV %s backed by volume %s, want %s", pv.Name, got, id)
	}
	if st := attachStatuses(e.attachmentsOf(id)); len(st) != 1 || st[0] != "attached" {
		e.t.Errorf("volume %s has attachments %v, want exactly one attached", id, st)
	}
	if size, err := e.loginFromPV(pv); err != nil || size != 1<<30 {
		e.t.Errorf("login from PV %s: size %d, err %v", pv.Name, size, err)
	}
	return pv
}

func (e *env) waitBoundWithin(pvc *corev1.PersistentVolumeClaim, timeout time.Duration) *corev1.PersistentVolume {
	e.t.Helper()
	return framework.WaitBoundPV(e.t, e.s.Kube, e.ns, pvc.Name, timeout)
}

// deleteAllAndExpectNothingLeft deletes every claim of the env and waits
// until the provisioner removed every volume of the cluster id, in any
// status. The framework's force-delete cleanup must find nothing to do.
func (e *env) deleteAllAndExpectNothingLeft() {
	e.t.Helper()
	ctx := context.Background()
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		e.t.Fatalf("delete claims: %v", err)
	}
	framework.Eventually(e.t, recoverTimeout, "volumes of the cluster id left in Cinder after every claim was deleted", func(ctx context.Context) (bool, error) {
		vols, err := framework.ClusterVolumes(ctx, e.cinder, e.clusterID)
		if err != nil {
			return false, err
		}
		if len(vols) > 0 {
			var left []string
			for _, v := range vols {
				left = append(left, v.ID+" "+v.Status)
			}
			e.t.Logf("left: %s", strings.Join(left, ", "))
		}
		return len(vols) == 0, nil
	})
	e.t.Logf("every claim deleted: no volume of cluster id %s left in Cinder", e.clusterID)
}

// isPost matches a POST whose path ends with suffix and whose body holds
// every one of parts.
func isPost(suffix string, parts ...string) func(framework.ProxyRequest) bool {
	return func(r framework.ProxyRequest) bool {
		if r.Method != "POST" || !strings.HasSuffix(r.Path, suffix) {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(r.Body, p) {
				return false
			}
		}
		return true
	}
}

func TestKillBetweenAttachmentCreateAndCompleteBindsOneVolume(t *testing.T) {
	e := newEnv(t)
	proxy := e.s.NewCinderProxy(t)
	var first *framework.Process
	// Cinder makes the attachment (attaching); the provisioner dies before
	// it hears the answer, so it never sends os-complete
	proxy.AfterApplied(isPost("/attachments"), func() { first.Kill(t) })
	first = e.provisioner("provisioner-1", "--cloud-config", e.s.CloudConfVia(t, proxy))
	class := e.storageClass("tgtfile", nil)
	pvc := e.claim("killed-mid-export", class, "1Gi")
	proxy.Fired(t, bindTimeout)

	name := "pvc-" + string(pvc.UID)
	id := e.onlyVolume(name)
	vols := e.volumesNamed(name)
	if st := attachStatuses(e.attachmentsOf(id)); vols[0].Status != "attaching" || len(st) != 1 || st[0] != "attaching" {
		t.Fatalf("after the kill volume %s is %s with attachments %v, want attaching with one attaching attachment", id, vols[0].Status, st)
	}
	if len(vols[0].Attachments) != 0 {
		t.Errorf("the volume view lists %d attachments of an attaching volume, want 0 (it shows attached ones only)", len(vols[0].Attachments))
	}
	start := time.Now()
	e.provisioner("provisioner-2", createApplied)
	e.checkBoundAndWorking(pvc)
	t.Logf("bound %.1fs after the restart, to volume %s", time.Since(start).Seconds(), id)
}

func TestKillAfterLegacyReserveBindsOneVolume(t *testing.T) {
	e := newEnv(t)
	proxy := e.s.NewCinderProxy(t)
	var first *framework.Process
	proxy.AfterApplied(isPost("/action", "os-reserve"), func() { first.Kill(t) })
	first = e.provisioner("provisioner-1", "--cinder-api", "legacy", "--cloud-config", e.s.CloudConfVia(t, proxy))
	class := e.storageClass("tgtfile", nil)
	pvc := e.claim("killed-after-reserve", class, "1Gi")
	proxy.Fired(t, bindTimeout)

	name := "pvc-" + string(pvc.UID)
	id := e.onlyVolume(name)
	if v := e.volumesNamed(name)[0]; v.Status != "attaching" || len(e.attachmentsOf(id)) != 0 {
		t.Fatalf("after the kill volume %s is %s with %d attachments, want attaching with none (os-reserve makes no record)", id, v.Status, len(e.attachmentsOf(id)))
	}
	start := time.Now()
	e.provisioner("provisioner-2", "--cinder-api", "legacy", createApplied)
	e.checkBoundAndWorking(pvc)
	t.Logf("bound %.1fs after the restart", time.Since(start).Seconds())
}

func TestCinderAPIOutageDuringABurst(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil)
	const n, deleted = 6, 2
	var claims []*corev1.PersistentVolumeClaim
	for i := 0; i < n; i++ {
		claims = append(claims, e.claim(fmt.Sprintf("burst-%d", i), class, "1Gi"))
	}
	// the outage starts while the burst is in flight: some volumes exist,
	// some are being exported, some not yet asked for
	framework.Eventually(t, bindTimeout, "no volume made before the outage", func(ctx context.Context) (bool, error) {
		vols, err := framework.ClusterVolumes(ctx, e.cinder, e.clusterID)
		return len(vols) > 0, err
	})
	e.s.StopService(t, "cinder-api")
	outage := time.Now()
	// claims deleted during the outage must leave nothing behind
	for _, pvc := range claims[:deleted] {
		e.deleteClaim(pvc)
	}
	<-time.After(time.Until(outage.Add(30 * time.Second))) // the outage lasts 30 s
	e.s.StartService(t, "cinder-api")
	back := time.Now()
	for _, pvc := range claims[deleted:] {
		e.checkBoundAndWorking(pvc)
	}
	t.Logf("all %d live claims bound %.1fs after cinder-api came back", n-deleted, time.Since(back).Seconds())
	for _, pvc := range claims[:deleted] {
		e.waitNoVolumeNamed("pvc-" + string(pvc.UID))
	}
}

func TestTgtdOutageWhileProvisioning(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil)
	e.s.StopService(t, "tgtd")
	var claims []*corev1.PersistentVolumeClaim
	for i := 0; i < 3; i++ {
		claims = append(claims, e.claim(fmt.Sprintf("no-target-%d", i), class, "1Gi"))
	}
	// exports fail while tgtd is down: the volumes exist, the claims wait
	framework.Eventually(t, bindTimeout, "no volume made while tgtd is down", func(ctx context.Context) (bool, error) {
		vols, err := framework.ClusterVolumes(ctx, e.cinder, e.clusterID)
		return len(vols) == len(claims), err
	})
	for _, pvc := range claims {
		e.waitEvent(pvc, "CinderUnavailable")
	}
	e.s.StartService(t, "tgtd")
	back := time.Now()
	for _, pvc := range claims {
		e.checkBoundAndWorking(pvc)
	}
	t.Logf("all %d claims bound %.1fs after tgtd came back", len(claims), time.Since(back).Seconds())
}
