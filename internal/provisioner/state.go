package provisioner

import (
	"context"
	"errors"

	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Markers of how far a failed Provision got; provisioningState reads them.
var (
	// errNothingCreated: the failure came before any request that could create
	// something on Cinder was sent.
	errNothingCreated = errors.New("nothing was created")
	// errCleanedUp: what the attempt created was removed again.
	errCleanedUp = errors.New("partial work was removed")
	// errLeftBehind: the cleanup did not finish, a volume or export may
	// remain, and only another Provision call can remove it.
	errLeftBehind = errors.New("partial work may remain on Cinder")
)

// markedError is an error with a marker that errors.Is finds but the
// message does not show.
type markedError struct {
	err  error
	mark error
}

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() []error { return []error{e.err, e.mark} }

func mark(err, marker error) error { return &markedError{err: err, mark: marker} }

// provisioningState is the one place that maps a Provision error to the
// library's ProvisioningState:
//   - nil: Finished.
//   - a failure before anything was sent to Cinder: Finished when the request
//     is wrong, NoChange when Cinder could not be asked (nothing changed).
//   - the cleanup did not finish, or Cinder may still be working (a timeout,
//     an unreachable Cinder after a create was sent, a wait cut short):
//     InBackground, so the library calls again and the retry finds the volume
//     by name.
//   - a failure whose partial work was removed again: Finished.
func provisioningState(err error) controller.ProvisioningState {
	switch {
	case err == nil:
		return controller.ProvisioningFinished
	case errors.Is(err, errLeftBehind):
		return controller.ProvisioningInBackground
	case errors.Is(err, errNothingCreated):
		if transient(err) {
			return controller.ProvisioningNoChange
		}
		return controller.ProvisioningFinished
	case errors.Is(err, errCleanedUp):
		return controller.ProvisioningFinished
	case transient(err):
		return controller.ProvisioningInBackground
	default:
		return controller.ProvisioningFinished
	}
}

// transient reports whether err says Cinder did not (yet) answer: the outcome
// of the request is unknown and retrying may succeed.
func transient(err error) bool {
	var we *cinder.WaitError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, cinder.ErrUnavailable) || errors.As(err, &we)
}
