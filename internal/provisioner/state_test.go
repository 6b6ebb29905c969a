package provisioner

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

func TestOutcomeState(t *testing.T) {
	tests := []struct {
		out       outcome
		want      controller.ProvisioningState
		wantEvent bool
	}{
		{bound, controller.ProvisioningFinished, false},
		{refused, controller.ProvisioningFinished, true},
		{refusedAgain, controller.ProvisioningFinished, false},
		// a volume of the claim's name may exist: the library must call
		// again, also after the claim is deleted
		{pending, controller.ProvisioningInBackground, true},
		{forgotten, controller.ProvisioningFinished, false},
		// a populator's data source: no volume, no Warning
		{ignored, controller.ProvisioningFinished, false},
		// the selected node is gone: the scheduler picks another
		{rescheduled, controller.ProvisioningReschedule, true},
	}
	for _, tc := range tests {
		t.Run(tc.out.String(), func(t *testing.T) {
			if got := tc.out.state(); got != tc.want {
				t.Errorf("%s.state() = %s, want %s", tc.out, got, tc.want)
			}
			if got := tc.out.event(); got != tc.wantEvent {
				t.Errorf("%s.event() = %v, want %v", tc.out, got, tc.wantEvent)
			}
		})
	}
}

func TestTransientAndRejected(t *testing.T) {
	wrapped := func(err error) error { return fmt.Errorf("create volume pvc-1: %w", err) }
	tests := []struct {
		name                string
		err                 error
		transient, rejected bool
	}{
		{"unavailable", wrapped(cinder.NewError("create volume", "pvc-1", cinder.ErrUnavailable, "")), true, false},
		{"deadline", wrapped(context.DeadlineExceeded), true, false},
		{"canceled", wrapped(context.Canceled), true, false},
		{"wait cut short", &cinder.WaitError{What: "x", Err: context.DeadlineExceeded}, true, false},
		{"quota", wrapped(cinder.NewError("create volume", "pvc-1", cinder.ErrQuotaExceeded, "")), false, true},
		{"invalid", wrapped(cinder.NewError("create volume", "pvc-1", cinder.ErrInvalid, "")), false, true},
		{"not found", wrapped(cinder.NewError("create volume", "pvc-1", cinder.ErrNotFound, "")), false, true},
		{"unauthorized", wrapped(cinder.NewError("create volume", "pvc-1", cinder.ErrUnauthorized, "")), false, true},
		{"conflict", wrapped(cinder.NewError("export volume", "v1", cinder.ErrConflict, "")), false, true},
		// an invalid request cut by a deadline may still have been applied
		{"invalid and deadline", &cinder.Error{Op: "x", Kind: cinder.ErrInvalid, Err: context.DeadlineExceeded}, true, false},
		{"other", errors.New("something else"), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := transient(tc.err); got != tc.transient {
				t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.transient)
			}
			if got := rejected(tc.err); got != tc.rejected {
				t.Errorf("rejected(%v) = %v, want %v", tc.err, got, tc.rejected)
			}
		})
	}
}
