package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// Delete implements controller.Provisioner: for a PV of this provisioner
// with reclaim policy Delete, it deletes the PV's Secrets, removes the export
// (with the method and connector recorded on the PV) and deletes the Cinder
// volume, from whatever status an interrupted attempt left it in, waiting
// until Cinder no longer knows it. Anything already gone counts as done. A
// PV that is not this provisioner's yields an *controller.IgnoredError.
//
// The library also calls Delete with the PV object Provision returned when
// it could not save it, whatever the class's reclaim policy (its volume
// store does, after its retries): such a PV has no UID, and unless the API
// server has it after all, its volume, export and Secrets are removed, since
// nothing could ever reach them.
func (p *Provisioner) Delete(ctx context.Context, pv *corev1.PersistentVolume) (err error) {
	ctx, done := p.metrics.track(ctx, opDelete)
	defer func() { done(err) }()
	volumeID, legacy, err := p.owned(pv)
	if err != nil {
		return err
	}
	if pv.UID == "" {
		// the object Provision returned, never stored: the library's volume
		// store gave up saving it and cleans up, whatever the policy
		saved, err := p.saved(ctx, pv.Name, volumeID)
		if err != nil {
			return err
		}
		if saved {
			// a create whose answer was lost: the PV lives, and so does its volume
			return &controller.IgnoredError{Reason: fmt.Sprintf("PV %s was saved after all; its volume stays", pv.Name)}
		}
	} else {
		// the library's copy may be older than an admin's Retain patch:
		// only the live PV decides
		live, err := p.livePV(ctx, pv, volumeID)
		if err != nil {
			return err
		}
		pv = live
	}
	logger := klog.FromContext(ctx).WithValues("pv", klog.KObj(pv), "volumeID", volumeID)
	ctx = klog.NewContext(ctx, logger)

	// the annotation names the volume to delete: it must be this PV's, or
	// an edited annotation would delete another PV's data
	endCheck := p.metrics.timePhase(opDelete, phaseCheck)
	vol, err := p.checkVolumeOf(ctx, pv, volumeID, legacy)
	endCheck()
	if err != nil {
		return err
	}

	// Cinder refuses to delete a volume with snapshots (400): one our
	// snapshotter marked keeps its export and Secret until they are gone,
	// each retry costing one list, not a DELETE; another learns of
	// snapshots made outside Kubernetes from the refusal (deleteVolume)
	if vol != nil && vol.Metadata[contract.MetaSnapshotted] == "true" {
		if err := p.checkNoSnapshots(ctx, volumeID); err != nil {
			return fmt.Errorf("PV %s: %w", pv.Name, err)
		}
	}

	if m, err := p.mappers.ForPV(pv); err == nil {
		endSecret := p.metrics.timePhase(opDelete, phaseSecret)
		for _, ref := range m.Secrets(pv) {
			if err := p.deletePVSecret(ctx, ref.Namespace, ref.Name, pv.Name, legacy); err != nil {
				return err
			}
		}
		endSecret()
	} else {
		logger.V(2).Info("PV source is not one this provisioner makes; no Secrets to delete", "reason", err.Error())
	}

	if vol == nil {
		logger.V(2).Info("Volume already gone")
		return nil
	}
	connector, err := p.recordedConnector(pv)
	if err != nil {
		return err
	}
	unexported := false
	if id := pv.Annotations[contract.AnnExportID]; id != "" {
		ref := cinder.ExportRef{Method: cinder.ExportMethod(pv.Annotations[contract.AnnExportMethod]), ID: id}
		endUnexport := p.metrics.timePhase(opDelete, phaseUnexport)
		if err := p.cinder.Unexport(ctx, volumeID, ref, connector); err != nil {
			return fmt.Errorf("unexport volume %s (export %s) of PV %s: %w", volumeID, id, pv.Name, err)
		}
		endUnexport()
		// exported or already available when read: available now
		unexported = vol.Status == cinder.StatusInUse || vol.Status == cinder.StatusAvailable
	}
	endDelete := p.metrics.timePhase(opDelete, phaseDelete)
	if err := p.deleteVolume(ctx, volumeID, connector, unexported); err != nil {
		return fmt.Errorf("delete volume %s of PV %s: %w", volumeID, pv.Name, err)
	}
	endDelete()
	logger.V(2).Info("Deleted volume")
	return nil
}

// livePV reads the PV from the API server and returns it when it still
// asks for its volume to be deleted: the same PV (UID), reclaim policy
// Delete, naming the same volume. Otherwise nothing is deleted: an
// *controller.IgnoredError for a PV that is gone, re-created or switched to
// Retain, an error for one whose volume annotation changed.
func (p *Provisioner) livePV(ctx context.Context, pv *corev1.PersistentVolume, volumeID string) (*corev1.PersistentVolume, error) {
	live, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, &controller.IgnoredError{Reason: fmt.Sprintf("PV %s no longer exists; its volume %s is kept (cinder-provisioner orphans lists it)", pv.Name, volumeID)}
	case err != nil:
		return nil, fmt.Errorf("get PV %s: %w", pv.Name, err)
	case live.UID != pv.UID:
		return nil, &controller.IgnoredError{Reason: fmt.Sprintf("PV %s was re-created (uid %s, was %s); volume %s is kept", pv.Name, live.UID, pv.UID, volumeID)}
	case live.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete:
		// the library only deletes Delete PVs; a Retain volume is never lost
		return nil, &controller.IgnoredError{Reason: fmt.Sprintf("PV %s has reclaim policy %s", pv.Name, live.Spec.PersistentVolumeReclaimPolicy)}
	}
	liveID, _, err := p.owned(live)
	if err != nil {
		return nil, err
	}
	if liveID != volumeID {
		return nil, fmt.Errorf("PV %s names Cinder volume %s now, not %s: nothing was deleted; the next attempt works from the PV as it is", pv.Name, liveID, volumeID)
	}
	return live, nil
}

// deleteVolume deletes the PV's volume and waits until Cinder no longer
// knows it. A volume read in-use or available whose PV's export was then
// removed is normally available, so DELETE is sent at once (one read less
// per PV, on a cinder-api that every claim shares); should Cinder refuse it
// (400: another export), removeVolume reads the status and acts on it. A
// volume read in any other status (deleting, error_deleting, reserved, ...)
// and the original provisioner's PVs, which record no export, go to
// removeVolume straight away: it never sends DELETE to a volume that is
// deleting, and clears any export before the delete.
func (p *Provisioner) deleteVolume(ctx context.Context, id string, connector cinder.Connector, unexported bool) error {
	if unexported {
		err := p.cinder.DeleteVolume(ctx, id)
		if err == nil {
			return p.cinder.WaitForVolumeDeleted(ctx, id)
		}
		if !errors.Is(err, cinder.ErrInvalid) {
			return err
		}
		if err := p.checkNoSnapshots(ctx, id); err != nil {
			return err
		}
		klog.FromContext(ctx).V(4).Info("Cinder refused the delete of the unexported volume; reading its status", "volumeID", id, "err", err.Error())
	}
	return p.removeVolume(ctx, id, connector)
}

// saved reports whether the API server has the PV of the given name for
// the volume.
func (p *Provisioner) saved(ctx context.Context, name, volumeID string) (bool, error) {
	live, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get PV %s: %w", name, err)
	}
	return live.Annotations[contract.AnnVolumeID] == volumeID, nil
}

// recordedConnector is the connector the PV's volume was exported to, as
// recorded on the PV; the provisioner's own for PVs that record none.
func (p *Provisioner) recordedConnector(pv *corev1.PersistentVolume) (cinder.Connector, error) {
	connector := p.connector
	rec := pv.Annotations[contract.AnnConnector]
	if rec == "" {
		return connector, nil
	}
	var c connectorRecord
	if err := json.Unmarshal([]byte(rec), &c); err != nil {
		return connector, fmt.Errorf("PV %s: annotation %s is not a connector record: %w", pv.Name, contract.AnnConnector, err)
	}
	connector.Initiator, connector.Host, connector.IP, connector.WWPNs, connector.WWNNs = c.Initiator, c.Host, c.IP, c.WWPNs, c.WWNNs
	return connector, nil
}

// owned returns the Cinder volume id of a PV this provisioner (or the
// original standalone-cinder provisioner) made.
func (p *Provisioner) owned(pv *corev1.PersistentVolume) (volumeID string, legacy bool, err error) {
	ann := pv.Annotations
	if id, ok := ann[contract.AnnVolumeID]; ok {
		if ann[contract.AnnProvisionerIdentity] != p.name {
			return "", false, &controller.IgnoredError{Reason: fmt.Sprintf("PV %s belongs to provisioner %q, not %q", pv.Name, ann[contract.AnnProvisionerIdentity], p.name)}
		}
		if id == "" {
			return "", false, fmt.Errorf("PV %s: annotation %s is empty", pv.Name, contract.AnnVolumeID)
		}
		return id, false, nil
	}
	// made by the original provisioner: the library already checked that
	// pv.kubernetes.io/provisioned-by names this provisioner
	if id := ann[contract.AnnLegacyVolumeID]; id != "" && ann[contract.AnnLegacyIdentity] != "" {
		return id, true, nil
	}
	return "", false, &controller.IgnoredError{Reason: fmt.Sprintf("PV %s carries no Cinder volume annotation of this provisioner", pv.Name)}
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

// checkVolumeOf reads the volume a PV names and makes sure it is the PV's:
// a Cinder volume id, and a volume named after the PV (or recording it in
// its metadata) of this cluster. Legacy PVs' volumes carry no such marks.
// gone reports a volume Cinder no longer knows.
func (p *Provisioner) checkVolumeOf(ctx context.Context, pv *corev1.PersistentVolume, volumeID string, legacy bool) (*cinder.Volume, error) {
	if !uuidRE.MatchString(volumeID) {
		return nil, fmt.Errorf("PV %s: annotation %s is %q, not a Cinder volume id: nothing was deleted; restore the annotation", pv.Name, contract.AnnVolumeID, volumeID)
	}
	vol, err := p.cinder.GetVolume(ctx, volumeID)
	if errors.Is(err, cinder.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get volume %s of PV %s: %w", volumeID, pv.Name, err)
	}
	if legacy {
		return vol, nil
	}
	if (vol.Name != pv.Name && vol.Metadata[contract.MetaPVName] != pv.Name) || vol.Metadata[contract.MetaClusterID] != p.clusterID {
		return nil, fmt.Errorf("PV %s names Cinder volume %s, which is not its own (named %q, made for PV %q of cluster %q): nothing was deleted; restore the PV's annotation %s", pv.Name, volumeID, vol.Name, vol.Metadata[contract.MetaPVName], vol.Metadata[contract.MetaClusterID], contract.AnnVolumeID)
	}
	return vol, nil
}

// checkNoSnapshots returns a *snapshotsLeftError naming the volume's
// snapshots when it has any.
func (p *Provisioner) checkNoSnapshots(ctx context.Context, volumeID string) error {
	snaps, err := p.cinder.ListSnapshots(ctx, cinder.SnapshotFilter{VolumeID: volumeID})
	if err != nil {
		return fmt.Errorf("list the snapshots of volume %s: %w", volumeID, err)
	}
	if len(snaps) == 0 {
		return nil
	}
	return &snapshotsLeftError{volumeID: volumeID, snapshots: snaps}
}
