package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The ceph-csi side of an RBD PV, as an admin deploys it: ceph-csi's cluster
// config map (config.json: clusterID -> monitors) and the Ceph user's Secret
// (userID/userKey). The kernel here has no rbd or nbd module, so ceph-csi's
// node stage (rbd map) cannot run; instead RBDImageFromPV opens the image the
// way that node would find it, through librbd (python3-rbd) in userspace.

// CephCSIConfigKey is the key of ceph-csi's config map holding its clusters.
const CephCSIConfigKey = "config.json"

// CephCluster is the stack's one-node Ceph cluster (hack/local-ceph.sh).
type CephCluster struct {
	Conf          string   // ceph.conf (the admin's side only: tests never hand it to the helper)
	FSID          string   // also the ceph-csi clusterID the tests use
	Monitors      []string // host:port
	Pool          string   // the pool of Cinder's rbd backend
	User          string   // Cinder's Ceph user, without "client."
	CinderKeyring string
	AdminKeyring  string
}

// Ceph returns the stack's Ceph cluster; the test fails when the stack runs
// without the rbd backend.
func (s *Stack) Ceph(t testing.TB) CephCluster {
	t.Helper()
	c := CephCluster{
		Conf:          s.Env["CEPH_CONF"],
		FSID:          s.Env["CEPH_FSID"],
		Monitors:      strings.Split(s.Env["CEPH_MONITORS"], ","),
		Pool:          s.Env["CEPH_POOL"],
		User:          s.Env["CEPH_USER"],
		CinderKeyring: s.Env["CEPH_CINDER_KEYRING"],
		AdminKeyring:  s.Env["CEPH_ADMIN_KEYRING"],
	}
	if c.Conf == "" || c.FSID == "" || c.Pool == "" || c.User == "" || c.CinderKeyring == "" || c.AdminKeyring == "" {
		t.Fatalf("the stack's env (%s/env) has no Ceph cluster: is the rbd backend in CINDER_BACKENDS?", s.OutDir)
	}
	return c
}

// UserKey reads the cephx key of Cinder's user from its keyring: what an
// admin puts into the ceph-csi Secret.
func (c CephCluster) UserKey(t testing.TB) string {
	t.Helper()
	raw, err := os.ReadFile(c.CinderKeyring)
	if err != nil {
		t.Fatalf("read %s: %v", c.CinderKeyring, err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.TrimSpace(k) == "key" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no key in %s", c.CinderKeyring)
	return ""
}

// Images lists the pool's images with the admin's key (the rbd CLI).
func (c CephCluster) Images(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rbd", "--conf", c.Conf, "--name", "client.admin", "--keyring", c.AdminKeyring,
		"ls", "--format", "json", c.Pool).Output()
	if err != nil {
		return nil, fmt.Errorf("rbd ls %s: %w", c.Pool, exitDetail(err))
	}
	var names []string
	if err := json.Unmarshal(out, &names); err != nil {
		return nil, fmt.Errorf("rbd ls %s: %w: %s", c.Pool, err, out)
	}
	return names, nil
}

// ImagesOf returns the pool's images of the given Cinder volumes:
// volume-<id>, and the volume-<id>.deleted Cinder's driver renames an image
// to while a clone still depends on it.
func (c CephCluster) ImagesOf(ctx context.Context, volumeIDs []string) ([]string, error) {
	names, err := c.Images(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		for _, id := range volumeIDs {
			if id != "" && strings.HasPrefix(n, "volume-"+id) {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// CephCSIConfigMap creates ceph-csi's config map in ns, naming the cluster
// clusterID with the stack's monitors: what the admin deploys for ceph-csi.
func (s *Stack) CephCSIConfigMap(t testing.TB, ns, name, clusterID string) {
	t.Helper()
	type cluster struct {
		ClusterID string   `json:"clusterID"`
		Monitors  []string `json:"monitors"`
	}
	raw, err := json.Marshal([]cluster{{ClusterID: clusterID, Monitors: s.Ceph(t).Monitors}})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string]string{CephCSIConfigKey: string(raw)}}
	if _, err := s.Kube.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ceph-csi config map %s/%s: %v", ns, name, err)
	}
}

// CephSecret creates the admin's ceph-csi Secret (userID, userKey) for
// Cinder's Ceph user in ns.
func (s *Stack) CephSecret(t testing.TB, ns, name string) {
	t.Helper()
	c := s.Ceph(t)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		StringData: map[string]string{"userID": c.User, "userKey": c.UserKey(t)},
	}
	if _, err := s.Kube.CoreV1().Secrets(ns).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Ceph Secret %s/%s: %v", ns, name, err)
	}
}

// RBDImage is an RBD image as a node finds it from a PV: no ceph.conf, no
// keyring file, only what the PV, its Secret and ceph-csi's config say.
type RBDImage struct {
	Monitors []string
	Pool     string
	Image    string
	UserID   string
	UserKey  string
}

// RBDImageFromPV resolves a ceph-csi static PV the way ceph-csi's node
// plugin does: the image is volumeHandle, the pool and clusterID are
// volumeAttributes, the credentials are the Secret nodeStageSecretRef names,
// the monitors are clusterID's in ceph-csi's config map (ns/name).
func RBDImageFromPV(ctx context.Context, kube kubernetes.Interface, pv *corev1.PersistentVolume, configNS, configName string) (RBDImage, error) {
	src := pv.Spec.CSI
	if src == nil {
		return RBDImage{}, fmt.Errorf("PV %s has no CSI source", pv.Name)
	}
	if src.VolumeAttributes["staticVolume"] != "true" {
		return RBDImage{}, fmt.Errorf("PV %s is not a ceph-csi static volume (volumeAttributes %v)", pv.Name, src.VolumeAttributes)
	}
	img := RBDImage{Pool: src.VolumeAttributes["pool"], Image: src.VolumeHandle}
	clusterID := src.VolumeAttributes["clusterID"]
	if img.Pool == "" || img.Image == "" || clusterID == "" {
		return RBDImage{}, fmt.Errorf("PV %s: pool %q, volumeHandle %q, clusterID %q", pv.Name, img.Pool, img.Image, clusterID)
	}
	ref := src.NodeStageSecretRef
	if ref == nil {
		return RBDImage{}, fmt.Errorf("PV %s has no nodeStageSecretRef", pv.Name)
	}
	sec, err := kube.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return RBDImage{}, fmt.Errorf("PV %s: Ceph Secret %s/%s: %w", pv.Name, ref.Namespace, ref.Name, err)
	}
	img.UserID, img.UserKey = string(sec.Data["userID"]), string(sec.Data["userKey"])
	if img.UserID == "" || img.UserKey == "" {
		return RBDImage{}, fmt.Errorf("PV %s: Ceph Secret %s/%s lacks userID or userKey", pv.Name, ref.Namespace, ref.Name)
	}
	cm, err := kube.CoreV1().ConfigMaps(configNS).Get(ctx, configName, metav1.GetOptions{})
	if err != nil {
		return RBDImage{}, fmt.Errorf("ceph-csi config map %s/%s: %w", configNS, configName, err)
	}
	var clusters []struct {
		ClusterID string   `json:"clusterID"`
		Monitors  []string `json:"monitors"`
	}
	if err := json.Unmarshal([]byte(cm.Data[CephCSIConfigKey]), &clusters); err != nil {
		return RBDImage{}, fmt.Errorf("ceph-csi config map %s/%s: %w", configNS, configName, err)
	}
	for _, c := range clusters {
		if c.ClusterID == clusterID {
			img.Monitors = c.Monitors
		}
	}
	if len(img.Monitors) == 0 {
		return RBDImage{}, fmt.Errorf("PV %s: clusterID %q has no monitors in ceph-csi's config map %s/%s", pv.Name, clusterID, configNS, configName)
	}
	return img, nil
}

// rbdIO is the librbd client (python3-rbd): connects with the monitors and
// the key given in its environment only (no ceph.conf, no keyring), opens
// pool/image and does one operation: "size" prints the image's size in
// bytes; "write OFFSET" writes stdin at OFFSET; "read OFFSET LENGTH" prints
// LENGTH bytes from OFFSET.
const rbdIO = `
import os, sys, rados, rbd
conf = {'mon_host': os.environ['RBD_MONITORS'], 'key': os.environ['RBD_KEY'],
        'auth_client_required': 'cephx', 'keyring': '/dev/null', 'log_to_stderr': 'false'}
cluster = rados.Rados(rados_id=os.environ['RBD_USER'], conf=conf, conffile='/dev/null')
cluster.connect(timeout=30)
try:
    with cluster.open_ioctx(sys.argv[1]) as ioctx:
        with rbd.Image(ioctx, sys.argv[2]) as img:
            op = sys.argv[3]
            if op == 'size':
                print(img.size())
            elif op == 'write':
                data = sys.stdin.buffer.read()
                if img.write(data, int(sys.argv[4])) != len(data):
                    sys.exit('short write')
                img.flush()
            elif op == 'read':
                sys.stdout.buffer.write(img.read(int(sys.argv[4]), int(sys.argv[5])))
finally:
    cluster.shutdown()
`

func (img RBDImage) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"-c", rbdIO, img.Pool, img.Image}, args...)...)
	// the key goes in the environment, never on a command line
	cmd.Env = append(os.Environ(), "RBD_MONITORS="+strings.Join(img.Monitors, ","), "RBD_USER="+img.UserID, "RBD_KEY="+img.UserKey)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("librbd %s %s/%s as %s via %v: %w: %s", args[0], img.Pool, img.Image, img.UserID, img.Monitors, err, tail(stderr.String(), 5))
	}
	return out, nil
}

// Size returns the image's size in bytes, read through librbd.
func (img RBDImage) Size(ctx context.Context) (int64, error) {
	out, err := img.run(ctx, nil, "size")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
}

// WriteAt writes data at off through librbd.
func (img RBDImage) WriteAt(ctx context.Context, data []byte, off int64) error {
	_, err := img.run(ctx, data, "write", strconv.FormatInt(off, 10))
	return err
}

// ReadAt reads n bytes at off through librbd.
func (img RBDImage) ReadAt(ctx context.Context, off int64, n int) ([]byte, error) {
	out, err := img.run(ctx, nil, "read", strconv.FormatInt(off, 10), strconv.Itoa(n))
	if err == nil && len(out) != n {
		err = fmt.Errorf("librbd read %s/%s: %d bytes at %d, want %d", img.Pool, img.Image, len(out), off, n)
	}
	return out, err
}

func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, tail(string(ee.Stderr), 5))
	}
	return err
}
