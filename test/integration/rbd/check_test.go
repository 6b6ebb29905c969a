package rbd

import (
	"context"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// `check --probe --volume-type rbd` creates, exports, maps, unexports and
// deletes a volume on the real RBD backend, and leaves no image behind.
// (The probe maps with a placeholder clusterID: it has no StorageClass.)
func TestCheckProbeOnTheRBDBackend(t *testing.T) {
	s := framework.Get(t)
	ceph := s.Ceph(t)
	before, err := ceph.Images(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.ProvisionerBinary(t), "check", "--cloud-config", s.CloudConf,
		"--probe", "--volume-type", "rbd").CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("check --probe --volume-type rbd: %v", err)
	}
	for _, re := range []string{
		`create 1 GiB volume \(type rbd\) +ok`,
		`map connection info +ok .*transport rbd: CSI driver rbd\.csi\.ceph\.com, volume handle volume-[0-9a-f-]+, attributes clusterID=\S+ imageFeatures=layering pool=` + ceph.Pool + ` staticVolume=true`,
		`wait until deleted +ok`,
		`check: ok`,
	} {
		if !regexp.MustCompile(re).Match(out) {
			t.Errorf("output lacks %q", re)
		}
	}
	framework.Eventually(t, time.Minute, "the probe's image is still in the pool", func(ctx context.Context) (bool, error) {
		after, err := ceph.Images(ctx)
		return len(after) <= len(before), err
	})
}
