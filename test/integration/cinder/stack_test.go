package cinder_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/openstack"
	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// testTimeout bounds one test's Cinder work: create -> available takes ~0.1 s
// on tgtfile, exports a second or two.
const testTimeout = 3 * time.Minute

// namePrefix starts every volume these tests create.
const namePrefix = "it-cinder"

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// env is one test's view of the stack: a prefix for its volumes (cleaned up
// at the end) and ways to build clients.
type env struct {
	t      *testing.T
	s      *framework.Stack
	prefix string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := framework.Get(t)
	e := &env{t: t, s: s, prefix: framework.UniqueName(namePrefix)}
	s.CleanupVolumesNamed(t, s.CinderClient(t), e.prefix)
	return e
}

// name returns a volume name under the test's prefix.
func (e *env) name(suffix string) string { return e.prefix + "-" + suffix }

// noauthConfig loads the stack's cloud.conf: the original provisioner's
// format for a standalone noauth Cinder.
func (e *env) noauthConfig() openstack.Config {
	e.t.Helper()
	cfg, err := openstack.LoadCloudConfig(e.s.CloudConf)
	if err != nil {
		e.t.Fatalf("load %s: %v", e.s.CloudConf, err)
	}
	return *cfg
}

// keystoneConfig loads the stack's cloud config for Keystone.
func (e *env) keystoneConfig() openstack.Config {
	e.t.Helper()
	if e.s.Keystone.AuthURL == "" {
		e.t.Fatal("the local stack runs without Keystone (KEYSTONE_AUTH_URL unset): the Keystone tests need it")
	}
	path := e.s.Env["CLOUD_CONFIG_KEYSTONE"]
	if path == "" {
		path = filepath.Join(e.s.OutDir, "cloud-keystone.conf")
	}
	cfg, err := openstack.LoadCloudConfig(path)
	if err != nil {
		e.t.Fatalf("load %s: %v", path, err)
	}
	return *cfg
}

// client builds the real client with its own metrics registry.
func (e *env) client(cfg openstack.Config, method string) (*openstack.Client, *prometheus.Registry) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	c, err := openstack.New(testContext(e.t), openstack.Options{Config: cfg, ExportMethod: method, Registerer: reg})
	if err != nil {
		e.t.Fatalf("new cinder client (%s): %v", cfg, err)
	}
	return c, reg
}

func randomProject(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// requestCount reads cinder_provisioner_cinder_requests_total for one
// operation and outcome.
func requestCount(t *testing.T, reg *prometheus.Registry, op, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cinder_provisioner_cinder_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == op && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// createAvailable creates a 1 GiB volume of the type and waits until it is
// available.
func createAvailable(t *testing.T, c cinder.Client, name, volumeType string, metadata map[string]string) *cinder.Volume {
	t.Helper()
	ctx := testContext(t)
	v, err := c.CreateVolume(ctx, cinder.CreateRequest{Name: name, SizeGiB: 1, VolumeType: volumeType, Metadata: metadata, Description: "cinder integration test"})
	if err != nil {
		t.Fatalf("create volume %s: %v", name, err)
	}
	if v.ID == "" || v.Name != name || v.SizeGiB != 1 {
		t.Fatalf("create volume answered %+v", v)
	}
	got, err := c.WaitForVolumeStatus(ctx, v.ID, cinder.StatusAvailable)
	if err != nil {
		t.Fatalf("wait for %s: %v", v.ID, err)
	}
	if got.Status != cinder.StatusAvailable || got.VolumeType != volumeType || got.SizeGiB != 1 {
		t.Fatalf("volume after wait: status %q type %q size %d, want available %s 1", got.Status, got.VolumeType, got.SizeGiB, volumeType)
	}
	return got
}

// deleteAndConfirm deletes the volume and checks Cinder forgets it.
func deleteAndConfirm(t *testing.T, c cinder.Client, id string) {
	t.Helper()
	ctx := testContext(t)
	if err := c.DeleteVolume(ctx, id); err != nil {
		t.Fatalf("delete volume %s: %v", id, err)
	}
	if err := c.WaitForVolumeDeleted(ctx, id); err != nil {
		t.Fatalf("wait for deletion of %s: %v", id, err)
	}
	if _, err := c.GetVolume(ctx, id); !errors.Is(err, cinder.ErrNotFound) {
		t.Fatalf("get deleted volume %s: %v, want ErrNotFound", id, err)
	}
	if err := c.DeleteVolume(ctx, id); err != nil {
		t.Fatalf("second delete of %s: %v, want success", id, err)
	}
}

func hostConnector(t *testing.T) cinder.Connector {
	host, _ := os.Hostname()
	return cinder.Connector{
		Initiator: "iqn.2026-01.io.cinder-provisioner:" + strings.ToLower(framework.UniqueName("it")),
		IP:        "127.0.0.1",
		Host:      "it-" + host,
		Platform:  "x86_64",
		OSType:    "linux2",
	}
}

// rawClient is the framework's gophercloud client, for checks behind the
// interface's back.
func (e *env) rawClient() *gophercloud.ServiceClient { return e.s.CinderClient(e.t) }
