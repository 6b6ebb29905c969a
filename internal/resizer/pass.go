package resizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

const giB = 1 << 30

// pass runs one pass over the claim named by key, records its Event and
// metric, and returns its result.
func (r *Resizer) pass(ctx context.Context, key string) result {
	ctx, cancel := context.WithTimeout(ctx, r.passTimeout)
	defer cancel()
	res, claim := r.resize(ctx, key)
	r.metrics.Observe(res.out)
	if claim != nil {
		if res.out.remembered() {
			r.remember(claim.UID, res.wantGiB, res.reason)
		}
		r.settle(claim.UID, res)
	}
	logger := klog.FromContext(ctx).WithValues("claim", key, "outcome", res.out.String())
	switch {
	case res.out == retry && res.err != nil:
		logger.Error(res.err, "Resize not finished, retrying", "reason", res.reason)
	case res.out != idle:
		logger.V(2).Info("Resize pass", "reason", res.reason)
	}
	if claim != nil && res.reason != "" && res.out.eventType() != "" {
		r.recorder.Event(claim, res.out.eventType(), res.reason, res.message)
	}
	return res
}

// resize is the pass itself. It reads everything live (claim, PV, class,
// volume) and starts from what exists: a pass cut short anywhere (a crash
// after Cinder accepted the extend, a lost answer, a PV updated but not
// the claim) is finished by the next one, which finds the volume already
// grown and only completes what is left. The claim is returned for the
// Event (nil: none is recorded).
func (r *Resizer) resize(ctx context.Context, key string) (result, *corev1.PersistentVolumeClaim) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return result{out: idle}, nil
	}
	claim, err := r.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return result{out: gone}, nil
	}
	if err != nil {
		return result{out: retry, err: fmt.Errorf("read claim: %w", err)}, nil
	}
	if claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName == "" {
		return result{out: idle}, nil
	}
	pv, err := r.kube.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return result{out: gone}, nil
	}
	if err != nil {
		return result{out: retry, err: fmt.Errorf("read PV %s: %w", claim.Spec.VolumeName, err)}, nil
	}
	volumeID, ok := r.ours(pv)
	if !ok || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claim.UID {
		return result{out: idle}, nil
	}
	req, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok || req.Sign() <= 0 {
		return result{out: idle}, nil
	}
	wantGiB := target(claim, (req.Value()+giB-1)/giB, r.isSettled(claim.UID))
	pvCap := pv.Spec.Capacity[corev1.ResourceStorage]
	if wantGiB*giB <= pvCap.Value() {
		// Nothing to extend: finish what an earlier pass left (the PV
		// grown, the claim not yet; a request lowered meanwhile changes
		// nothing of it), or say a shrink cannot be.
		if alloc, ok := claim.Status.AllocatedResources[corev1.ResourceStorage]; ok && req.Cmp(alloc) < 0 && req.Cmp(pvCap) < 0 && !controllerResize(claim) {
			if r.remembered(claim.UID, wantGiB) {
				return result{out: refusedAgain}, claim
			}
			return refusal(wantGiB, ReasonShrinkUnsupported, fmt.Sprintf(
				"The request %s is below the volume's size %s: Cinder volumes cannot shrink; the volume keeps %s.",
				req.String(), pvCap.String(), pvCap.String())), claim
		}
		return r.complete(ctx, claim, pv, volumeID), claim
	}
	if s := storageStatus(claim); (s == corev1.PersistentVolumeClaimNodeResizePending || s == corev1.PersistentVolumeClaimNodeResizeInProgress) &&
		allocatedGiB(claim)*giB <= pvCap.Value() {
		// The kubelet is growing the filesystem to the PV's size: a larger
		// request waits for it to finish (external-resizer's
		// expandAndRecover), and its status is not overwritten meanwhile.
		klog.FromContext(ctx).V(4).Info("Node expansion under way, the larger request waits for it", "claim", key, "status", s)
		return result{out: idle}, claim
	}
	if r.remembered(claim.UID, wantGiB) {
		return result{out: refusedAgain}, claim
	}
	if res, ok := r.check(ctx, claim, pv, wantGiB); !ok {
		return res, claim
	}
	res, grown := r.extend(ctx, claim, volumeID, wantGiB)
	if grown == 0 {
		return res, claim
	}
	if pv, err = r.growPV(ctx, pv, grown); err != nil {
		if apierrors.IsNotFound(err) {
			return result{out: gone}, claim
		}
		return result{out: retry, err: err}, claim
	}
	// The claim as it is now: extend recorded the allocation on it, and its
	// user may have changed the request during the wait.
	claim, err = r.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return result{out: gone}, nil
	}
	if err != nil {
		return result{out: retry, err: fmt.Errorf("read claim: %w", err)}, nil
	}
	return r.complete(ctx, claim, pv, volumeID), claim
}

// controllerResize says whether the claim records a resize of ours, under
// way or refused.
func controllerResize(c *corev1.PersistentVolumeClaim) bool {
	s := storageStatus(c)
	return s == corev1.PersistentVolumeClaimControllerResizeInProgress || s == corev1.PersistentVolumeClaimControllerResizeInfeasible
}

// ours returns the Cinder volume id of a PV this provisioner made.
func (r *Resizer) ours(pv *corev1.PersistentVolume) (string, bool) {
	ann := pv.Annotations
	if ann[contract.AnnProvisionerIdentity] != r.name || ann[contract.AnnVolumeID] == "" {
		return "", false
	}
	return ann[contract.AnnVolumeID], true
}

// check refuses a grow before anything changes: a class that does not
// allow expansion, a transport whose filesystem nobody can grow.
func (r *Resizer) check(ctx context.Context, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, wantGiB int64) (result, bool) {
	className := pv.Spec.StorageClassName
	if claim.Spec.StorageClassName != nil && *claim.Spec.StorageClassName != "" {
		className = *claim.Spec.StorageClassName
	}
	class, err := r.kube.StorageV1().StorageClasses().Get(ctx, className, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return refusal(wantGiB, ReasonExpansionNotAllowed, fmt.Sprintf(
			"StorageClass %q is gone: without a class that sets allowVolumeExpansion: true the volume is not extended. %s",
			className, keeps(pv))), false
	case err != nil:
		return result{out: retry, err: fmt.Errorf("read StorageClass %s: %w", className, err)}, false
	case class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion:
		return refusal(wantGiB, ReasonExpansionNotAllowed, fmt.Sprintf(
			"StorageClass %q does not set allowVolumeExpansion: true: the volume is not extended; an admin can allow expansion on the class. %s",
			className, keeps(pv))), false
	}
	t := transportOf(pv)
	switch {
	case t == transportUnknown:
		return refusal(wantGiB, ReasonFilesystemExpansionUnsupported, fmt.Sprintf(
			"PV %s has no iSCSI, Fibre Channel or CSI source: nothing was changed.", pv.Name)), false
	case !isBlock(pv) && (t == transportISCSI || t == transportFC):
		return refusal(wantGiB, ReasonFilesystemExpansionUnsupported, fmt.Sprintf(
			"Not resized, nothing changed: PV %s is a filesystem on %s, and the kubelet's in-tree %s plugin cannot grow a filesystem (it has no node expansion), "+
				"so a larger Cinder volume would never show in the pod. %s For volumes that must grow use volumeMode: Block "+
				"(the provisioner resizes those), or make a new, larger claim and copy the data.",
			pv.Name, t, t, keeps(pv))), false
	}
	return result{}, true
}

// extend brings the Cinder volume to at least wantGiB and returns its size
// (0 when it is not there: the result says why). Before it sends os-extend
// it records wantGiB on the claim (record): it never sends one below the
// volume's size or below what the claim records as under way (target).
func (r *Resizer) extend(ctx context.Context, claim *corev1.PersistentVolumeClaim, id string, wantGiB int64) (result, int64) {
	v, err := r.cinder.GetVolume(ctx, id)
	if err != nil {
		return r.infeasible(ctx, claim, cinderFailed(wantGiB, id, err)), 0
	}
	before, sent := v.SizeGiB, false
	switch v.Status {
	case cinder.StatusExtending:
		// An extend of ours (an earlier pass, a lost answer) or an admin's:
		// wait for it, then look at the size.
	case cinder.StatusInUse, cinder.StatusAvailable:
		if int64(v.SizeGiB) >= wantGiB {
			return result{}, int64(v.SizeGiB) // an earlier pass extended it
		}
		if claim, err = r.record(ctx, claim, wantGiB); err != nil {
			if apierrors.IsNotFound(err) {
				return result{out: gone}, 0
			}
			return result{out: retry, err: err}, 0
		}
		if err := r.cinder.ExtendVolume(ctx, id, int(wantGiB)); err != nil {
			return r.infeasible(ctx, claim, cinderFailed(wantGiB, id, err)), 0
		}
		sent = true
	case cinder.StatusErrorExtending:
		return extendFailed(id, v.SizeGiB), 0
	default:
		return result{out: retry, reason: ReasonVolumeNotExtendable, message: fmt.Sprintf(
			"Cinder volume %s is %s, a status Cinder does not extend from; the resize is retried when it is in-use again.", id, v.Status)}, 0
	}
	v, err = r.cinder.WaitForVolumeStatus(ctx, id, cinder.StatusInUse, cinder.StatusAvailable)
	var vse *cinder.VolumeStatusError
	var we *cinder.WaitError
	switch {
	case errors.As(err, &vse) && vse.Status == cinder.StatusErrorExtending:
		return extendFailed(id, before), 0
	case errors.As(err, &we):
		return result{out: inProgress}, 0
	case err != nil:
		return r.infeasible(ctx, claim, cinderFailed(wantGiB, id, err)), 0
	}
	if int64(v.SizeGiB) < wantGiB && !sent {
		// The extend waited for was not ours for this size (an earlier
		// pass for a smaller request, an admin's): the next pass extends.
		return result{out: inProgress}, 0
	}
	if int64(v.SizeGiB) < wantGiB {
		return r.infeasible(ctx, claim, refusal(wantGiB, ReasonExtendRefused, fmt.Sprintf(
			"Cinder accepted the extend of volume %s to %d GiB but put it back %s at %d GiB: its scheduler found no backend able to extend it "+
				"(a backend that does not support extending an attached volume, online_extend_support False, or one without room). "+
				"Cinder's user messages say which: cinder --os-volume-api-version 3.3 message-list --resource_uuid %s. The volume is unchanged.",
			id, wantGiB, v.Status, v.SizeGiB, id))), 0
	}
	return result{}, int64(v.SizeGiB)
}

// infeasible passes res on; a refusal of a resize the claim records as
// under way also marks the claim ControllerResizeInfeasible (markInfeasible)
// and says what that means for the user.
func (r *Resizer) infeasible(ctx context.Context, claim *corev1.PersistentVolumeClaim, res result) result {
	if res.out != refused || storageStatus(claim) != corev1.PersistentVolumeClaimControllerResizeInProgress {
		return res
	}
	if err := r.markInfeasible(ctx, claim); err != nil {
		if apierrors.IsNotFound(err) {
			return result{out: gone}
		}
		// Not remembered: the next pass asks Cinder again and marks again.
		res.out, res.err = retry, err
		return res
	}
	alloc := claim.Status.AllocatedResources[corev1.ResourceStorage]
	res.message += fmt.Sprintf(" The claim's status says ControllerResizeInfeasible and keeps allocatedResources %s, which ResourceQuota charges", alloc.String())
	if res.reason == ReasonVolumeGone {
		res.message += "."
		return res
	}
	have := claim.Status.Capacity[corev1.ResourceStorage]
	res.message += fmt.Sprintf(": lower the request (Kubernetes allows down to just above status.capacity %s) and the lower size is tried, and charged, instead.", have.String())
	return res
}

func extendFailed(id string, size int) result {
	return result{out: retry, settled: true, reason: ReasonExtendFailed, message: fmt.Sprintf(
		"Cinder volume %s is error_extending: its backend failed to extend it (Cinder's volume log says why); it is still %d GiB and its data and export are as before. "+
			"Once the backend is fixed an admin resets it: cinder reset-state --state in-use %s (or openstack volume set --state in-use %s); the resize is then retried.",
		id, size, id, id)}
}

// cinderFailed turns a failed Cinder request into a result.
func cinderFailed(wantGiB int64, id string, err error) result {
	switch {
	case errors.Is(err, cinder.ErrOnlineExtendUnsupported):
		return refusal(wantGiB, ReasonOnlineExtendUnsupported, fmt.Sprintf(
			"Not resized, the volume is unchanged: Cinder volume %s is exported (in-use) and this Cinder does not offer microversion %s, which extending an attached volume needs (%v). "+
				"The provisioner never unexports a live PV to extend it. Upgrade Cinder, or make a new, larger claim and copy the data.",
			id, cinder.MicroversionExtendInUse, err))
	case errors.Is(err, cinder.ErrNotFound):
		return refusal(wantGiB, ReasonVolumeGone, fmt.Sprintf("Cinder volume %s of this claim's PV does not exist: %v.", id, err))
	case errors.Is(err, cinder.ErrQuotaExceeded):
		// Cinder's 413 comes before the volume changes: nothing is extending.
		return result{out: retry, settled: true, reason: ReasonQuotaExceeded, err: err, message: fmt.Sprintf(
			"Cinder refused to extend volume %s to %d GiB for lack of quota (%v); the volume is unchanged. Raise the project's gigabytes quota or set the request back; the resize is retried with backoff.",
			id, wantGiB, err)}
	case errors.Is(err, cinder.ErrUnauthorized):
		// Cinder's policy can forbid extending attached volumes
		// (volume_extension:volume_actions:extend_attached_volume), or the
		// credentials are refused: an admin has to act either way.
		return refusal(wantGiB, ReasonCinderRejected, fmt.Sprintf(
			"Cinder refused to extend volume %s to %d GiB (%v): its policy may forbid extending attached volumes (volume_extension:volume_actions:extend_attached_volume), or the provisioner's credentials lack the right.",
			id, wantGiB, err))
	case errors.Is(err, cinder.ErrInvalid):
		return refusal(wantGiB, ReasonCinderRejected, fmt.Sprintf("Cinder refused to extend volume %s to %d GiB: %v.", id, wantGiB, err))
	}
	return result{out: retry, reason: ReasonCinderUnavailable, err: err, message: fmt.Sprintf(
		"Cannot extend Cinder volume %s now (%v); retried with backoff.", id, err)}
}

// refusal is a final refusal of this request (pass remembers it).
func refusal(wantGiB int64, reason, msg string) result {
	return result{out: refused, settled: true, reason: reason, message: msg, wantGiB: wantGiB}
}

// growPV sets the PV's capacity to sizeGiB unless it shows as much already.
func (r *Resizer) growPV(ctx context.Context, pv *corev1.PersistentVolume, sizeGiB int64) (*corev1.PersistentVolume, error) {
	want := *resource.NewQuantity(sizeGiB*giB, resource.BinarySI)
	if have := capacityOf(pv); have.Cmp(want) >= 0 {
		return pv, nil
	}
	// A merge patch of the capacity alone, conditional on the PV being the
	// one read (resourceVersion): a PV changed meanwhile is a conflict and
	// the next pass reads it again.
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": pv.ResourceVersion},
		"spec":     map[string]any{"capacity": map[string]any{string(corev1.ResourceStorage): want.String()}},
	})
	if err != nil {
		return nil, err
	}
	updated, err := r.kube.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("update capacity of PV %s to %s: %w", pv.Name, want.String(), err)
	}
	return updated, nil
}

func capacityOf(pv *corev1.PersistentVolume) resource.Quantity {
	return pv.Spec.Capacity[corev1.ResourceStorage]
}

// keeps says what a refused claim is left with. Kubernetes lets a request
// go down only to above status.capacity (validation.go
// ValidatePersistentVolumeClaimUpdate), so it cannot be taken back; the
// refusal is remembered and not repeated for the same request.
func keeps(pv *corev1.PersistentVolume) string {
	q := capacityOf(pv)
	return fmt.Sprintf("The claim keeps working at %s and its status is untouched; the larger request stays unmet (Kubernetes does not let a request go back to its status.capacity) and is not tried again until it changes.", q.String())
}
