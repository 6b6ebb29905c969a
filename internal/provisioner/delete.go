package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Delete implements controller.Provisioner: for a PV of this provisioner
// with reclaim policy Delete, it deletes the PV's Secrets, removes the export
// and deletes the Cinder volume, waiting until Cinder no longer knows it.
// Anything already gone counts as done. A PV that is not this provisioner's
// yields an *controller.IgnoredError.
func (p *Provisioner) Delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	volumeID, legacy, err := p.owned(pv)
	if err != nil {
		return err
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		// the library only deletes Delete PVs; a Retain volume is never lost
		return &controller.IgnoredError{Reason: fmt.Sprintf("PV %s has reclaim policy %s", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy)}
	}
	logger := klog.FromContext(ctx).WithValues("pv", klog.KObj(pv), "volumeID", volumeID)
	ctx = klog.NewContext(ctx, logger)

	if m, err := p.mappers.ForPV(pv); err == nil {
		for _, ref := range m.Secrets(pv) {
			if err := p.deletePVSecret(ctx, ref.Namespace, ref.Name, pv.Name, legacy); err != nil {
				return err
			}
		}
	} else {
		logger.V(2).Info("PV source is not one this provisioner makes; no Secrets to delete", "reason", err.Error())
	}

	connector := p.connector
	if rec := pv.Annotations[AnnConnector]; rec != "" {
		var c connectorRecord
		if err := json.Unmarshal([]byte(rec), &c); err != nil {
			return fmt.Errorf("PV %s: annotation %s is not a connector record: %w", pv.Name, AnnConnector, err)
		}
		connector.Initiator, connector.Host, connector.IP, connector.WWPNs, connector.WWNNs = c.Initiator, c.Host, c.IP, c.WWPNs, c.WWNNs
	}
	if err := p.unexportAll(ctx, volumeID, pv.Annotations[AnnExportID], connector); err != nil {
		return err
	}
	if err := p.deleteVolume(ctx, volumeID); err != nil {
		return fmt.Errorf("delete volume %s of PV %s: %w", volumeID, pv.Name, err)
	}
	logger.V(2).Info("Deleted volume")
	return nil
}

// owned returns the Cinder volume id of a PV this provisioner (or the
// original standalone-cinder provisioner) made.
func (p *Provisioner) owned(pv *corev1.PersistentVolume) (volumeID string, legacy bool, err error) {
	ann := pv.Annotations
	if id, ok := ann[AnnVolumeID]; ok {
		if ann[AnnProvisionerIdentity] != p.name {
			return "", false, &controller.IgnoredError{Reason: fmt.Sprintf("PV %s belongs to provisioner %q, not %q", pv.Name, ann[AnnProvisionerIdentity], p.name)}
		}
		if id == "" {
			return "", false, fmt.Errorf("PV %s: annotation %s is empty", pv.Name, AnnVolumeID)
		}
		return id, false, nil
	}
	// made by the original provisioner: the library already checked that
	// pv.kubernetes.io/provisioned-by names this provisioner
	if id := ann[annLegacyVolumeID]; id != "" && ann[annLegacyIdentity] != "" {
		return id, true, nil
	}
	return "", false, &controller.IgnoredError{Reason: fmt.Sprintf("PV %s carries no Cinder volume annotation of this provisioner", pv.Name)}
}

// unexportAll removes the PV's export, or, for a PV that does not record
// it (the original provisioner's), every export of the volume.
func (p *Provisioner) unexportAll(ctx context.Context, volumeID, exportID string, connector cinder.Connector) error {
	ids := []string{exportID}
	if exportID == "" {
		vol, err := p.cinder.GetVolume(ctx, volumeID)
		if errors.Is(err, cinder.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get volume %s: %w", volumeID, err)
		}
		ids = vol.AttachmentIDs
	}
	for _, id := range ids {
		if err := p.cinder.Unexport(ctx, volumeID, id, connector); err != nil {
			return fmt.Errorf("unexport volume %s (export %s): %w", volumeID, id, err)
		}
	}
	return nil
}

// deletePVSecret deletes a Secret the provisioner made for the PV. The
// original provisioner's Secrets carry no label; their name alone (checked
// by the mapper) identifies them.
func (p *Provisioner) deletePVSecret(ctx context.Context, namespace, name, pvName string, legacy bool) error {
	if legacy {
		return p.deleteSecretUnlabeled(ctx, namespace, name)
	}
	return p.deleteSecret(ctx, namespace, name, pvName)
}
