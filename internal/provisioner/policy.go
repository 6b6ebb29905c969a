package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// The admin's intent, kept current. Kubernetes documents keeping a
// dynamically provisioned disk by patching its PV's reclaim policy to
// Retain. The volume's metadata recorded the class's policy when it was
// made; when a PV of ours changes policy, the Guard writes the new one into
// the volume's metadata (contract.MetaReclaimPolicy), so that Cinder-side admins,
// orphans and the sweep see it even after the PV object is gone. The PV's
// contract.AnnReclaimPolicy records the policy last written, so that a restart makes
// no Cinder call for PVs already in step. PVs made before the annotation
// existed are mirrored on their first observed change.

// ownPV returns the Cinder volume id of a PV this provisioner made
// (not the original provisioner's: its volumes carry no metadata of ours).
func (p *Provisioner) ownPV(pv *corev1.PersistentVolume) (string, bool) {
	if pv == nil || pv.Annotations[contract.AnnProvisionerIdentity] != p.name {
		return "", false
	}
	id := pv.Annotations[contract.AnnVolumeID]
	return id, id != ""
}

// needsMirror reports whether the PV's reclaim policy must be written to
// its volume's metadata: it differs from the one last written, or, for a
// PV that records none, it just changed (old is nil for a PV first seen).
func (p *Provisioner) needsMirror(old, pv *corev1.PersistentVolume) bool {
	if _, ok := p.ownPV(pv); !ok || pv.DeletionTimestamp != nil {
		return false
	}
	policy := string(pv.Spec.PersistentVolumeReclaimPolicy)
	if rec, ok := pv.Annotations[contract.AnnReclaimPolicy]; ok {
		return rec != policy
	}
	return old != nil && old.Spec.PersistentVolumeReclaimPolicy != pv.Spec.PersistentVolumeReclaimPolicy
}

// mirrorPolicy writes the PV's reclaim policy into its volume's metadata,
// then records on the PV that it did.
func (p *Provisioner) mirrorPolicy(ctx context.Context, pv *corev1.PersistentVolume) error {
	id, ok := p.ownPV(pv)
	policy := string(pv.Spec.PersistentVolumeReclaimPolicy)
	if !ok || pv.Annotations[contract.AnnReclaimPolicy] == policy || policy == "" {
		return nil
	}
	err := p.cinder.UpdateVolumeMetadata(ctx, id, map[string]string{contract.MetaReclaimPolicy: policy})
	switch {
	case errors.Is(err, cinder.ErrNotFound):
		klog.FromContext(ctx).V(2).Info("Volume of the PV is gone; nothing to record the reclaim policy on", "volumeID", id)
	case err != nil:
		return fmt.Errorf("record reclaim policy %s of PV %s on volume %s: %w", policy, pv.Name, id, err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{contract.AnnReclaimPolicy: policy},
		// only the PV this decision was made for
		"uid": pv.UID,
	}})
	if err != nil {
		return err
	}
	_, err = p.kube.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("record on PV %s that its reclaim policy is on volume %s: %w", pv.Name, id, err)
	}
	klog.FromContext(ctx).V(2).Info("Recorded the PV's reclaim policy on its volume", "volumeID", id, "policy", policy)
	return nil
}
