// Package rbd tests the built cinder-provisioner binary with Cinder's real
// RBD driver on the stack's one-node Ceph cluster (hack/local-ceph.sh): each
// claim becomes an RBD image in the pool, its PV a ceph-csi static volume,
// and every PV is proven from its own fields: the image is opened through
// librbd with only the PV's volumeHandle and pool, the admin's Ceph Secret
// the PV names and the monitors ceph-csi's config map gives for its
// clusterID. (No rbd/nbd kernel module here: ceph-csi's node stage cannot
// run, and is not faked.) Every test ends with no volume of its cluster id
// in Cinder and none of its images in the pool.
package rbd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
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
	bindTimeout    = 90 * time.Second
	recoverTimeout = 4 * time.Minute
	annVolumeID    = "cinder.openstack.org/volume-id"
	// ceph-csi's config map, as its Helm chart names it
	cephCSIConfig = "ceph-csi-config"
	cephSecret    = "csi-rbd-secret"
)

// env is one test's world: its own provisioner name and cluster id, a
// namespace for claims, one for the provisioner's Secrets and one for the
// ceph-csi side (config map, the admin's Ceph Secret).
type env struct {
	t         *testing.T
	s         *framework.Stack
	ceph      framework.CephCluster
	name      string
	clusterID string
	ns        string
	secretNS  string
	cephNS    string
	cinder    *gophercloud.ServiceClient
	procs     []*framework.Process
	checked   bool
	keep      bool // Retain: the test removes its volumes itself

	mu        sync.Mutex
	volumeIDs []string // every volume of the test seen, for the pool's count
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := framework.Get(t)
	id := framework.UniqueName("rbd")
	e := &env{
		t:         t,
		s:         s,
		ceph:      s.Ceph(t),
		name:      id + ".cinder.openstack.org/standalone-cinder",
		clusterID: id,
		ns:        s.Namespace(t, "claims"),
		secretNS:  s.Namespace(t, "provisioner"),
		cephNS:    s.Namespace(t, "ceph-csi"),
		cinder:    s.CinderClient(t),
	}
	e.cinder.Microversion = "3.54"
	s.CephCSIConfigMap(t, e.cephNS, cephCSIConfig, e.ceph.FSID)
	s.CephSecret(t, e.cephNS, cephSecret)
	// runs after the Cinder cleanup below (cleanups run last first): the
	// pool holds none of the test's images, whatever happened
	t.Cleanup(e.noImagesLeft)
	s.CleanupClusterVolumes(t, e.cinder, e.clusterID)
	t.Cleanup(e.deletePVs)
	return e
}

func (e *env) provisioner(name string, extra ...string) *framework.Process {
	e.t.Helper()
	// no initiator: its default (RBD exports take none)
	a := framework.ProvisionerArgs{Name: e.name, ClusterID: e.clusterID, SecretNamespace: e.secretNS, Verbosity: 4}
	p := e.s.StartProvisioner(e.t, name, a, extra...)
	e.procs = append(e.procs, p)
	e.t.Cleanup(e.finalCheck)
	return p
}

// rbdClass makes a StorageClass of volume type rbd for ceph-csi: clusterID
// is the Ceph fsid (the key of ceph-csi's config map), the Secret the admin's.
func (e *env) rbdClass(mutate ...func(*storagev1.StorageClass)) string {
	e.t.Helper()
	return framework.CreateStorageClass(e.t, e.s.Kube, framework.StorageClass("rbd", e.name, map[string]string{
		"type":                "rbd",
		"clusterID":           e.ceph.FSID,
		"cephSecretName":      cephSecret,
		"cephSecretNamespace": e.cephNS,
	}, mutate...))
}

func expandable(sc *storagev1.StorageClass) {
	allow := true
	sc.AllowVolumeExpansion = &allow
}

func blockMode(c *corev1.PersistentVolumeClaim) {
	m := corev1.PersistentVolumeBlock
	c.Spec.VolumeMode = &m
}

func (e *env) claim(name, class, size string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	return framework.CreateClaim(e.t, e.s.Kube, framework.Claim(e.ns, name, class, size, mutate...))
}

func (e *env) waitBound(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	e.t.Helper()
	return e.waitBoundWithin(pvc, bindTimeout)
}

func (e *env) waitBoundWithin(pvc *corev1.PersistentVolumeClaim, timeout time.Duration) *corev1.PersistentVolume {
	e.t.Helper()
	pv := framework.WaitBoundPV(e.t, e.s.Kube, e.ns, pvc.Name, timeout)
	e.seen(pv.Annotations[annVolumeID])
	return pv
}

func (e *env) getPV(name string) *corev1.PersistentVolume {
	e.t.Helper()
	return framework.GetPV(e.t, e.s.Kube, name)
}

func (e *env) getClaim(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	return framework.GetClaim(e.t, e.s.Kube, e.ns, pvc.Name)
}

func (e *env) deleteClaim(pvc *corev1.PersistentVolumeClaim) {
	e.t.Helper()
	framework.DeleteClaim(e.t, e.s.Kube, e.ns, pvc.Name)
}

// waitEvent waits for an event of type and reason on the claim.
func (e *env) waitEvent(pvc *corev1.PersistentVolumeClaim, typ, reason string) corev1.Event {
	e.t.Helper()
	return framework.WaitEventOf(e.t, e.s.Kube, e.ns, "PersistentVolumeClaim", pvc.Name, typ, reason, bindTimeout)
}

// volumes lists the volumes of this env's cluster id (and remembers them).
func (e *env) volumes() []volumes.Volume {
	e.t.Helper()
	vols, err := framework.ClusterVolumes(context.Background(), e.cinder, e.clusterID)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	for _, v := range vols {
		e.seen(v.ID)
	}
	return vols
}

func (e *env) volumesNamed(name string) []volumes.Volume {
	e.t.Helper()
	var out []volumes.Volume
	for _, v := range e.volumes() {
		if v.Name == name {
			out = append(out, v)
		}
	}
	return out
}

func (e *env) cinderVolume(pv *corev1.PersistentVolume) *volumes.Volume {
	e.t.Helper()
	id := pv.Annotations[annVolumeID]
	v, err := volumes.Get(context.Background(), e.cinder, id).Extract()
	if err != nil {
		e.t.Fatalf("get Cinder volume %s of PV %s: %v", id, pv.Name, err)
	}
	return v
}

func (e *env) seen(id string) {
	if id == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Contains(e.volumeIDs, id) {
		e.volumeIDs = append(e.volumeIDs, id)
	}
}

// images returns the pool's images of every volume this test saw.
func (e *env) images() []string {
	e.t.Helper()
	e.mu.Lock()
	ids := slices.Clone(e.volumeIDs)
	e.mu.Unlock()
	imgs, err := e.ceph.ImagesOf(context.Background(), ids)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	return imgs
}

// imageGone waits until the pool holds no image of the volume.
func (e *env) imageGone(id string) {
	e.t.Helper()
	framework.Eventually(e.t, bindTimeout, "image of volume "+id+" still in the pool", func(ctx context.Context) (bool, error) {
		imgs, err := e.ceph.ImagesOf(ctx, []string{id})
		return len(imgs) == 0, err
	})
}

// image resolves the PV's RBD image from the PV's own fields only.
func (e *env) image(pv *corev1.PersistentVolume) framework.RBDImage {
	e.t.Helper()
	img, err := framework.RBDImageFromPV(context.Background(), e.s.Kube, pv, e.cephNS, cephCSIConfig)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	return img
}

// pattern is data written at a few offsets of an image: its start, 1 MiB
// in, and its last 4 KiB for a 1 GiB image.
type pattern struct {
	offsets []int64
	blocks  [][]byte
}

func newPattern(seed uint64) pattern {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := pattern{offsets: []int64{0, 1 << 20, 1<<30 - 4096}}
	for range p.offsets {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		p.blocks = append(p.blocks, b)
	}
	return p
}

func (e *env) writePattern(pv *corev1.PersistentVolume, p pattern) {
	e.t.Helper()
	img := e.image(pv)
	for i, off := range p.offsets {
		if err := img.WriteAt(context.Background(), p.blocks[i], off); err != nil {
			e.t.Fatalf("write pattern: %v", err)
		}
	}
}

func (e *env) expectPattern(pv *corev1.PersistentVolume, p pattern, what string) {
	e.t.Helper()
	img := e.image(pv)
	for i, off := range p.offsets {
		got, err := img.ReadAt(context.Background(), off, len(p.blocks[i]))
		if err != nil {
			e.t.Fatalf("%s: %v", what, err)
		}
		if string(got) != string(p.blocks[i]) {
			e.t.Fatalf("%s: image %s/%s at offset %d does not hold the pattern", what, img.Pool, img.Image, off)
		}
	}
	e.t.Logf("%s: librbd read of %s/%s (from PV %s's fields as %s via %v) holds the pattern", what, img.Pool, img.Image, pv.Name, img.UserID, img.Monitors)
}

// expectSize reads the image's size through librbd from the PV's fields.
func (e *env) expectSize(pv *corev1.PersistentVolume, want int64) {
	e.t.Helper()
	size, err := e.image(pv).Size(context.Background())
	if err != nil || size != want {
		e.t.Fatalf("librbd size of PV %s's image: %d, %v; want %d", pv.Name, size, err, want)
	}
}

// checkRBDPV checks the PV is the ceph-csi static volume of the claim's one
// volume, and that its image opens through librbd with the PV's fields only.
func (e *env) checkRBDPV(pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, sizeBytes int64) {
	e.t.Helper()
	e.checkRBDPVWithSecret(pvc, pv, sizeBytes, cephSecret)
}

// checkRBDPVWithSecret is checkRBDPV for a class naming another Secret.
func (e *env) checkRBDPVWithSecret(pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, sizeBytes int64, secret string) {
	e.t.Helper()
	vols := e.volumesNamed("pvc-" + string(pvc.UID))
	if len(vols) != 1 {
		e.t.Fatalf("%d Cinder volumes for claim %s, want 1", len(vols), pvc.Name)
	}
	id := vols[0].ID
	src := pv.Spec.CSI
	if src == nil || src.Driver != "rbd.csi.ceph.com" || src.VolumeHandle != "volume-"+id ||
		src.VolumeAttributes["pool"] != e.ceph.Pool || src.VolumeAttributes["clusterID"] != e.ceph.FSID ||
		src.NodeStageSecretRef == nil || src.NodeStageSecretRef.Name != secret || src.NodeStageSecretRef.Namespace != e.cephNS {
		e.t.Fatalf("PV %s source %+v, want rbd.csi.ceph.com volume-%s in pool %s, clusterID %s, Secret %s/%s", pv.Name, src, id, e.ceph.Pool, e.ceph.FSID, e.cephNS, secret)
	}
	if pv.Annotations[annVolumeID] != id {
		e.t.Errorf("PV %s annotated with volume %q, want %s", pv.Name, pv.Annotations[annVolumeID], id)
	}
	e.expectSize(pv, sizeBytes)
}

// deleteAllAndExpectNothingLeft deletes every claim and waits until no
// volume of the cluster id is left in Cinder and none of the test's images
// in the pool.
func (e *env) deleteAllAndExpectNothingLeft() {
	e.t.Helper()
	ctx := context.Background()
	e.volumes() // remember every volume before they go
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		e.t.Fatalf("delete claims: %v", err)
	}
	framework.Eventually(e.t, recoverTimeout, "volumes of the cluster id left in Cinder after every claim was deleted", func(ctx context.Context) (bool, error) {
		return len(e.volumes()) == 0, nil
	})
	framework.Eventually(e.t, bindTimeout, "images of the test left in the pool", func(ctx context.Context) (bool, error) {
		return len(e.images()) == 0, nil
	})
	e.mu.Lock()
	n := len(e.volumeIDs)
	e.mu.Unlock()
	e.t.Logf("every claim deleted: 0 volumes of cluster id %s in Cinder, 0 of its %d volumes' images in pool %s", e.clusterID, n, e.ceph.Pool)
}

func (e *env) finalCheck() {
	if e.checked || e.t.Failed() || e.keep {
		return
	}
	e.checked = true
	if !framework.AnyRunning(e.procs) {
		e.provisioner("provisioner-final-check")
	}
	e.deleteAllAndExpectNothingLeft()
}

// noImagesLeft runs last: after the framework removed any volume left, the
// pool must hold none of the test's images.
func (e *env) noImagesLeft() {
	framework.Eventually(e.t, bindTimeout, "images of the test left in the pool after cleanup", func(ctx context.Context) (bool, error) {
		e.mu.Lock()
		ids := slices.Clone(e.volumeIDs)
		e.mu.Unlock()
		imgs, err := e.ceph.ImagesOf(ctx, ids)
		if len(imgs) > 0 {
			e.t.Logf("left in the pool: %s", strings.Join(imgs, ", "))
		}
		return len(imgs) == 0, err
	})
}

func (e *env) deletePVs() {
	framework.DeleteProvisionedPVs(e.t, e.s.Kube, e.name, func(pv *corev1.PersistentVolume) {
		e.seen(pv.Annotations[annVolumeID])
	})
}

func gib(n int64) int64 { return n << 30 }

func claimName(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
