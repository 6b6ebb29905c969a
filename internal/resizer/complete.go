package resizer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// transport is the kind of PV source the provisioner made.
type transport string

const (
	transportISCSI   transport = "iSCSI"
	transportFC      transport = "Fibre Channel"
	transportCSI     transport = "ceph-csi RBD"
	transportUnknown transport = ""
)

func transportOf(pv *corev1.PersistentVolume) transport {
	switch {
	case pv.Spec.ISCSI != nil:
		return transportISCSI
	case pv.Spec.FC != nil:
		return transportFC
	case pv.Spec.CSI != nil:
		return transportCSI
	}
	return transportUnknown
}

func isBlock(pv *corev1.PersistentVolume) bool {
	return pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == corev1.PersistentVolumeBlock
}

// complete brings the claim's status to the PV's capacity the way the
// transport allows, when the claim shows less. allocatedResources[storage]
// becomes the PV's capacity, what Cinder holds: at least what was recorded
// before the extend (target never extends below it), and what ResourceQuota
// goes on charging when the request was lowered meanwhile (a Cinder volume
// cannot shrink).
//   - block mode, any transport: status.capacity is the PV's and
//     allocatedResourceStatuses[storage] is cleared, as Kubernetes ends a
//     resize (external-resizer's markOverallExpansionAsFinished, the
//     kubelet's MarkNodeExpansionFinishedWithRecovery: both keep
//     allocatedResources); the node sees the new size at its next login or
//     attach;
//   - a ceph-csi RBD filesystem: allocatedResourceStatuses[storage] is
//     NodeResizePending: the kubelet calls NodeExpandVolume, grows the
//     filesystem and sets status.capacity (unless a node resize is already
//     under way or done);
//   - an iSCSI or FC filesystem: nothing (check refused any grow of one).
func (r *Resizer) complete(ctx context.Context, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, volumeID string) result {
	pvCap := capacityOf(pv)
	if have, ok := claim.Status.Capacity[corev1.ResourceStorage]; ok && have.Cmp(pvCap) >= 0 {
		return result{out: idle}
	}
	t := transportOf(pv)
	c := claim.DeepCopy()
	if c.Status.AllocatedResources == nil {
		c.Status.AllocatedResources = corev1.ResourceList{}
	}
	var res result
	switch {
	case isBlock(pv):
		if c.Status.Capacity == nil {
			c.Status.Capacity = corev1.ResourceList{}
		}
		c.Status.Capacity[corev1.ResourceStorage] = pvCap
		c.Status.AllocatedResources[corev1.ResourceStorage] = pvCap
		delete(c.Status.AllocatedResourceStatuses, corev1.ResourceStorage)
		if len(c.Status.AllocatedResourceStatuses) == 0 {
			c.Status.AllocatedResourceStatuses = nil
		}
		res = result{out: resized, reason: ReasonResized, message: fmt.Sprintf(
			"Cinder volume %s, PV %s and the claim are now %s. A raw block device shows the new size on a node at its next %s (a pod started after now); "+
				"a running pod sees it after a rescan on its node (iSCSI: iscsiadm -m session --rescan; FC: echo 1 > /sys/block/<dev>/device/rescan).%s",
			volumeID, pv.Name, pvCap.String(), loginWord(t), lowered(c, pvCap))}
	case t == transportCSI:
		if s, ok := c.Status.AllocatedResourceStatuses[corev1.ResourceStorage]; ok && s != corev1.PersistentVolumeClaimControllerResizeInProgress &&
			s != corev1.PersistentVolumeClaimControllerResizeInfeasible {
			if alloc, ok := c.Status.AllocatedResources[corev1.ResourceStorage]; ok && alloc.Cmp(pvCap) >= 0 {
				return result{out: idle} // the kubelet's: pending, in progress or failed (it retries)
			}
		}
		if c.Status.AllocatedResourceStatuses == nil {
			c.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{}
		}
		c.Status.AllocatedResources[corev1.ResourceStorage] = pvCap
		c.Status.AllocatedResourceStatuses[corev1.ResourceStorage] = corev1.PersistentVolumeClaimNodeResizePending
		res = result{out: nodePending, reason: ReasonNodeExpansionPending, message: fmt.Sprintf(
			"Cinder volume %s and PV %s are now %s; the kubelet grows the filesystem (ceph-csi NodeExpandVolume) on the node that mounts the claim, "+
				"when a pod uses it, and then the claim shows the new size.%s", volumeID, pv.Name, pvCap.String(), lowered(c, pvCap))}
	default:
		return result{out: idle}
	}
	if _, err := r.kube.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return result{out: gone}
		}
		return result{out: retry, err: fmt.Errorf("update status of claim %s/%s: %w", c.Namespace, c.Name, err)}
	}
	return res
}

// lowered says, when the request is below what the volume now holds (it was
// lowered while the volume was being extended), what the claim keeps and
// what quota charges.
func lowered(c *corev1.PersistentVolumeClaim, size resource.Quantity) string {
	req := c.Spec.Resources.Requests[corev1.ResourceStorage]
	if req.Cmp(size) >= 0 {
		return ""
	}
	return fmt.Sprintf(" The request %s is below that: it was lowered while Cinder was extending the volume, and a Cinder volume cannot shrink; "+
		"status.allocatedResources says %s, which ResourceQuota charges.", req.String(), size.String())
}

func loginWord(t transport) string {
	switch t {
	case transportISCSI:
		return "iSCSI login"
	case transportFC:
		return "attach (LUN scan)"
	}
	return "attach (rbd map)"
}
