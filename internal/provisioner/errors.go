package provisioner

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// claimError is a claim the provisioner cannot serve as it is.
type claimError struct{ msg string }

func (e *claimError) Error() string { return e.msg }

// missingSecretError is an admin-supplied Secret a StorageClass names that
// does not exist.
type missingSecretError struct{ namespace, name string }

func (e *missingSecretError) Error() string {
	return fmt.Sprintf("Secret %s/%s named by the StorageClass (cephSecretName/cephSecretNamespace) does not exist: create it with the Ceph user's userID and userKey", e.namespace, e.name)
}

// nameConflictError is a Cinder volume that carries the PV's name but
// belongs to another cluster: it is never touched.
type nameConflictError struct{ name, id, cluster string }

func (e *nameConflictError) Error() string {
	return fmt.Sprintf("Cinder volume %s named %s belongs to cluster %q, not this one: it is left alone; check that every cluster sharing this Cinder project has its own --cluster-id", e.id, e.name, e.cluster)
}

// foreignSecretError is a Secret with the name a PV's Secret needs that
// this provisioner did not make for that PV.
type foreignSecretError struct{ namespace, name, pv string }

func (e *foreignSecretError) Error() string {
	return fmt.Sprintf("Secret %s/%s exists and is not this provisioner's for PV %s: remove or rename it", e.namespace, e.name, e.pv)
}

// stuckVolumeError is a volume in a status nothing of ours can undo: an
// admin must act.
type stuckVolumeError struct {
	id, status string
	fix        string
}

func (e *stuckVolumeError) Error() string {
	return fmt.Sprintf("Cinder volume %s is %s, which the provisioner cannot undo: %s; it retries until then", e.id, e.status, e.fix)
}

// stuckFix says what an admin can do about a volume in a status the
// provisioner cannot leave.
func stuckFix(id, status string) string {
	switch status {
	case cinder.StatusErrorDeleting:
		return fmt.Sprintf("the backend failed to delete it; check cinder-volume's log, then reset it (openstack volume set --state error %s) so it can be deleted again", id)
	case "maintenance", "extending", "retyping", "backing-up", "restoring-backup", "downloading", "uploading", "awaiting-transfer":
		return fmt.Sprintf("an operation outside this provisioner holds it; wait for it to finish or reset it (openstack volume set --state available %s)", id)
	}
	return fmt.Sprintf("check it in Cinder and reset its state (openstack volume set --state available %s) or delete it", id)
}

// mismatchError is a volume of an earlier attempt that does not match what
// the claim and class ask for now: it is never bound silently.
type mismatchError struct {
	id    string
	diffs []string
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("Cinder volume %s, made for this claim by an earlier attempt, does not match the request (%s): delete that volume in Cinder to have it made anew, or restore the StorageClass it was made for", e.id, strings.Join(e.diffs, "; "))
}

// nodeError is a selected node whose annotations the provisioner cannot use.
type nodeError struct {
	node string
	err  error
}

func (e *nodeError) Error() string {
	return fmt.Sprintf("node %s: %v: fix the node's FC annotations or set fcWWPNs in the StorageClass", e.node, e.err)
}

func (e *nodeError) Unwrap() error { return e.err }

// failure classifies a Provision error for the Warning Event on the claim:
// the reason, and a hint on what to do that the error itself does not give.
func failure(err error) (reason, hint string) {
	var (
		pe  *ParameterError
		mpe *mapper.ParameterError
		ce  *claimError
		mse *missingSecretError
		nce *nameConflictError
		ne  *nodeError
		ute *mapper.UnsupportedTransportError
		fe  *mapper.FieldError
		vse *cinder.VolumeStatusError
		dne *cinder.DuplicateNameError
		fse *foreignSecretError
		sve *stuckVolumeError
		mme *mismatchError
		soe *sourceError
		nge *nodeGoneError
		zne *zoneError
	)
	switch {
	case errors.As(err, &pe), errors.As(err, &mpe):
		return ReasonInvalidParameter, "fix the StorageClass parameters"
	case errors.As(err, &ce):
		return ReasonInvalidClaim, ""
	case errors.As(err, &soe):
		return ReasonInvalidDataSource, "the provisioner retries; fix or wait for the data source"
	case errors.As(err, &nge):
		return ReasonSelectedNodeGone, ""
	case errors.As(err, &zne):
		return ReasonInvalidZone, ""
	case invalidZone(err):
		return ReasonInvalidZone, "use a zone Cinder knows (openstack availability zone list --volume) in the class's availability, allowedTopologies or the nodes' " + "zone label"
	case errors.As(err, &ne):
		return ReasonInvalidNodeAnnotation, ""
	case errors.As(err, &mse):
		return ReasonMissingSecret, ""
	case errors.As(err, &sve):
		return ReasonVolumeStuck, ""
	case errors.As(err, &mme):
		return ReasonVolumeMismatch, ""
	case errors.As(err, &fse):
		return ReasonSecretConflict, ""
	case errors.As(err, &nce), errors.As(err, &dne):
		return ReasonNameConflict, "remove or rename the other volume in Cinder"
	case errors.As(err, &ute):
		return ReasonUnsupportedTransport, "use a volume type whose backend exports over iSCSI, Ceph RBD or Fibre Channel"
	case errors.As(err, &fe):
		return ReasonInvalidConnectionInfo, "check the Cinder backend's export configuration"
	case errors.Is(err, cinder.ErrQuotaExceeded):
		return ReasonQuotaExceeded, "raise the project's Cinder quota or free volumes"
	case errors.As(err, &vse), errors.Is(err, cinder.ErrVolumeError):
		return ReasonVolumeError, "check the cinder-scheduler and cinder-volume logs for this volume (no backend for the type or zone, or backend failure)"
	case errors.Is(err, cinder.ErrInvalid), errors.Is(err, cinder.ErrNotFound):
		return ReasonCinderRejected, "check the StorageClass's type and availability against Cinder's volume types and zones"
	case errors.Is(err, cinder.ErrUnauthorized):
		return ReasonCinderRejected, "check the provisioner's Cinder credentials"
	case transient(err):
		return ReasonCinderUnavailable, "will retry"
	default:
		return ReasonProvisioningFailed, ""
	}
}

// warn records a Warning Event on the claim. Errors never carry credentials:
// the Cinder side and the mappers guarantee that.
func (p *Provisioner) warn(claim *corev1.PersistentVolumeClaim, err error) {
	if p.recorder == nil || claim == nil {
		return
	}
	reason, hint := failure(err)
	msg := err.Error()
	if hint != "" {
		msg += " (" + hint + ")"
	}
	p.recorder.Event(claim, corev1.EventTypeWarning, reason, msg)
}
