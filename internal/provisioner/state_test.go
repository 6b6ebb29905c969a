package provisioner

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

func TestProvisioningState(t *testing.T) {
	unavailable := cinder.NewError("create volume", "pvc-1", cinder.ErrUnavailable, "")
	quota := cinder.NewError("create volume", "pvc-1", cinder.ErrQuotaExceeded, "VolumeLimitExceeded")
	waitErr := &cinder.WaitError{What: "volume v1 to become available", Last: cinder.StatusCreating, Err: context.DeadlineExceeded}
	wrapped := func(err error) error { return fmt.Errorf("export volume v1: %w", err) }

	tests := []struct {
		name string
		err  error
		want controller.ProvisioningState
	}{
		{"no error", nil, controller.ProvisioningFinished},
		{"nothing created, request rejected", mark(quota, errNothingCreated), controller.ProvisioningFinished},
		{"nothing created, bad parameter", mark(&ParameterError{Key: "x", Problem: "unknown"}, errNothingCreated), controller.ProvisioningFinished},
		{"nothing created, Cinder unavailable", mark(unavailable, errNothingCreated), controller.ProvisioningNoChange},
		{"nothing created, context ended", mark(context.Canceled, errNothingCreated), controller.ProvisioningNoChange},
		{"partial work left behind", mark(errors.New("map: bad"), errLeftBehind), controller.ProvisioningInBackground},
		{"partial work left behind by a transient failure", mark(wrapped(unavailable), errLeftBehind), controller.ProvisioningInBackground},
		{"cleaned up", mark(errors.New("map: bad"), errCleanedUp), controller.ProvisioningFinished},
		{"cleaned up after a transient failure", mark(wrapped(unavailable), errCleanedUp), controller.ProvisioningFinished},
		{"context deadline", wrapped(context.DeadlineExceeded), controller.ProvisioningInBackground},
		{"context canceled", wrapped(context.Canceled), controller.ProvisioningInBackground},
		{"Cinder unavailable", wrapped(unavailable), controller.ProvisioningInBackground},
		{"wait cut short", wrapped(waitErr), controller.ProvisioningInBackground},
		{"wait error of a wait that ended without context error", &cinder.WaitError{What: "x"}, controller.ProvisioningInBackground},
		{"volume went to error", &cinder.VolumeStatusError{VolumeID: "v1", Status: cinder.StatusError}, controller.ProvisioningFinished},
		{"other", errors.New("something else"), controller.ProvisioningFinished},
		{"quota, unmarked", quota, controller.ProvisioningFinished},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := provisioningState(tc.err); got != tc.want {
				t.Errorf("provisioningState(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestMarkKeepsMessageAndCause(t *testing.T) {
	cause := cinder.NewError("create volume", "pvc-1", cinder.ErrQuotaExceeded, "no room")
	err := mark(cause, errNothingCreated)
	if err.Error() != cause.Error() {
		t.Errorf("marked error says %q, want %q", err, cause)
	}
	if !errors.Is(err, cinder.ErrQuotaExceeded) || !errors.Is(err, errNothingCreated) {
		t.Errorf("marked error hides its cause or its mark")
	}
}
