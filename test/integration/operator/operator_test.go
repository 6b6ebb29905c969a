// Package operator tests the built binary's operator subcommands, check and
// orphans, against the real local stack.
package operator

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	metaClusterID = "cinder.openstack.org/cluster-id"
	metaPVName    = "cinder.openstack.org/pv-name"
	metaPVCNS     = "cinder.openstack.org/pvc-namespace"
	metaPVCName   = "cinder.openstack.org/pvc-name"
	metaReclaim   = "cinder.openstack.org/reclaim-policy"
	annVolumeID   = "cinder.openstack.org/volume-id"
	annIdentity   = "cinder.openstack.org/provisioner-identity"

	commandTimeout = 3 * time.Minute
)

// runBinary runs the provisioner binary with args and returns its stdout,
// stderr and error.
func runBinary(t *testing.T, s *framework.Stack, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.ProvisionerBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader("") // a prompt reads no
	err := cmd.Run()
	t.Logf("cinder-provisioner %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String(), stderr.String(), err
}

func volumeExists(t *testing.T, sc *gophercloud.ServiceClient, id string) bool {
	t.Helper()
	_, err := volumes.Get(context.Background(), sc, id).Extract()
	if gophercloud.ResponseCodeIs(err, 404) {
		return false
	}
	if err != nil {
		t.Fatalf("get volume %s: %v", id, err)
	}
	return true
}

func TestCheckProbe(t *testing.T) {
	s := framework.Get(t)
	sc := s.CinderClient(t)
	clusterID := framework.UniqueName("it-check")
	s.CleanupVolumesWithMetadata(t, sc, metaClusterID, clusterID)

	stdout, _, err := runBinary(t, s, "check", "--cloud-config", s.CloudConf, "--probe", "--volume-type", "tgtfile", "--cluster-id", clusterID)
	if err != nil {
		t.Fatalf("check --probe: %v", err)
	}
	for _, re := range []string{
		`Auth mode: +noauth`,
		`Microversions: +min 3\.0, max 3\.\d+, using 3\.\d+`,
		`Volume types: .*tgtfile`,
		`create 1 GiB volume \(type tgtfile\) +ok`,
		`wait until available +ok`,
		`export +ok .*to initiator iqn\.2026-11\.org\.openstack\.cinder-provisioner:` + regexp.QuoteMeta(clusterID),
		`map connection info +ok .*transport iscsi: portal [0-9.]+:\d+, IQN iqn\.\S+, LUN \d+, CHAP: yes`,
		`unexport +ok`,
		`delete +ok`,
		`wait until deleted +ok`,
		`check: ok`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("output does not match %q", re)
		}
	}
	if strings.Contains(stdout, "auth_password") || strings.Contains(stdout, "FAILED") {
		t.Errorf("output shows a credential key or a failure")
	}
	name := regexp.MustCompile(`cinder-provisioner-check-[a-z0-9]+`).FindString(stdout)
	if name == "" {
		t.Fatal("output names no probe volume")
	}

	ctx := context.Background()
	left, err := framework.VolumesWithMetadata(ctx, sc, metaClusterID, clusterID)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := volumes.List(sc, volumes.ListOpts{AllTenants: false}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := volumes.ExtractVolumes(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range all {
		if v.Name == name {
			left = append(left, v)
		}
	}
	if len(left) != 0 {
		t.Errorf("probe volume left behind: %+v", left)
	}
}

func TestOrphans(t *testing.T) {
	s := framework.Get(t)
	sc := s.CinderClient(t)
	ctx := context.Background()
	clusterID := framework.UniqueName("it-orphans")
	foreignID := clusterID + "-foreign"
	provisionerName := clusterID + ".cinder.openstack.org/standalone-cinder"
	s.CleanupVolumesWithMetadata(t, sc, metaClusterID, clusterID)
	s.CleanupVolumesWithMetadata(t, sc, metaClusterID, foreignID)

	// create makes a volume as the provisioner would for a class with the
	// given reclaim policy ("": one made before the policy was recorded).
	create := func(cluster, pvName, policy string) string {
		t.Helper()
		meta := map[string]string{metaClusterID: cluster, metaPVName: pvName, metaPVCNS: "apps", metaPVCName: "data"}
		if policy != "" {
			meta[metaReclaim] = policy
		}
		v, err := volumes.Create(ctx, sc, volumes.CreateOpts{
			Name: pvName, Size: 1, VolumeType: "tgtfile", Metadata: meta,
		}, nil).Extract()
		if err != nil {
			t.Fatalf("create volume: %v", err)
		}
		framework.Eventually(t, time.Minute, "volume "+v.ID+" never available", func(ctx context.Context) (bool, error) {
			got, err := volumes.Get(ctx, sc, v.ID).Extract()
			if err != nil {
				return false, err
			}
			if got.Status == "error" {
				return false, errors.New("volume went to error")
			}
			return got.Status == "available", nil
		})
		return v.ID
	}
	orphanPV := "pvc-" + string(uuid.NewUUID())
	orphanID := create(clusterID, orphanPV, "Delete")
	keptID := create(clusterID, "pvc-"+string(uuid.NewUUID()), "Retain")
	unknownID := create(clusterID, "pvc-"+string(uuid.NewUUID()), "")
	foreignVolID := create(foreignID, "pvc-"+string(uuid.NewUUID()), "Delete")

	// A PV of this provisioner pointing to a volume Cinder never had.
	goneVolID := string(uuid.NewUUID())
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        framework.UniqueName("pvc-gone"),
			Annotations: map[string]string{annVolumeID: goneVolID, annIdentity: provisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
				TargetPortal: "127.0.0.1:3260", IQN: "iqn.2010-10.org.openstack:volume-" + goneVolID, Lun: 1,
			}},
		},
	}
	if _, err := s.Kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PV: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})

	// --min-age=0: the test's volumes are seconds old and no provisioner works on them
	base := []string{"orphans", "--cloud-config", s.CloudConf, "--kubeconfig", s.Kubeconfig, "--cluster-id", clusterID, "--provisioner-name", provisionerName, "--min-age=0"}
	stdout, _, err := runBinary(t, s, base...)
	if err != nil {
		t.Fatalf("orphans: %v", err)
	}
	for _, want := range []string{
		"Cinder volumes of cluster " + clusterID + " without a PV (reclaim policy Delete): 1",
		orphanID, orphanPV, "available", "1Gi", "apps/data",
		"Cinder volumes of cluster " + clusterID + " without a PV, kept on purpose (reclaim policy Retain): 1",
		keptID,
		"Cinder volumes of cluster " + clusterID + " without a PV, reclaim policy unknown: 1",
		unknownID,
		"PVs of provisioner " + provisionerName + " whose Cinder volume is gone: 1",
		pv.Name, goneVolID,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("orphans output lacks %q", want)
		}
	}
	if strings.Contains(stdout, foreignVolID) {
		t.Errorf("orphans lists the other cluster's volume %s", foreignVolID)
	}

	// --delete without --yes and an empty answer deletes nothing.
	stdout, _, err = runBinary(t, s, append(base, "--delete")...)
	if err != nil {
		t.Fatalf("orphans --delete: %v", err)
	}
	if !strings.Contains(stdout, "delete 1 volumes? [y/N]") || !strings.Contains(stdout, "Not deleting.") || !volumeExists(t, sc, orphanID) {
		t.Errorf("orphans --delete without an answer deleted or did not ask")
	}

	stdout, _, err = runBinary(t, s, append(base, "--delete", "--yes")...)
	if err != nil {
		t.Fatalf("orphans --delete --yes: %v", err)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(orphanID) + ` \(` + orphanPV + `\): deleted in`).MatchString(stdout) {
		t.Errorf("orphans --delete --yes does not report the deletion")
	}
	if volumeExists(t, sc, orphanID) {
		t.Errorf("orphan volume %s still exists", orphanID)
	}
	if !volumeExists(t, sc, foreignVolID) {
		t.Errorf("the other cluster's volume %s was deleted", foreignVolID)
	}
	if !volumeExists(t, sc, keptID) || !volumeExists(t, sc, unknownID) {
		t.Errorf("orphans --delete --yes deleted the Retain volume %s or the one of unknown policy %s", keptID, unknownID)
	}

	// --include-unknown-policy: the unknown one goes too, never the Retain one.
	stdout, _, err = runBinary(t, s, append(base, "--delete", "--yes", "--include-unknown-policy")...)
	if err != nil {
		t.Fatalf("orphans --delete --yes --include-unknown-policy: %v", err)
	}
	if !strings.Contains(stdout, unknownID) || volumeExists(t, sc, unknownID) {
		t.Errorf("orphans --include-unknown-policy did not delete the volume of unknown policy %s", unknownID)
	}
	if !volumeExists(t, sc, keptID) {
		t.Errorf("the Retain volume %s was deleted", keptID)
	}
	if _, err := s.Kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("PV %s: %v (orphans must never delete PVs)", pv.Name, err)
	}
}
