package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// TestErrorTable enumerates what each error does to a claim: the Event's
// reason, whether a hint is added, whether a refusal for it is remembered
// (final) and whether it sends the claim back to the scheduler. Every row
// of errorTable is reached by some case.
func TestErrorTable(t *testing.T) {
	unknownZoneErr := fmt.Errorf("create volume pvc-1: %w: Availability zone 'atlantis' is invalid.", cinder.ErrInvalid)
	tests := []struct {
		name       string
		err        error
		reason     string
		hint       bool
		final      bool
		reschedule bool
	}{
		{"class parameter", &ParameterError{Key: "type", Problem: "x"}, ReasonInvalidParameter, true, true, false},
		{"mapper parameter", &mapper.ParameterError{Transport: "rbd", Parameter: "clusterID", Problem: "missing"}, ReasonInvalidParameter, true, true, false},
		{"claim", &claimError{"no"}, ReasonInvalidClaim, false, true, false},
		{"claim, wrapped", fmt.Errorf("check claim: %w", &claimError{"no"}), ReasonInvalidClaim, false, true, false},
		{"data source", &sourceError{"not bound"}, ReasonInvalidDataSource, true, false, false},
		{"selected node gone", &nodeGoneError{node: "n"}, ReasonSelectedNodeGone, false, false, true},
		{"zone choice", &zoneError{"no"}, ReasonInvalidZone, false, false, false},
		{"zone Cinder does not know", unknownZoneErr, ReasonInvalidZone, true, false, false},
		{"node annotation", &nodeError{node: "n", err: errors.New("invalid WWN")}, ReasonInvalidNodeAnnotation, false, false, false},
		{"Ceph Secret missing", &missingSecretError{namespace: "ns", name: "ceph"}, ReasonMissingSecret, false, false, false},
		{"stuck volume", &stuckVolumeError{id: "v", status: "maintenance"}, ReasonVolumeStuck, false, false, false},
		{"mismatched volume", &mismatchError{id: "v"}, ReasonVolumeMismatch, false, false, false},
		{"foreign Secret", &foreignSecretError{namespace: "ns", name: "s", pv: "pv"}, ReasonSecretConflict, false, false, false},
		{"another cluster's volume", &nameConflictError{name: "pv", id: "v", cluster: "b"}, ReasonNameConflict, true, false, false},
		{"two volumes of the name", &cinder.DuplicateNameError{Name: "pv", IDs: []string{"a", "b"}}, ReasonNameConflict, true, false, false},
		{"unsupported transport", &mapper.UnsupportedTransportError{Type: "nfs"}, ReasonUnsupportedTransport, true, true, false},
		{"connection info field", &mapper.FieldError{Transport: "iscsi", Field: "target_portal", Problem: "missing"}, ReasonInvalidConnectionInfo, true, true, false},
		{"quota", fmt.Errorf("create volume: %w", cinder.ErrQuotaExceeded), ReasonQuotaExceeded, true, false, false},
		// a quota refusal whose answer also says Cinder was unavailable is
		// still a quota refusal: the first row wins
		{"quota before unavailable", fmt.Errorf("%w: %w", cinder.ErrQuotaExceeded, cinder.ErrUnavailable), ReasonQuotaExceeded, true, false, false},
		{"volume went to error", &cinder.VolumeStatusError{VolumeID: "v", Status: "error"}, ReasonVolumeError, true, false, false},
		{"volume error sentinel", cinder.ErrVolumeError, ReasonVolumeError, true, false, false},
		{"other invalid request", fmt.Errorf("create volume: %w: bad size", cinder.ErrInvalid), ReasonCinderRejected, true, false, false},
		{"not found", fmt.Errorf("create volume: %w", cinder.ErrNotFound), ReasonCinderRejected, true, false, false},
		{"unauthorized", fmt.Errorf("create volume: %w", cinder.ErrUnauthorized), ReasonCinderRejected, true, false, false},
		{"unavailable", fmt.Errorf("create volume: %w", cinder.ErrUnavailable), ReasonCinderUnavailable, true, false, false},
		{"deadline", context.DeadlineExceeded, ReasonCinderUnavailable, true, false, false},
		{"wait cut short", &cinder.WaitError{What: "volume v to become available", Err: context.DeadlineExceeded}, ReasonCinderUnavailable, true, false, false},
		{"anything else", errors.New("boom"), ReasonProvisioningFailed, false, false, false},
	}
	reached := make([]bool, len(errorTable))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if got.reason != tc.reason || (got.hint != "") != tc.hint || got.final != tc.final || got.reschedule != tc.reschedule {
				t.Errorf("classify(%v) = %+v, want reason %s, hint %v, final %v, reschedule %v", tc.err, got, tc.reason, tc.hint, tc.final, tc.reschedule)
			}
		})
		if i := slices.IndexFunc(errorTable, func(r errorRow) bool { return r.match(tc.err) }); i >= 0 {
			reached[i] = true
		}
	}
	for i, ok := range reached {
		if !ok {
			t.Errorf("errorTable row %d (%s) is reached by no case", i, errorTable[i].class.reason)
		}
	}
}

// TestEndAppliesARefusal: end removes what a refusal leaves, as the
// refusal says (everything, only the source's protection, nothing), turns
// a refusal for a node that is gone into a reschedule, and remembers a
// final one.
func TestEndAppliesARefusal(t *testing.T) {
	tests := []struct {
		name      string
		res       result
		wantOut   outcome
		wantOps   []string
		remembers bool
	}{
		{"everything, found by name", refuse(nil, "", &claimError{"no"}), refused, []string{fake.OpFindVolumeByName}, true},
		{"only the source: Cinder refused the create", result{out: refused, undo: undoSource, err: cinder.ErrQuotaExceeded}, refused, nil, false},
		{"nothing: another cluster's volume", result{out: refused, undo: undoNothing, err: &nameConflictError{}}, refused, nil, false},
		{"node gone", refuse(nil, "", &nodeGoneError{node: "n"}), rescheduled, []string{fake.OpFindVolumeByName}, false},
		{"not a refusal", retryLater(cinder.ErrUnavailable), pending, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			opts := options(newClaim(claimSpec{}), newClass(nil))
			got := e.p.end(e.ctx, opts, nil, tc.res)
			if got.out != tc.wantOut || !errors.Is(got.err, tc.res.err) {
				t.Errorf("end = %s, %v; want %s, %v", got.out, got.err, tc.wantOut, tc.res.err)
			}
			if ops := e.cinder.Ops(); !slices.Equal(ops, tc.wantOps) {
				t.Errorf("Cinder calls %q, want %q", ops, tc.wantOps)
			}
			if _, ok := e.p.refusals.get(opts); ok != tc.remembers {
				t.Errorf("remembered = %v, want %v", ok, tc.remembers)
			}
		})
	}
}
