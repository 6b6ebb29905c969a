package provisioner

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// needsRelease reports whether a claim of ours held by
// contract.FinalizerProvisioning has reached one of the two ends that
// release it: bound, or being deleted. A claim another provisioner name
// was asked for is never ours to release, although it carries the same
// finalizer: its volume is in a Cinder, or under a cluster id, we do not
// look in (contract.ProvisionedBy).
func (p *Provisioner) needsRelease(c *corev1.PersistentVolumeClaim) bool {
	return protected(c) && contract.ProvisionedBy(c.Annotations, p.name) && (c.Spec.VolumeName != "" || c.DeletionTimestamp != nil)
}

// pvNameFor is the name of the PV the library makes for a claim (its
// default volume name hook, which cmd keeps): the Cinder volume's name too.
func pvNameFor(claim *corev1.PersistentVolumeClaim) string { return "pvc-" + string(claim.UID) }

// release ends contract.FinalizerProvisioning's hold on a claim of ours
// (see protection.go; another provisioner's is left alone). A claim bound to its PV is released at once: the PV and
// its reclaim policy own the volume from now on. A claim being deleted
// unbound, or bound to another PV, first loses everything made for it
// (volume, exports, Secret), unless a PV refers to the volume; when no
// volume of it is found, it is released only once no create for it can
// still land (inflight.go). again > 0 is when the Guard looks again: busy
// while an attempt works on the claim, else when no create can land.
func (p *Provisioner) release(ctx context.Context, claim *corev1.PersistentVolumeClaim) (again time.Duration, err error) {
	if !contract.ProvisionedBy(claim.Annotations, p.name) {
		return 0, nil
	}
	pvName := pvNameFor(claim)
	if claim.Spec.VolumeName == pvName {
		return p.releaseBound(ctx, claim, pvName)
	}
	if !p.locks.tryLock(claim.UID) {
		return busy, nil
	}
	defer p.locks.unlock(claim.UID)
	live, err := p.liveClaim(ctx, claim)
	if err != nil || live == nil || !p.needsRelease(live) {
		return 0, err
	}
	if live.Spec.VolumeName != pvName {
		opts := controller.ProvisionOptions{PVC: live, PVName: pvName}
		none, err := p.removeLeftovers(ctx, opts, p.cleanupRequest(ctx, live), "")
		if err != nil {
			p.warn(live, err)
			return 0, err
		}
		if wait := p.inflight.wait(live.UID); none && wait > 0 {
			klog.FromContext(ctx).V(2).Info("No volume of the deleted claim found; holding it while a create sent for it may still land", "for", wait)
			return wait, nil
		}
		if err := p.releaseSource(ctx, live); err != nil {
			return 0, err
		}
	}
	return 0, p.unprotect(ctx, live)
}

// releaseBound releases a claim bound to its PV. When a create for it may
// have been lost, it is held until no such create can land, and the
// volume is then looked up once by name: a late second volume is removed
// (lookUp keeps the one the PV names) before the claim is let go.
func (p *Provisioner) releaseBound(ctx context.Context, claim *corev1.PersistentVolumeClaim, pvName string) (again time.Duration, err error) {
	if lost, wait := p.inflight.mayBeLost(claim.UID); lost {
		if wait > 0 {
			klog.FromContext(ctx).V(2).Info("Claim bound while a create sent for it may still land; holding it until then", "pvc", klog.KObj(claim), "for", wait)
			return wait, nil
		}
		if _, err := p.lookUp(ctx, pvName, p.connector); err != nil && !errors.Is(err, cinder.ErrNotFound) {
			p.warn(claim, err)
			return 0, err
		}
	}
	return 0, p.unprotect(ctx, claim)
}

// busy is how long the Guard waits before it looks again at a claim an
// attempt is working on.
const busy = 2 * time.Second

// cleanupRequest is what a cleanup needs of the claim's class (the
// connector legacy exports were made for, the CHAP Secret's namespace);
// nil when the class is gone or unusable: the provisioner's own and the
// volume's metadata serve then.
func (p *Provisioner) cleanupRequest(ctx context.Context, claim *corev1.PersistentVolumeClaim) *request {
	name := ""
	if claim.Spec.StorageClassName != nil {
		name = *claim.Spec.StorageClassName
	}
	if name == "" {
		return nil
	}
	class, err := p.kube.StorageV1().StorageClasses().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p.requestForCleanup(claim, class)
}

func (p *Provisioner) requestForCleanup(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) *request {
	params, err := parseParameters(class.Parameters)
	if err != nil {
		return nil
	}
	connector, err := p.connectorFor(controller.ProvisionOptions{PVC: claim, StorageClass: class}, params, nil)
	if err != nil {
		return nil
	}
	return &request{params: params, connector: connector, mapper: p.mapperParams(claim, params, connector)}
}
