package provisioner

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// maxRecoverRounds bounds how often one attempt re-reads a volume that
// changed status under it (another actor, Cinder finishing a step).
const maxRecoverRounds = 4

// staleCreating is how long a volume may stay creating before the
// provisioner suspects that Cinder took the request but never scheduled it
// (cinder-api died between writing the record and messaging the scheduler):
// such a volume stays creating for ever. Cinder schedules a create within a
// second; a backend that takes longer has a host by then, and Cinder refuses
// to delete it.
const staleCreating = 30 * time.Second

// findVolume looks the claim's volume up by name (the PV name). It goes on
// (ok) with the volume, available, when an earlier attempt made one and it
// can be reused, or with nil when there is none (or it was removed because
// it was in error). It ends the attempt (!ok) with the PV when that already
// exists (informer lag, another leader): that PV's live export is never
// touched.
func (p *Provisioner) findVolume(ctx context.Context, opts controller.ProvisionOptions, req *request) (vol *cinder.Volume, res result, ok bool) {
	found, err := p.lookUp(ctx, opts.PVName, req.connector)
	switch {
	case errors.Is(err, cinder.ErrNotFound):
		return nil, result{}, true
	case err != nil:
		// an earlier attempt's volume may exist: never forget the claim
		return nil, retryLater(fmt.Errorf("look up volume %s: %w", opts.PVName, err)), false
	case found.Metadata[contract.MetaClusterID] != p.clusterID:
		// someone else's volume: nothing of ours exists
		return nil, result{out: refused, undo: undoNothing, err: &nameConflictError{name: opts.PVName, id: found.ID, cluster: found.Metadata[contract.MetaClusterID]}}, false
	}
	pv, err := p.existingPV(ctx, opts.PVName, found.ID)
	if err != nil || pv != nil {
		return nil, result{pv: pv, out: bound, err: err}, false
	}
	vol, err = p.recoverVolume(ctx, found, req.connector)
	if err != nil {
		return nil, retryLater(err), false
	}
	if vol != nil {
		if diffs := mismatch(vol, req); len(diffs) > 0 {
			return nil, retryLater(&mismatchError{id: vol.ID, diffs: diffs}), false
		}
	}
	return vol, result{}, true
}

// lookUp finds the volume named after the PV. A create whose request was
// still in Cinder when its process died can land after the next process's
// lookup: two volumes of ours for one claim. They are brought down to one
// first (removeDuplicates), so that every caller, the attempt and the
// cleanup of a deleted claim alike, sees at most one.
func (p *Provisioner) lookUp(ctx context.Context, name string, connector cinder.Connector) (*cinder.Volume, error) {
	found, err := p.cinder.FindVolumeByName(ctx, name)
	var dup *cinder.DuplicateNameError
	if !errors.As(err, &dup) {
		return found, err
	}
	if err := p.removeDuplicates(ctx, name, dup.IDs, connector); err != nil {
		return nil, err
	}
	return p.cinder.FindVolumeByName(ctx, name)
}

// removeDuplicates keeps one of several volumes carrying the claim's name
// (the one a PV names, else the oldest) and removes the others, when every
// one of them is this cluster's, made for this PV. Otherwise nothing is
// touched and the *cinder.DuplicateNameError is returned for a human.
func (p *Provisioner) removeDuplicates(ctx context.Context, name string, ids []string, connector cinder.Connector) error {
	dupErr := &cinder.DuplicateNameError{Name: name, IDs: ids}
	for _, id := range ids {
		v, err := p.cinder.GetVolume(ctx, id)
		if errors.Is(err, cinder.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get volume %s: %w", id, err)
		}
		if v.Metadata[contract.MetaClusterID] != p.clusterID || v.Metadata[contract.MetaPVName] != name {
			return dupErr
		}
	}
	keep := ids[0]
	if pv, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); err == nil {
		keep = pv.Annotations[contract.AnnVolumeID]
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get PV %s: %w", name, err)
	}
	for _, id := range ids {
		if id == keep {
			continue
		}
		held, err := p.heldBy(ctx, id)
		if err != nil {
			return err
		}
		if len(held) > 0 {
			// a PV (re-created by an admin, say) uses it: never ours to remove
			klog.FromContext(ctx).Info("Keeping a second volume of the claim's name: a PV refers to it", "volumeID", id, "pvs", held)
			return dupErr
		}
		klog.FromContext(ctx).Info("Removing a second volume of the claim's name", "volumeID", id, "kept", keep)
		if err := p.removeVolume(ctx, id, connector); err != nil {
			return fmt.Errorf("remove volume %s, a second volume named %s: %w", id, name, err)
		}
	}
	return nil
}

// recoverVolume drives a volume an earlier attempt made to available, from
// whatever status an interruption left it in; nil when it is gone (it was
// being deleted, or in error and removed here) and a new one is needed.
// A status nothing of ours can leave is a *stuckVolumeError.
func (p *Provisioner) recoverVolume(ctx context.Context, vol *cinder.Volume, connector cinder.Connector) (*cinder.Volume, error) {
	logger := klog.FromContext(ctx)
	id := vol.ID
	for round := 0; round < maxRecoverRounds; round++ {
		logger.V(2).Info("Found volume of an earlier attempt", "volumeID", id, "status", vol.Status)
		var err error
		switch vol.Status {
		case cinder.StatusAvailable:
			return vol, nil
		case cinder.StatusCreating:
			vol, err = p.waitCreated(ctx, vol)
			var vse *cinder.VolumeStatusError
			if errors.As(err, &vse) {
				vol, err = &cinder.Volume{ID: id, Status: vse.Status}, nil
			}
			if err == nil && vol == nil {
				return nil, nil
			}
		case cinder.StatusReserved, cinder.StatusAttaching, cinder.StatusInUse, cinder.StatusDetaching:
			// an export an interrupted attempt left; no PV uses it
			vol, err = p.cinder.ClearExports(ctx, id, connector)
			if err == nil && vol.Status == cinder.StatusAvailable {
				return vol, nil
			}
		case cinder.StatusDeleting:
			// an earlier cleanup's delete: let it finish, then start anew
			if err := p.cinder.WaitForVolumeDeleted(ctx, id); err != nil {
				return nil, fmt.Errorf("wait for volume %s, deleting, to go: %w", id, err)
			}
			return nil, nil
		case cinder.StatusErrorDeleting:
			return nil, &stuckVolumeError{id: id, status: vol.Status, fix: stuckFix(id, vol.Status)}
		default:
			if !cinder.IsErrorStatus(vol.Status) {
				return nil, &stuckVolumeError{id: id, status: vol.Status, fix: stuckFix(id, vol.Status)}
			}
			logger.V(2).Info("Deleting volume an earlier attempt left in error", "volumeID", id, "status", vol.Status)
			if err := p.removeVolume(ctx, id, connector); err != nil {
				return nil, fmt.Errorf("remove volume %s left in status %s by an earlier attempt: %w", id, vol.Status, err)
			}
			return nil, nil
		}
		if errors.Is(err, cinder.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("recover volume %s: %w", id, err)
		}
	}
	return nil, fmt.Errorf("volume %s keeps changing status (last %s): will retry", id, vol.Status)
}

// waitCreated waits until a creating volume is available. A volume still
// creating staleCreating after it was made, by Cinder's own clock (its
// created_at against the Date of the answer that showed it), gets one
// DELETE: Cinder destroys a volume no backend took (no host) at once,
// whatever its status, and refuses (400) one a backend is creating, whose
// wait then goes on. A volume whose age Cinder did not say is waited for,
// never deleted. It returns nil when the volume is gone and a new one is
// needed.
func (p *Provisioner) waitCreated(ctx context.Context, vol *cinder.Volume) (*cinder.Volume, error) {
	id := vol.ID
	age, known := vol.Age()
	if !known || age < staleCreating {
		wctx, cancel := context.WithTimeout(ctx, staleCreating-age)
		v, err := p.cinder.WaitForVolumeStatus(wctx, id, cinder.StatusAvailable)
		cancel()
		var we *cinder.WaitError
		if err == nil || ctx.Err() != nil || !errors.As(err, &we) || !known {
			return v, err
		}
	}
	err := p.cinder.DeleteVolume(ctx, id)
	switch {
	case err == nil:
		klog.FromContext(ctx).Info("Deleted volume that Cinder never scheduled", "volumeID", id, "created", vol.CreatedAt, "cinderTime", vol.ReadAt)
		if err := p.cinder.WaitForVolumeDeleted(ctx, id); err != nil {
			return nil, fmt.Errorf("wait for volume %s, never scheduled, to go: %w", id, err)
		}
		return nil, nil
	case errors.Is(err, cinder.ErrInvalid):
		// a backend holds it: its create is under way, or was lost with a
		// cinder-volume that died holding it (Cinder acknowledges the
		// message before it records who works on it, so nothing of
		// Cinder's ever ends that create)
		v, err := p.cinder.WaitForVolumeStatus(ctx, id, cinder.StatusAvailable)
		var we *cinder.WaitError
		if errors.As(err, &we) && we.Last == cinder.StatusCreating {
			return nil, &stuckVolumeError{id: id, status: cinder.StatusCreating, fix: stuckFix(id, cinder.StatusCreating)}
		}
		return v, err
	}
	return nil, fmt.Errorf("delete volume %s, creating since %s: %w", id, vol.CreatedAt.Format(time.RFC3339), err)
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// mismatch lists how a reused volume differs from the request.
func mismatch(vol *cinder.Volume, req *request) []string {
	var diffs []string
	if vol.SizeGiB != req.sizeGiB {
		diffs = append(diffs, fmt.Sprintf("size %d GiB, the claim asks for %d GiB", vol.SizeGiB, req.sizeGiB))
	}
	// Cinder shows the type's name; a class may name the type by id
	if t := req.params.VolumeType; t != "" && vol.VolumeType != t && !uuidRE.MatchString(t) {
		diffs = append(diffs, fmt.Sprintf("volume type %q, the class asks for %q", vol.VolumeType, t))
	}
	if z := req.params.Availability; z != "" && vol.AvailabilityZone != z {
		diffs = append(diffs, fmt.Sprintf("availability zone %q, the class asks for %q", vol.AvailabilityZone, z))
	}
	diffs = append(diffs, sourceMismatch(vol, req.source)...)
	return diffs
}

// createVolume makes the claim's volume and waits until it is available
// (ok); else it ends the attempt (!ok).
func (p *Provisioner) createVolume(ctx context.Context, opts controller.ProvisionOptions, req *request) (vol *cinder.Volume, res result, ok bool) {
	logger := klog.FromContext(ctx)
	endCreate := p.metrics.timePhase(opProvision, phaseCreate)
	answered := p.inflight.sending(opts.PVC.UID)
	vol, err := p.cinder.CreateVolume(ctx, cinder.CreateRequest{
		Name:             opts.PVName,
		SizeGiB:          req.sizeGiB,
		VolumeType:       req.params.VolumeType,
		AvailabilityZone: req.zone,
		Description:      fmt.Sprintf("Kubernetes volume %s for claim %s/%s (cluster %s)", opts.PVName, opts.PVC.Namespace, opts.PVC.Name, p.clusterID),
		Metadata:         req.source.metadata(p.volumeMetadata(opts, req)),
		SourceVolumeID:   req.source.cloneOf(),
		SnapshotID:       req.source.restoreOf(),
	})
	endCreate()
	answered(err == nil || rejected(err))
	if err != nil {
		// the Cinder error already names the operation and the volume
		if rejected(err) {
			// Cinder refused, and the lookup found no earlier volume:
			// nothing of the claim exists
			return nil, result{out: refused, undo: undoSource, err: err}, false
		}
		// the answer may be lost after Cinder made it: the next attempt
		// finds it by name
		return nil, retryLater(err), false
	}
	logger.V(4).Info("Created volume", "volumeID", vol.ID)
	endWait := p.metrics.timePhase(opProvision, phaseWait)
	avail, err := p.cinder.WaitForVolumeStatus(ctx, vol.ID, cinder.StatusAvailable)
	endWait()
	var vse *cinder.VolumeStatusError
	switch {
	case errors.As(err, &vse):
		return nil, refuse(req, vol.ID, err), false
	case err != nil:
		// still creating, or Cinder unreachable: Cinder refuses to delete
		// a creating volume, the next attempt waits again
		return nil, retryLater(err), false
	}
	return avail, result{}, true
}

// removeVolume deletes a volume of ours whatever status interrupted work
// left it in, and waits until Cinder no longer knows it. It reads the status
// first and acts on it: a volume already deleting is waited for, never sent
// DELETE again; exports in any state are cleared first; error_deleting is a
// *stuckVolumeError.
// The connector is the one the volume's exports were made for (legacy
// teardown names it).
func (p *Provisioner) removeVolume(ctx context.Context, id string, connector cinder.Connector) error {
	var vol *cinder.Volume // what the last call showed; nil: read it
	for round := 0; round < maxRecoverRounds; round++ {
		if vol == nil {
			var err error
			vol, err = p.cinder.GetVolume(ctx, id)
			if errors.Is(err, cinder.ErrNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("get volume %s: %w", id, err)
			}
		}
		switch {
		case vol.Status == cinder.StatusDeleting:
			return p.cinder.WaitForVolumeDeleted(ctx, id)
		case vol.Status == cinder.StatusErrorDeleting:
			return &stuckVolumeError{id: id, status: vol.Status, fix: stuckFix(id, vol.Status)}
		case vol.Status == cinder.StatusCreating:
			// Cinder deletes a volume no backend took at once; it refuses
			// one a backend is creating until the create ends
			err := p.cinder.DeleteVolume(ctx, id)
			if err == nil {
				return p.cinder.WaitForVolumeDeleted(ctx, id)
			}
			if !errors.Is(err, cinder.ErrInvalid) {
				return err
			}
			if _, err := p.cinder.WaitForVolumeStatus(ctx, id, cinder.StatusAvailable); err != nil && !errors.Is(err, cinder.ErrVolumeError) {
				return fmt.Errorf("wait for volume %s to finish creating before deleting it: %w", id, err)
			}
			vol = nil
			continue
		case !cinder.Deletable(vol.Status) || len(vol.AttachmentIDs) > 0:
			switch vol.Status {
			case cinder.StatusReserved, cinder.StatusAttaching, cinder.StatusInUse, cinder.StatusDetaching, cinder.StatusAvailable:
				cleared, err := p.cinder.ClearExports(ctx, id, connector)
				if errors.Is(err, cinder.ErrNotFound) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("remove exports of volume %s: %w", id, err)
				}
				vol = cleared
				continue
			}
			return &stuckVolumeError{id: id, status: vol.Status, fix: stuckFix(id, vol.Status)}
		}
		err := p.cinder.DeleteVolume(ctx, id)
		if errors.Is(err, cinder.ErrInvalid) {
			// snapshots (Cinder's 400 does not say which reason), else the
			// status changed since the read: read again
			if err := p.checkNoSnapshots(ctx, id); err != nil {
				return err
			}
			vol = nil
			continue
		}
		if err != nil {
			return err
		}
		return p.cinder.WaitForVolumeDeleted(ctx, id)
	}
	return fmt.Errorf("volume %s keeps changing status: will retry the delete", id)
}
