package reliability

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// R7, data safety: the admin workflows Kubernetes documents keep every
// byte, with the sweep running every 2 s and a grace of 3 s, so that any
// volume not protected by proof would go within seconds.

const provisioningFinalizer = "cinder.openstack.org/provisioning-protection"

var fastSweeps = []string{"--sweep-interval=2s", "--sweep-grace=3s"}

// TestR7KeepTheDisk: claims of a Delete class, bound; the admin patches
// each PV to Retain, deletes the claim, then the PV object; half the disks
// are re-created as static PVs under new names and bound to new claims.
// Every volume must survive every sweep, and the re-created ones must read.
func TestR7KeepTheDisk(t *testing.T) {
	e := newEnv(t)
	p := e.provisioner("provisioner", fastSweeps...)
	class := e.storageClass(nil)
	n := pick(8, 4)
	start := time.Now()
	ctx := context.Background()
	var pvs []*corev1.PersistentVolume
	for i := 0; i < n; i++ {
		pvc, err := e.claim(fmt.Sprintf("r7-keep-%d", i), class, "1Gi")
		if err != nil {
			t.Fatal(err)
		}
		e.waitBound(pvc, 2*time.Minute)
		c, _ := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		pv, err := e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pvs = append(pvs, pv)
	}
	for _, pv := range pvs {
		if _, err := e.s.Kube.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType,
			[]byte(`{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, pv := range pvs {
		framework.Eventually(t, 2*time.Minute, "PV "+pv.Name+" never Released", func(ctx context.Context) (bool, error) {
			got, err := e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
			return err == nil && got.Status.Phase == corev1.VolumeReleased, nil
		})
		if err := e.s.Kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// half come back as static PVs of another name, with new claims
	empty := ""
	var reused []*corev1.PersistentVolumeClaim
	for i, pv := range pvs[:n/2] {
		static := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: framework.UniqueName("r7-kept")},
			Spec: corev1.PersistentVolumeSpec{Capacity: pv.Spec.Capacity, AccessModes: pv.Spec.AccessModes, VolumeMode: pv.Spec.VolumeMode,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain, PersistentVolumeSource: pv.Spec.PersistentVolumeSource},
		}
		if _, err := e.s.Kube.CoreV1().PersistentVolumes().Create(ctx, static, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.s.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), static.Name, metav1.DeleteOptions{})
		})
		pvc, err := e.claim(fmt.Sprintf("r7-reuse-%d", i), "", "1Gi", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.StorageClassName = &empty
			c.Spec.VolumeName = static.Name
		})
		if err != nil {
			t.Fatal(err)
		}
		reused = append(reused, pvc)
	}
	// watch several sweeps: every volume stays
	sweeps0 := strings.Count(p.Log(), "Swept for unreferenced volumes")
	wrong := map[string]bool{}
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) { // a bounded watch
		left, err := e.volumes(ctx)
		if err != nil {
			continue
		}
		for _, pv := range pvs {
			if len(left[pv.Name]) != 1 {
				wrong[pv.Name] = true
			}
		}
	}
	sweeps := strings.Count(p.Log(), "Swept for unreferenced volumes") - sweeps0
	if sweeps < 3 {
		t.Errorf("only %d sweeps ran while watching: the check proves nothing", sweeps)
	}
	var o outcome
	for _, pvc := range reused {
		e.waitBound(pvc, 2*time.Minute)
		c, _ := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		pv, err := e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o.bound++
		e.checkPV(pv, &o)
	}
	for name := range wrong {
		t.Errorf("volume of kept disk %s deleted or doubled", name)
	}
	e.scrapeMetrics()
	results.add(row{
		scenario: "R7 keep the disk",
		load:     fmt.Sprintf("%d bound claims of a Delete class; PVs patched to Retain, claims and PV objects deleted; %d re-created as static PVs of new names and bound to new claims", n, len(reused)),
		faults:   fmt.Sprintf("sweep every 2 s, grace 3 s; %d sweeps watched", sweeps),
		bound:    o.bound, claims: len(reused), leaked: 0, wronglyDeleted: len(wrong),
		events:  fmt.Sprintf("%d/%d volumes kept; %d iSCSI logins from the re-created PVs", n-len(wrong), n, o.logins),
		recover: "-", duration: time.Since(start), passed: !t.Failed(),
	})
}

// TestR7DeletedWhileDown: claims of a Retain class whose exports fail
// (tgtd down); the provisioner is killed -9 between the creates and the PV
// saves; the claims are deleted while no provisioner runs, and `orphans
// --delete --yes` runs meanwhile. Nothing may be deleted while the claims
// are held; once a provisioner runs again, every volume goes and every claim
// with it: no PV ever held them.
func TestR7DeletedWhileDown(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	retain := corev1.PersistentVolumeReclaimRetain
	class := e.storageClass(nil, func(sc *storagev1.StorageClass) { sc.ReclaimPolicy = &retain })
	first := e.provisioner("provisioner-1", fastSweeps...)
	e.s.StopService(t, "tgtd")
	n := pick(6, 3)
	ctx := context.Background()
	var claims []*corev1.PersistentVolumeClaim
	for i := 0; i < n; i++ {
		pvc, err := e.claim(fmt.Sprintf("r7-down-%d", i), class, "1Gi")
		if err != nil {
			t.Fatal(err)
		}
		claims = append(claims, pvc)
	}
	framework.Eventually(t, 2*time.Minute, "volumes not made while tgtd is down", func(ctx context.Context) (bool, error) {
		left, err := e.volumes(ctx)
		return err == nil && len(left) == n, nil
	})
	first.Kill(t)
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, pvc := range claims {
		c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err == nil && c.DeletionTimestamp != nil && slices.Contains(c.Finalizers, provisioningFinalizer) {
			held++
		}
	}
	if held != n {
		t.Errorf("%d of %d claims deleted while no provisioner runs are held Terminating", held, n)
	}
	// older than --min-age by Cinder's clock: age alone protects nothing
	if left, err := e.volumes(ctx); err == nil {
		for _, vols := range left {
			framework.WaitOlderThan(t, e.cinder, strings.Fields(vols[0])[0], 2*time.Second)
		}
	}
	octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(octx, e.s.ProvisionerBinary(t), "orphans",
		"--kubeconfig", e.s.Kubeconfig, "--cloud-config", e.s.CloudConf, "--cluster-id", e.clusterID,
		"--provisioner-name", e.name, "--secret-namespace", baseNamespace, "--delete", "--yes", "--min-age", "1s").CombinedOutput()
	shared.saw(string(out))
	if err != nil {
		t.Logf("orphans: %v\n%s", err, out)
	}
	wrong := 0
	if left, err := e.volumes(ctx); err != nil || len(left) != n {
		wrong = n - len(left)
		t.Errorf("orphans --delete removed volumes of claims still held by the provisioner: %d of %d left (%v)", len(left), n, err)
	}
	e.s.StartService(t, "tgtd")
	back := time.Now()
	e.provisioner("provisioner-2", fastSweeps...)
	framework.Eventually(t, 4*time.Minute, "claims deleted while down never went", func(ctx context.Context) (bool, error) {
		l, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, nil
	})
	recovered := time.Since(back)
	var leaked int
	framework.Eventually(t, 2*time.Minute, "volumes of claims deleted while down left", func(ctx context.Context) (bool, error) {
		left, err := e.volumes(ctx)
		leaked = len(left)
		return err == nil && len(left) == 0, nil
	})
	for _, pvc := range claims {
		if _, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("claim %s still there: %v", pvc.Name, err)
		}
	}
	e.scrapeMetrics()
	results.add(row{
		scenario: "R7 deleted while down",
		load:     fmt.Sprintf("%d claims of a Retain class, exports failing (tgtd down)", n),
		faults:   "kill -9 between create and PV save; claims deleted while no provisioner runs; orphans --delete --yes meanwhile",
		bound:    0, claims: 0, leaked: leaked, wronglyDeleted: wrong,
		events:   fmt.Sprintf("%d/%d claims held Terminating while down; orphans deleted none of them", held, n),
		recover:  fmt.Sprintf("claims and volumes gone %.0fs after a provisioner ran again", recovered.Seconds()),
		duration: time.Since(start), passed: !t.Failed(),
	})
}
