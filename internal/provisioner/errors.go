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
// lacks names the key it exists without ("" when it does not exist).
type missingSecretError struct{ namespace, name, lacks string }

func (e *missingSecretError) Error() string {
	if e.lacks != "" {
		return fmt.Sprintf("Secret %s/%s named by the StorageClass (cephSecretName/cephSecretNamespace) has no %s: ceph-csi needs the Ceph user's userID and userKey in it", e.namespace, e.name, e.lacks)
	}
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

// snapshotsLeftError is a volume to delete that still has snapshots:
// Cinder refuses to delete it until they are gone. The volume (and its PV)
// stay; the library retries with backoff.
type snapshotsLeftError struct {
	volumeID  string
	snapshots []cinder.Snapshot
}

func (e *snapshotsLeftError) Error() string {
	names := make([]string, 0, len(e.snapshots))
	for _, s := range e.snapshots {
		names = append(names, fmt.Sprintf("%s (%s, %s)", s.ID, s.Name, s.Status))
	}
	return fmt.Sprintf("Cinder volume %s has %d snapshot(s): %s; Cinder does not delete a volume with snapshots, so the volume stays until they are deleted (delete the VolumeSnapshots of Delete policy, or the Cinder snapshots of Retain contents with openstack volume snapshot delete); retried with backoff",
		e.volumeID, len(e.snapshots), strings.Join(names, ", "))
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
	case cinder.StatusCreating:
		return fmt.Sprintf("a backend took its create long ago and Cinder refuses to delete it; a large clone or image can take this long, but if cinder-volume restarted meanwhile the create was lost and the volume stays creating for ever: then reset it (openstack volume set --state error %s) and the next attempt replaces it", id)
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

// errorClass is what an error means for a claim: the reason of its Warning
// Event, a hint on what to do that the error itself does not give, whether
// a refusal for it is final (it follows from the claim, its class and the
// class's backend alone, so it is remembered, see refusals), and whether it
// sends the claim back to the scheduler (ProvisioningReschedule).
type errorClass struct {
	reason     string
	hint       string
	final      bool
	reschedule bool
}

// errorRow is one row of errorTable: the first row whose match holds
// classifies the error.
type errorRow struct {
	match func(error) bool
	class errorClass
}

// errorTable is the one place that says what each error does: read top to
// bottom, the first match wins (a node error before the Cinder error it may
// wrap, a zone Cinder does not know before any other rejected request).
var errorTable = []errorRow{
	{anyOf(as[*ParameterError], as[*mapper.ParameterError]), errorClass{reason: ReasonInvalidParameter, hint: "fix the StorageClass parameters", final: true}},
	{as[*claimError], errorClass{reason: ReasonInvalidClaim, final: true}},
	{as[*sourceError], errorClass{reason: ReasonInvalidDataSource, hint: "the provisioner retries; fix or wait for the data source"}},
	{as[*nodeGoneError], errorClass{reason: ReasonSelectedNodeGone, reschedule: true}},
	{as[*zoneError], errorClass{reason: ReasonInvalidZone}},
	{unknownZone, errorClass{reason: ReasonInvalidZone, hint: "use a zone Cinder knows (openstack availability zone list --volume) in the class's availability, allowedTopologies or the nodes' zone label"}},
	{as[*nodeError], errorClass{reason: ReasonInvalidNodeAnnotation}},
	{as[*missingSecretError], errorClass{reason: ReasonMissingSecret}},
	{as[*stuckVolumeError], errorClass{reason: ReasonVolumeStuck}},
	{as[*mismatchError], errorClass{reason: ReasonVolumeMismatch}},
	{as[*foreignSecretError], errorClass{reason: ReasonSecretConflict}},
	{anyOf(as[*nameConflictError], as[*cinder.DuplicateNameError]), errorClass{reason: ReasonNameConflict, hint: "remove or rename the other volume in Cinder"}},
	{as[*mapper.UnsupportedTransportError], errorClass{reason: ReasonUnsupportedTransport, hint: "use a volume type whose backend exports over iSCSI, Ceph RBD or Fibre Channel", final: true}},
	{as[*mapper.FieldError], errorClass{reason: ReasonInvalidConnectionInfo, hint: "check the Cinder backend's export configuration", final: true}},
	{is(cinder.ErrQuotaExceeded), errorClass{reason: ReasonQuotaExceeded, hint: "raise the project's Cinder quota or free volumes"}},
	{anyOf(as[*cinder.VolumeStatusError], is(cinder.ErrVolumeError)), errorClass{reason: ReasonVolumeError, hint: "check the cinder-scheduler and cinder-volume logs for this volume (no backend for the type or zone, or backend failure)"}},
	{anyOf(is(cinder.ErrInvalid), is(cinder.ErrNotFound)), errorClass{reason: ReasonCinderRejected, hint: "check the StorageClass's type and availability against Cinder's volume types and zones"}},
	{is(cinder.ErrUnauthorized), errorClass{reason: ReasonCinderRejected, hint: "check the provisioner's Cinder credentials"}},
	{transient, errorClass{reason: ReasonCinderUnavailable, hint: "will retry"}},
}

// classify is the class of the first row of errorTable that matches err;
// ProvisioningFailed, neither final nor rescheduling, when none does.
func classify(err error) errorClass {
	for _, row := range errorTable {
		if row.match(err) {
			return row.class
		}
	}
	return errorClass{reason: ReasonProvisioningFailed}
}

// as matches an error that errors.As finds of type T.
func as[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// is matches an error that errors.Is finds to be target.
func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// anyOf matches an error that any of match matches.
func anyOf(match ...func(error) bool) func(error) bool {
	return func(err error) bool {
		for _, m := range match {
			if m(err) {
				return true
			}
		}
		return false
	}
}

// unknownZone matches Cinder's refusal of an availability zone it does not
// know (400 InvalidAvailabilityZone: "Availability zone '...' is invalid.").
func unknownZone(err error) bool {
	return errors.Is(err, cinder.ErrInvalid) && strings.Contains(err.Error(), "Availability zone '")
}

// warn records a Warning Event on the claim. Errors never carry credentials:
// the Cinder side and the mappers guarantee that.
func (p *Provisioner) warn(claim *corev1.PersistentVolumeClaim, err error) {
	if p.recorder == nil || claim == nil {
		return
	}
	class := classify(err)
	msg := err.Error()
	if class.hint != "" {
		msg += " (" + class.hint + ")"
	}
	p.recorder.Event(claim, corev1.EventTypeWarning, class.reason, msg)
}
