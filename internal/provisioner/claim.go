package provisioner

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

const giB = 1 << 30

// checkClaim refuses claims the provisioner cannot serve and returns the
// requested size in GiB, rounded up (Cinder sizes volumes in whole GiB).
func checkClaim(claim *corev1.PersistentVolumeClaim) (int, error) {
	if claim.Spec.Selector != nil {
		return 0, &claimError{"a claim with a selector cannot be provisioned dynamically: remove spec.selector"}
	}
	if len(claim.Spec.AccessModes) == 0 {
		return 0, &claimError{"the claim names no access mode: set spec.accessModes (ReadWriteOnce)"}
	}
	block := claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode == corev1.PersistentVolumeBlock
	for _, m := range claim.Spec.AccessModes {
		switch m {
		case corev1.ReadWriteOnce, corev1.ReadWriteOncePod, corev1.ReadOnlyMany:
		case corev1.ReadWriteMany:
			if !block {
				return 0, &claimError{"ReadWriteMany is only possible with volumeMode: Block on a multiattach volume type (a block device shared by several nodes needs a cluster-aware application; no filesystem here is)"}
			}
		default:
			return 0, &claimError{fmt.Sprintf("access mode %q is not supported", m)}
		}
	}
	req, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok || req.Sign() <= 0 {
		return 0, &claimError{"the claim requests no storage: set spec.resources.requests.storage"}
	}
	bytes := req.Value()
	gib := (bytes + giB - 1) / giB
	if gib > 1<<31-1 {
		return 0, &claimError{fmt.Sprintf("requested size %s is too large", req.String())}
	}
	return int(gib), nil
}

func needsMultiattach(claim *corev1.PersistentVolumeClaim) bool {
	return slices.Contains(claim.Spec.AccessModes, corev1.ReadWriteMany)
}
