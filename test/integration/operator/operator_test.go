// Package operator tests the built binary's operator subcommands, check and
// orphans, against the real local stack.
package operator

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

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
