package provisioner

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const annVolumeID = "cinder.openstack.org/volume-id"

// attachment is the part of Cinder's attachment record the tests compare.
type attachment struct {
	Attachment struct {
		ID             string         `json:"id"`
		VolumeID       string         `json:"volume_id"`
		ConnectionInfo map[string]any `json:"connection_info"`
	} `json:"attachment"`
}

func (e *env) attachment(id string) (*attachment, error) {
	var a attachment
	_, err := e.cinder.Get(context.Background(), e.cinder.ServiceURL("attachments", id), &a, nil)
	return &a, err
}

// tgtTargets lists the IQNs the local tgtd exports.
func tgtTargets(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target").CombinedOutput()
	if err != nil {
		t.Fatalf("tgtadm show: %v: %s", err, out)
	}
	return string(out)
}

func TestISCSIClaimBindsToWorkingPVAndIsDeletedWithEverything(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil)
	start := time.Now()
	pvc := e.claim("data", class, "1Gi")
	pv := e.waitBound(pvc)
	t.Logf("claim bound in %s: %s", time.Since(start).Round(time.Millisecond), describe(pv))

	volID := pv.Annotations[annVolumeID]
	if pv.Name != "pvc-"+string(pvc.UID) {
		t.Errorf("PV name = %s, want pvc-<claim uid>", pv.Name)
	}
	vols := e.volumesNamed(pv.Name)
	if len(vols) != 1 || vols[0].ID != volID {
		t.Fatalf("Cinder volumes named %s: %+v, want exactly %s", pv.Name, vols, volID)
	}
	v := vols[0]
	if v.Status != "in-use" || v.Size != 1 || v.VolumeType != "tgtfile" {
		t.Errorf("volume status/size/type = %s/%d/%s, want in-use/1/tgtfile", v.Status, v.Size, v.VolumeType)
	}
	wantMeta := map[string]string{
		"cinder.openstack.org/cluster-id":    e.clusterID,
		"cinder.openstack.org/pvc-namespace": e.ns,
		"cinder.openstack.org/pvc-name":      "data",
		"cinder.openstack.org/pv-name":       pv.Name,
		"cinder.openstack.org/provisioner":   e.name,
	}
	for k, want := range wantMeta {
		if v.Metadata[k] != want {
			t.Errorf("volume metadata %s = %q, want %q", k, v.Metadata[k], want)
		}
	}
	if got := pv.Spec.Capacity.Storage().Value(); got != 1<<30 {
		t.Errorf("PV capacity = %d, want 1Gi", got)
	}

	// the PV's iSCSI fields are Cinder's export, the initiator is ours
	exportID := pv.Annotations["cinder.openstack.org/export-id"]
	att, err := e.attachment(exportID)
	if err != nil {
		t.Fatalf("get attachment %s: %v", exportID, err)
	}
	ci := att.Attachment.ConnectionInfo
	src := pv.Spec.ISCSI
	if src == nil {
		t.Fatalf("PV source is not iSCSI: %+v", pv.Spec.PersistentVolumeSource)
	}
	if src.TargetPortal != ci["target_portal"] || src.IQN != ci["target_iqn"] || fmt.Sprint(src.Lun) != fmt.Sprint(ci["target_lun"]) {
		t.Errorf("PV iSCSI %s %s %d, Cinder export %v %v %v", src.TargetPortal, src.IQN, src.Lun, ci["target_portal"], ci["target_iqn"], ci["target_lun"])
	}
	if src.InitiatorName == nil || *src.InitiatorName != initiatorIQN {
		t.Errorf("PV initiatorName = %v, want %s", src.InitiatorName, initiatorIQN)
	}
	if !src.SessionCHAPAuth || src.SecretRef == nil || src.SecretRef.Namespace != e.secretNS {
		t.Errorf("CHAP: session=%t secretRef=%+v, want a Secret in %s", src.SessionCHAPAuth, src.SecretRef, e.secretNS)
	}
	sec := e.chapSecret(pv)
	if sec.Type != "kubernetes.io/iscsi-chap" || string(sec.Data["node.session.auth.username"]) != ci["auth_username"] {
		t.Errorf("CHAP Secret type %s / user mismatch with Cinder's export", sec.Type)
	}
	size, err := e.loginFromPV(pv)
	if err != nil {
		t.Fatalf("userspace iSCSI login from the PV: %v", err)
	}
	if size != pv.Spec.Capacity.Storage().Value() {
		t.Errorf("LUN size %d, PV capacity %d", size, pv.Spec.Capacity.Storage().Value())
	}
	if !strings.Contains(tgtTargets(t), src.IQN) {
		t.Fatalf("tgtd does not export %s", src.IQN)
	}
	noPasswordIn(t, "claim event", e.claimEvents(pvc), string(sec.Data["node.session.auth.password"]))

	// delete: PV, attachment, target, volume, Secret all go
	e.deleteClaim(pvc)
	framework.Eventually(t, bindTimeout, "PV never deleted", func(ctx context.Context) (bool, error) {
		_, err := e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	e.volumeGone(volID)
	if _, err := e.attachment(exportID); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("attachment %s after delete: err=%v, want 404", exportID, err)
	}
	if strings.Contains(tgtTargets(t), src.IQN) {
		t.Errorf("tgtd still exports %s after delete", src.IQN)
	}
	if _, err := e.s.Kube.CoreV1().Secrets(e.secretNS).Get(context.Background(), src.SecretRef.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("CHAP Secret after delete: err=%v, want NotFound", err)
	}
}

func TestBlockModeClaimGetsRawISCSIVolume(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", map[string]string{"fsType": "xfs"})
	block := corev1.PersistentVolumeBlock
	pvc := e.claim("raw", class, "1500Mi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	pv := e.waitBound(pvc)
	if pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeBlock {
		t.Errorf("PV volumeMode = %v, want Block", pv.Spec.VolumeMode)
	}
	if pv.Spec.ISCSI == nil || pv.Spec.ISCSI.FSType != "" {
		t.Errorf("block PV must be iSCSI without fsType, got %+v", pv.Spec.ISCSI)
	}
	// 1500Mi rounds up to 2 GiB, and the PV says what Cinder really gave
	if got := pv.Spec.Capacity.Storage().Value(); got != 2<<30 {
		t.Errorf("capacity = %d, want 2Gi", got)
	}
	size, err := e.loginFromPV(pv)
	if err != nil || size != 2<<30 {
		t.Errorf("login: size %d err %v, want 2Gi", size, err)
	}
}

func TestManyClaimsAtOnce(t *testing.T) {
	const n = 20
	e := newEnv(t)
	e.provisioner("provisioner", "--workers", "8")
	class := e.storageClass("tgtfile", nil)
	start := time.Now()
	claims := make([]*corev1.PersistentVolumeClaim, n)
	for i := range claims {
		claims[i] = e.claim(fmt.Sprintf("c%02d", i), class, "1Gi")
	}
	ids := map[string]bool{}
	for _, c := range claims {
		pv := e.waitBound(c)
		ids[pv.Annotations[annVolumeID]] = true
	}
	t.Logf("%d claims bound in %s", n, time.Since(start).Round(time.Millisecond))
	if len(ids) != n {
		t.Errorf("%d distinct volumes for %d claims", len(ids), n)
	}
	vols, err := framework.VolumesWithMetadata(context.Background(), e.cinder, "cinder.openstack.org/cluster-id", e.clusterID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != n {
		t.Errorf("%d Cinder volumes for %d claims", len(vols), n)
	}
}

func TestLegacyExportPath(t *testing.T) {
	e := newEnv(t)
	p := e.provisioner("provisioner", "--cinder-api", "legacy")
	class := e.storageClass("tgtfile", nil)
	pvc := e.claim("legacy", class, "1Gi")
	pv := e.waitBound(pvc)
	if got := pv.Annotations["cinder.openstack.org/export-method"]; got != "legacy" {
		t.Errorf("export method = %q, want legacy", got)
	}
	if size, err := e.loginFromPV(pv); err != nil || size != 1<<30 {
		t.Errorf("login: size %d err %v", size, err)
	}
	e.deleteClaim(pvc)
	e.volumeGone(pv.Annotations[annVolumeID])
	if p.Exited() {
		t.Errorf("provisioner exited")
	}
}

func TestKeystoneAuthenticatedProvisioner(t *testing.T) {
	e := newEnv(t)
	conf := e.s.Env["CLOUD_CONFIG_KEYSTONE"]
	if conf == "" {
		t.Fatal("the local stack runs without Keystone (CLOUD_CONFIG_KEYSTONE unset)")
	}
	e.provisioner("provisioner", "--cloud-config", conf)
	// the volumes live in Keystone's admin project: watch that one
	e.cinder = e.s.CinderClientFor(t, e.s.Keystone.ProjectID)
	e.cinder.Microversion = "3.54"
	e.s.CleanupVolumesWithMetadata(t, e.cinder, "cinder.openstack.org/cluster-id", e.clusterID)
	class := e.storageClass("tgtfile", nil)
	pvc := e.claim("ks", class, "1Gi")
	pv := e.waitBound(pvc)
	if len(e.volumesNamed(pv.Name)) != 1 {
		t.Fatalf("no volume %s in the Keystone project", pv.Name)
	}
	e.deleteClaim(pvc)
	e.volumeGone(pv.Annotations[annVolumeID])
}

func TestRetainClassKeepsVolume(t *testing.T) {
	e := newEnv(t)
	e.keepVolumes = true
	e.provisioner("provisioner")
	retain := corev1.PersistentVolumeReclaimRetain
	kept := e.storageClass("tgtfile", nil, func(sc *storagev1.StorageClass) { sc.ReclaimPolicy = &retain })
	deleted := e.storageClass("tgtfile", nil)
	pvc := e.claim("keep", kept, "1Gi")
	pv := e.waitBound(pvc)
	e.deleteClaim(pvc)
	framework.Eventually(t, bindTimeout, "PV never Released", func(ctx context.Context) (bool, error) {
		got, err := e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.VolumeReleased, err
	})
	// a barrier: a Delete-class claim released after the Retain one is fully
	// deleted, so the provisioner has processed the released Retain PV too
	other := e.claim("barrier", deleted, "1Gi")
	otherPV := e.waitBound(other)
	e.deleteClaim(other)
	e.volumeGone(otherPV.Annotations[annVolumeID])

	vols := e.volumesNamed(pv.Name)
	if len(vols) != 1 || vols[0].ID != pv.Annotations[annVolumeID] {
		t.Fatalf("Retain: volumes named %s: %+v, want %s kept", pv.Name, vols, pv.Annotations[annVolumeID])
	}
	if _, err := e.s.Kube.CoreV1().PersistentVolumes().Get(context.Background(), pv.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("Retain PV is gone: %v", err)
	}
}

func TestBadClaimsGetEventsAndNoVolume(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	cases := []struct {
		name, reason, want string
		class              func() string
		mutate             func(*corev1.PersistentVolumeClaim)
	}{
		{name: "unknown-param", reason: "InvalidStorageClassParameter", want: `"bogusKey"`,
			class: func() string { return e.storageClass("tgtfile", map[string]string{"bogusKey": "x"}) }},
		{name: "rwx-fs", reason: "UnsupportedClaim", want: "ReadWriteMany",
			class: func() string { return e.storageClass("tgtfile", nil) },
			mutate: func(c *corev1.PersistentVolumeClaim) {
				c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mut []func(*corev1.PersistentVolumeClaim)
			if tc.mutate != nil {
				mut = append(mut, tc.mutate)
			}
			pvc := e.claim(tc.name, tc.class(), "1Gi", mut...)
			ev := e.waitEvent(pvc, tc.reason)
			if !strings.Contains(ev.Message, tc.want) {
				t.Errorf("event message %q does not name %s", ev.Message, tc.want)
			}
			if n := len(e.volumesNamed("pvc-" + string(pvc.UID))); n != 0 {
				t.Errorf("%d Cinder volumes created for a bad claim", n)
			}
		})
	}
}

func TestUnusableBackendsAreRefusedAndCleanedUp(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	cases := []struct{ volumeType, reason, want string }{
		{"nfs", "UnsupportedTransport", `unsupported transport "nfs"`},
		{"fake", "InvalidConnectionInfo", "target_portal"},
	}
	for _, tc := range cases {
		t.Run(tc.volumeType, func(t *testing.T) {
			pvc := e.claim(tc.volumeType, e.storageClass(tc.volumeType, nil), "1Gi")
			ev := e.waitEvent(pvc, tc.reason)
			if !strings.Contains(ev.Message, tc.want) {
				t.Errorf("event %q does not say %q", ev.Message, tc.want)
			}
			// the volume was created, exported, refused, and deleted again
			e.waitNoVolumeNamed("pvc-" + string(pvc.UID))
			e.deleteClaim(pvc)
		})
	}
}

func TestCrashAfterCreateReusesTheVolume(t *testing.T) {
	e := newEnv(t)
	class := e.storageClass("tgtfile", nil)
	for attempt := 1; attempt <= 3; attempt++ {
		p := e.provisioner(fmt.Sprintf("provisioner-%d", attempt))
		pvc := e.claim(fmt.Sprintf("crash-%d", attempt), class, "1Gi")
		name := "pvc-" + string(pvc.UID)
		// kill -9 as soon as the volume exists in Cinder
		var first string
		framework.Eventually(t, bindTimeout, "volume never created", func(ctx context.Context) (bool, error) {
			if vols := e.volumesNamed(name); len(vols) > 0 {
				first = vols[0].ID
				return true, nil
			}
			return false, nil
		})
		p.Kill(t)
		if _, err := e.s.Kube.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{}); err == nil {
			t.Logf("attempt %d: the PV already existed when the provisioner died; trying again", attempt)
			continue
		}
		e.provisioner(fmt.Sprintf("provisioner-%d-restarted", attempt), createApplied)
		pv := e.waitBound(pvc)
		if got := pv.Annotations[annVolumeID]; got != first {
			t.Errorf("PV backed by volume %s, want the one created before the crash, %s", got, first)
		}
		if vols := e.volumesNamed(name); len(vols) != 1 {
			t.Errorf("%d Cinder volumes named %s, want exactly 1", len(vols), name)
		}
		if size, err := e.loginFromPV(pv); err != nil || size != 1<<30 {
			t.Errorf("login after crash recovery: size %d err %v", size, err)
		}
		return
	}
	t.Fatal("in 3 attempts the provisioner never died between volume create and PV create")
}

func TestLeaderElectionFailover(t *testing.T) {
	e := newEnv(t)
	leArgs := []string{"--leader-elect=true", "--leader-elect-namespace", e.secretNS,
		"--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms"}
	procs := map[string]*framework.Process{}
	for _, n := range []string{"a", "b"} {
		procs[n] = e.provisioner("provisioner-"+n, leArgs...)
	}
	class := e.storageClass("tgtfile", nil)
	pv1 := e.waitBound(e.claim("first", class, "1Gi"))

	// which one leads: the Lease holder identity starts with the hostname,
	// so tell them apart by the logs instead
	leader := ""
	framework.Eventually(t, 30*time.Second, "no provisioner logged that it provisioned", func(ctx context.Context) (bool, error) {
		for n, p := range procs {
			if p.LogContains(pv1.Name) {
				leader = n
				return true, nil
			}
		}
		return false, nil
	})
	procs[leader].Kill(t)
	other := map[string]string{"a": "b", "b": "a"}[leader]
	pv2 := e.waitBound(e.claim("second", class, "1Gi"))
	if !procs[other].LogContains(pv2.Name) {
		t.Errorf("provisioner %s did not provision after %s died", other, leader)
	}
	if procs[leader].LogContains(pv2.Name) {
		t.Errorf("the killed provisioner %s provisioned %s", leader, pv2.Name)
	}
}
