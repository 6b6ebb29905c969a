package provisioner

import (
	"context"
	"errors"

	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// outcome is how one Provision attempt ended. Every result a step returns
// names one, so the library's ProvisioningState follows from a fact the
// attempt established ("might a volume of this claim's name exist?"), never
// from which step happened to fail.
type outcome int

const (
	// bound: a PV is returned for exactly one volume.
	bound outcome = iota
	// refused: the claim cannot be served as it is, and nothing of it is
	// left on Cinder: no volume was made, or it was removed again.
	refused
	// refusedAgain: the same refusal as an earlier attempt of the same claim
	// and class; nothing was sent to Cinder and no new Event is due.
	refusedAgain
	// pending: a volume of the claim's name exists or may exist (made by
	// this or an earlier attempt, a request whose answer was lost, a lookup
	// that failed, a cleanup that did not finish). The library must call
	// again, also after the claim is deleted, so the volume never strands.
	pending
	// forgotten: the claim is gone and nothing of it is left; there is
	// nothing to report to anyone.
	forgotten
	// ignored: the claim is another controller's to fill (a data source
	// of a kind only a volume populator knows); nothing was made, no Event.
	// Its error is a bare *controller.IgnoredError: the library tells it by
	// a type assertion, not errors.As.
	ignored
	// rescheduled: the selected node cannot be served (it is gone); nothing
	// was made, the scheduler must pick another node
	// (ProvisioningReschedule: the library removes the selected-node
	// annotation).
	rescheduled
)

func (o outcome) String() string {
	switch o {
	case bound:
		return "bound"
	case refused:
		return "refused"
	case refusedAgain:
		return "refusedAgain"
	case pending:
		return "pending"
	case forgotten:
		return "forgotten"
	case ignored:
		return "ignored"
	case rescheduled:
		return "rescheduled"
	}
	return "unknown"
}

// state is the one place that maps an outcome to the library's
// ProvisioningState. InBackground is the only state under which the library
// keeps calling Provision after the claim is deleted: it is what a possibly
// existing volume needs. Finished still retries a live claim with backoff.
func (o outcome) state() controller.ProvisioningState {
	switch o {
	case pending:
		return controller.ProvisioningInBackground
	case rescheduled:
		return controller.ProvisioningReschedule
	}
	return controller.ProvisioningFinished
}

// releases reports whether the attempt leaves nothing of the claim on
// Cinder, so the claim is released from contract.FinalizerProvisioning.
func (o outcome) releases() bool { return o == refused || o == refusedAgain || o == forgotten }

// event reports whether the outcome's error deserves a Warning Event on
// the claim.
func (o outcome) event() bool { return o == refused || o == pending || o == rescheduled }

// transient reports whether err says Cinder (or the API server) did not
// answer: the request's outcome is unknown and retrying may succeed.
func transient(err error) bool {
	var we *cinder.WaitError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, cinder.ErrUnavailable) || errors.As(err, &we)
}

// rejected reports whether Cinder refused a request outright, so it changed
// nothing.
func rejected(err error) bool {
	return !transient(err) && (errors.Is(err, cinder.ErrQuotaExceeded) || errors.Is(err, cinder.ErrInvalid) ||
		errors.Is(err, cinder.ErrNotFound) || errors.Is(err, cinder.ErrUnauthorized) || errors.Is(err, cinder.ErrConflict))
}
