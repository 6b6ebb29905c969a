package provisioner

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// result is how a step ended an attempt: the PV (bound), the outcome and
// its error, and, for a refusal, what of the claim end removes first. Steps
// build it where they stop; end applies it, once per attempt.
type result struct {
	pv  *corev1.PersistentVolume
	out outcome
	err error
	// refused only: what was made for the claim and is removed again
	undo     undo
	req      *request // nil: the request itself was refused
	volumeID string   // "": the volume named after the PV, if any
}

// undo is what a refusal leaves behind for end to remove.
type undo int

const (
	// undoAll removes the claim's volume (volumeID, else the one named
	// after the PV), its exports and its Secret, then releases the source
	// claim of a clone.
	undoAll undo = iota
	// undoSource only releases the source claim: Cinder refused the create,
	// so nothing was made.
	undoSource
	// undoNothing touches nothing: the volume of the claim's name is
	// another cluster's.
	undoNothing
)

func boundTo(pv *corev1.PersistentVolume) result { return result{pv: pv, out: bound} }

// retryLater is a failure that may pass: what exists is kept for the next
// attempt.
func retryLater(err error) result { return result{out: pending, err: err} }

// refuse is a claim that cannot be served as it is: end removes what was
// made for it (volumeID, or the volume found by name when "").
func refuse(req *request, volumeID string, err error) result {
	return result{out: refused, err: err, undo: undoAll, req: req, volumeID: volumeID}
}

// end is the one place an attempt on a live or deleted claim ends: a
// refusal first removes what was made for the claim (pending while that
// does not finish), is remembered when final and becomes a reschedule when
// the selected node is gone; an attempt that leaves nothing of the claim
// releases it from contract.FinalizerProvisioning. live is nil when the claim is
// gone.
func (p *Provisioner) end(ctx context.Context, opts controller.ProvisionOptions, live *corev1.PersistentVolumeClaim, res result) result {
	if res.out == refused {
		res = p.undoRefused(ctx, opts, res)
	}
	if res.out.releases() && protected(live) {
		if err := p.unprotect(ctx, live); err != nil {
			// nothing is left on Cinder; the next attempt releases it
			return retryLater(fmt.Errorf("%w; %w", res.err, err))
		}
	}
	return res
}

// undoRefused removes what a refusal leaves behind, so that refused means
// nothing of the claim is left on Cinder.
func (p *Provisioner) undoRefused(ctx context.Context, opts controller.ProvisionOptions, res result) result {
	if res.undo == undoNothing {
		return res
	}
	if res.undo == undoAll {
		if _, err := p.removeLeftovers(ctx, opts, res.req, res.volumeID); err != nil {
			return retryLater(fmt.Errorf("%w; removing what an attempt left for this claim did not finish, will retry: %w", res.err, err))
		}
	}
	if err := p.releaseSource(ctx, opts.PVC); err != nil {
		return retryLater(fmt.Errorf("%w; will retry: %w", res.err, err))
	}
	p.refusals.put(opts, res.err)
	if classify(res.err).reschedule {
		res.out = rescheduled
	}
	return res
}
