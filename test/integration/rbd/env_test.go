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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	bindTimeout    = 90 * time.Second
	recoverTimeout = 4 * time.Minute
	annVolumeID    = "cinder.openstack.org/volume-id"
	metaClusterID  = "cinder.openstack.org/cluster-id"
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
	s.CleanupVolumesWithMetadata(t, e.cinder, metaClusterID, e.clusterID)
	t.Cleanup(e.deletePVs)
	return e
}

func (e *env) provisioner(name string, extra ...string) *framework.Process {
	e.t.Helper()
	args := []string{
		"--kubeconfig", e.s.Kubeconfig,
		"--cloud-config", e.s.CloudConf,
		"--provisioner-name", e.name,
		"--cluster-id", e.clusterID,
		"--secret-namespace", e.secretNS,
		"--metrics-address", "",
		"--leader-elect=false",
		"-v", "4",
	}
	p := framework.Start(e.t, name, e.s.ProvisionerBinary(e.t), append(args, extra...)...)
	e.procs = append(e.procs, p)
	e.t.Cleanup(e.finalCheck)
	return p
}

// rbdClass makes a StorageClass of volume type rbd for ceph-csi: clusterID
// is the Ceph fsid (the key of ceph-csi's config map), the Secret the admin's.
func (e *env) rbdClass(mutate ...func(*storagev1.StorageClass)) string {
	e.t.Helper()
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: framework.UniqueName("rbd")},
		Provisioner: e.name,
		Parameters: map[string]string{
			"type":                "rbd",
			"clusterID":           e.ceph.FSID,
			"cephSecretName":      cephSecret,
			"cephSecretNamespace": e.cephNS,
		},
	}
	for _, m := range mutate {
		m(sc)
	}
	if _, err := e.s.Kube.StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create StorageClass: %v", err)
	}
	e.t.Cleanup(func() {
		_ = e.s.Kube.StorageV1().StorageClasses().Delete(context.Background(), sc.Name, metav1.DeleteOptions{})
	})
	return sc.Name
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
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			},
		},
	}
	for _, m := range mutate {
		m(pvc)
	}
	out, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Create(context.Background(), pvc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create PVC %s: %v", name, err)
	}
	return out
}

func (e *env) waitBound(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	e.t.Helper()
	return e.waitBoundWithin(pvc, bindTimeout)
}

func (e *env) waitBoundWithin(pvc *corev1.PersistentVolumeClaim, timeout time.Duration) *corev1.PersistentVolume {
	e.t.Helper()
	var pvName string
	framework.Eventually(e.t, timeout, "claim "+pvc.Name+" never bound", func(ctx context.Context) (bool, error) {
		c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pvName = c.Spec.VolumeName
		return c.Status.Phase == corev1.ClaimBound, nil
	})
	pv := e.getPV(pvName)
	e.seen(pv.Annotations[annVolumeID])
	return pv
}

func (e *env) getPV(name string) *corev1.PersistentVolume {
	e.t.Helper()
	pv, err := e.s.Kube.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get PV %s: %v", name, err)
	}
	return pv
}

func (e *env) getClaim(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(context.Background(), pvc.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get claim %s: %v", pvc.Name, err)
	}
	return c
}

func (e *env) deleteClaim(pvc *corev1.PersistentVolumeClaim) {
	e.t.Helper()
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Delete(context.Background(), pvc.Name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete PVC %s: %v", pvc.Name, err)
	}
}

// waitEvent waits for an event of type and reason on the claim.
func (e *env) waitEvent(pvc *corev1.PersistentVolumeClaim, typ, reason string) corev1.Event {
	e.t.Helper()
	var found corev1.Event
	sel := fields.Set{"involvedObject.name": pvc.Name, "involvedObject.kind": "PersistentVolumeClaim"}.AsSelector().String()
	framework.Eventually(e.t, bindTimeout, "no "+typ+" "+reason+" event on claim "+pvc.Name, func(ctx context.Context) (bool, error) {
		evs, err := e.s.Kube.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == reason && ev.Type == typ {
				found = ev
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// volumes lists the volumes of this env's cluster id (and remembers them).
func (e *env) volumes() []volumes.Volume {
	e.t.Helper()
	vols, err := framework.VolumesWithMetadata(context.Background(), e.cinder, metaClusterID, e.clusterID)
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
	alive := false
	for _, p := range e.procs {
		alive = alive || !p.Exited()
	}
	if !alive {
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
	ctx := context.Background()
	pvs, err := e.s.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Errorf("cleanup: list PVs: %v", err)
		return
	}
	for _, pv := range pvs.Items {
		if pv.Annotations["pv.kubernetes.io/provisioned-by"] != e.name {
			continue
		}
		e.seen(pv.Annotations[annVolumeID])
		if len(pv.Finalizers) > 0 {
			pv.Finalizers = nil
			_, _ = e.s.Kube.CoreV1().PersistentVolumes().Update(ctx, &pv, metav1.UpdateOptions{})
		}
		_ = e.s.Kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	}
}

func gib(n int64) int64 { return n << 30 }

func claimName(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
