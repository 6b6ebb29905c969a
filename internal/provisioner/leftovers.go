package provisioner

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
	"github.com/cinder-provisioner/cinder-provisioner/internal/refs"
)

// existingPV returns the PV of the given name when it exists and is this
// provisioner's for the volume: a Provision that runs while it exists
// (informer lag, a second leader) returns it unchanged (the library's create
// then finds it), and never touches the live export it records.
func (p *Provisioner) existingPV(ctx context.Context, name, volumeID string) (*corev1.PersistentVolume, error) {
	pv, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get PV %s: %w", name, err)
	}
	if pv.Annotations[contract.AnnVolumeID] != volumeID || pv.Annotations[contract.AnnProvisionerIdentity] != p.name {
		return nil, fmt.Errorf("PV %s exists but is not this provisioner's for Cinder volume %s: it is left alone, and so is the volume", name, volumeID)
	}
	klog.FromContext(ctx).V(2).Info("PV exists already; returning it unchanged", "volumeID", volumeID)
	out := pv.DeepCopy()
	out.ResourceVersion = ""
	return out, nil
}

// forget is the attempt for a claim that is gone or being deleted (live
// is nil when it is gone): what exists of it is removed, and the library is
// told to forget the claim; end then releases a live claim from
// contract.FinalizerProvisioning.
func (p *Provisioner) forget(ctx context.Context, opts controller.ProvisionOptions, live *corev1.PersistentVolumeClaim) result {
	none, err := p.removeLeftovers(ctx, opts, nil, "")
	if err != nil {
		return retryLater(fmt.Errorf("claim %s/%s was deleted; removing its volume did not finish, will retry: %w", opts.PVC.Namespace, opts.PVC.Name, err))
	}
	if wait := p.inflight.wait(opts.PVC.UID); none && protected(live) && wait > 0 {
		// the Guard looks again once no create can land (release.go)
		return retryLater(fmt.Errorf("claim %s/%s was deleted and no volume of it is found, but a create sent for it may still reach Cinder for %s: its finalizer %s stays until then", opts.PVC.Namespace, opts.PVC.Name, wait.Round(time.Second), contract.FinalizerProvisioning))
	}
	if err := p.releaseSource(ctx, opts.PVC); err != nil {
		return retryLater(fmt.Errorf("claim %s/%s was deleted: %w", opts.PVC.Namespace, opts.PVC.Name, err))
	}
	klog.FromContext(ctx).V(2).Info("Claim deleted while provisioning; nothing of it is left", "terminating", live != nil)
	return result{out: forgotten, err: &controller.IgnoredError{Reason: fmt.Sprintf("claim %s/%s was deleted; nothing of it is left on Cinder", opts.PVC.Namespace, opts.PVC.Name)}}
}

// removeLeftovers deletes the claim's volume (volumeID, or the one named
// after the PV) with its exports, and its CHAP Secret. The claim's
// contract.FinalizerProvisioning (or, for a claim made before it, the library's
// memory of the claim) says the volume is the claim's and unwanted; a PV of
// the claim's name, or any PV that refers to the volume, says otherwise:
// then the volume stays, held by that PV. none is true when no volume of the
// claim was found (volumeID "" and none by name).
func (p *Provisioner) removeLeftovers(ctx context.Context, opts controller.ProvisionOptions, req *request, volumeID string) (none bool, err error) {
	connector, secretNS := p.connector, p.secretNamespace
	if req != nil {
		connector, secretNS = req.connector, req.mapper.SecretNamespace
	}
	if volumeID == "" {
		vol, err := p.lookUp(ctx, opts.PVName, connector)
		switch {
		case errors.Is(err, cinder.ErrNotFound):
		case err != nil:
			return false, fmt.Errorf("look up volume %s: %w", opts.PVName, err)
		case vol.Metadata[contract.MetaClusterID] == p.clusterID:
			volumeID = vol.ID
			if ns := vol.Metadata[contract.MetaSecretNamespace]; ns != "" {
				// where the Secret was made, whatever the class says now
				secretNS = ns
			}
		}
	}
	if volumeID != "" {
		if pv, err := p.existingPV(ctx, opts.PVName, volumeID); err != nil || pv != nil {
			// a PV holds the volume: the library's delete path owns it now
			return false, err
		}
		held, err := p.heldBy(ctx, volumeID)
		if err != nil {
			return false, err
		}
		if len(held) > 0 {
			klog.FromContext(ctx).Info("Keeping the claim's volume: a PV refers to it", "volumeID", volumeID, "pvs", held)
			return false, nil
		}
		klog.FromContext(ctx).V(2).Info("Removing volume of a claim that cannot be served", "volumeID", volumeID)
		if err := p.removeVolume(ctx, volumeID, connector); err != nil {
			return false, err
		}
	}
	return volumeID == "", p.deleteSecret(ctx, secretNS, mapper.ChapSecretName(opts.PVName), opts.PVName)
}

// heldBy names the PVs that refer to the volume, read live.
func (p *Provisioner) heldBy(ctx context.Context, volumeID string) ([]string, error) {
	index, _, err := refs.ListReferences(ctx, p.kube)
	if err != nil {
		return nil, fmt.Errorf("check which PVs refer to volume %s: %w", volumeID, err)
	}
	return index.Of(volumeID), nil
}
