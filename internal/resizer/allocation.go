package resizer

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// What the claim's status says of a resize, as Kubernetes' recovery from
// expansion failure (RecoverVolumeExpansionFailure, GA) defines it and
// external-resizer writes it:
//   - status.allocatedResources[storage]: the size the storage is asked to
//     hold. ResourceQuota charges the larger of it and the request, so it is
//     written before os-extend leaves, and is never below what Cinder holds
//     or is extending to: a request lowered meanwhile (Kubernetes allows it
//     down to just above status.capacity) is never under-charged;
//   - status.allocatedResourceStatuses[storage]: ControllerResizeInProgress
//     from that record until the resize ends, ControllerResizeInfeasible
//     when Cinder refused it for good; cleared when the claim shows the new
//     size (NodeResizePending for a filesystem the kubelet grows).

func storageStatus(c *corev1.PersistentVolumeClaim) corev1.ClaimResourceStatus {
	return c.Status.AllocatedResourceStatuses[corev1.ResourceStorage]
}

// allocatedGiB is status.allocatedResources[storage] in whole GiB, rounded
// up (0: none).
func allocatedGiB(c *corev1.PersistentVolumeClaim) int64 {
	q, ok := c.Status.AllocatedResources[corev1.ResourceStorage]
	if !ok || q.Sign() <= 0 {
		return 0
	}
	return (q.Value() + giB - 1) / giB
}

func gibQuantity(sizeGiB int64) resource.Quantity {
	return *resource.NewQuantity(sizeGiB*giB, resource.BinarySI)
}

// target is the size, in GiB, the claim's volume must reach: its request,
// except while a resize recorded on the claim may still be running
// (ControllerResizeInProgress): then at least the size recorded, which
// Cinder may already be extending to. A lower request replaces the
// recorded size only once Cinder refused it for good (settled: in this
// process; ControllerResizeInfeasible: on the claim), as external-resizer's
// expandAndRecover allows it only after a final error.
func target(c *corev1.PersistentVolumeClaim, reqGiB int64, settled bool) int64 {
	if storageStatus(c) == corev1.PersistentVolumeClaimControllerResizeInProgress && !settled {
		return max(reqGiB, allocatedGiB(c))
	}
	return reqGiB
}

// record writes on the claim, before os-extend leaves, that Cinder is asked
// to hold sizeGiB (allocatedResources) and that a controller resize is under
// way (external-resizer's markControllerResizeInProgress). A merge patch of
// the status conditional on the claim read (resourceVersion): a claim
// changed meanwhile (a new request) is read again by the next pass. It
// returns the claim as patched.
func (r *Resizer) record(ctx context.Context, c *corev1.PersistentVolumeClaim, sizeGiB int64) (*corev1.PersistentVolumeClaim, error) {
	want := gibQuantity(sizeGiB)
	if have, ok := c.Status.AllocatedResources[corev1.ResourceStorage]; ok && have.Cmp(want) == 0 &&
		storageStatus(c) == corev1.PersistentVolumeClaimControllerResizeInProgress {
		return c, nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": c.ResourceVersion},
		"status": map[string]any{
			"allocatedResources":        map[string]any{string(corev1.ResourceStorage): want.String()},
			"allocatedResourceStatuses": map[string]any{string(corev1.ResourceStorage): corev1.PersistentVolumeClaimControllerResizeInProgress},
		},
	})
	if err != nil {
		return nil, err
	}
	updated, err := r.kube.CoreV1().PersistentVolumeClaims(c.Namespace).Patch(ctx, c.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, fmt.Errorf("record allocatedResources %s on claim %s/%s: %w", want.String(), c.Namespace, c.Name, err)
	}
	return updated, nil
}

// markInfeasible says on the claim that its recorded resize failed for good
// (external-resizer's markControllerExpansionInfeasible). allocatedResources
// stays: quota keeps charging the size asked until the user lowers the
// request, which target then takes. Not conditional on the claim read, as
// external-resizer: the failure is a fact whatever changed meanwhile.
func (r *Resizer) markInfeasible(ctx context.Context, c *corev1.PersistentVolumeClaim) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"allocatedResourceStatuses": map[string]any{string(corev1.ResourceStorage): corev1.PersistentVolumeClaimControllerResizeInfeasible},
	}})
	if err != nil {
		return err
	}
	if _, err := r.kube.CoreV1().PersistentVolumeClaims(c.Namespace).Patch(ctx, c.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("mark claim %s/%s ControllerResizeInfeasible: %w", c.Namespace, c.Name, err)
	}
	return nil
}
