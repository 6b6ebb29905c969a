package resizer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

const (
	inProgressState = corev1.PersistentVolumeClaimControllerResizeInProgress
	infeasibleState = corev1.PersistentVolumeClaimControllerResizeInfeasible
)

// TestAllocationIsRecordedBeforeExtend: before os-extend leaves, the claim
// says what Cinder is asked to hold (allocatedResources, in whole GiB as
// Cinder allocates) and that a controller resize is under way, as
// external-resizer's markControllerResizeInProgress does; ResourceQuota
// charges it from that moment.
func TestAllocationIsRecordedBeforeExtend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  spec
		setup func(e *env)
		want  sentExtend
	}{
		{name: "block iSCSI", spec: spec{block: true}, want: sentExtend{2, "2Gi", string(inProgressState)}},
		{name: "request rounded up to whole GiB", spec: spec{block: true, request: "1500Mi"}, want: sentExtend{2, "2Gi", string(inProgressState)}},
		{name: "block FC", spec: spec{block: true, source: "fc"}, want: sentExtend{2, "2Gi", string(inProgressState)}},
		{name: "RBD filesystem", spec: spec{source: "csi"}, want: sentExtend{2, "2Gi", string(inProgressState)}},
		{name: "a grow above an earlier, finished one", spec: spec{block: true, request: "3Gi", volumeSize: 2, pvCap: "2Gi", claimCap: "2Gi"},
			setup: func(e *env) { e.setStatus("2Gi", "") }, want: sentExtend{3, "3Gi", string(inProgressState)}},
		{name: "a grow above a recorded one not yet sent", spec: spec{block: true, request: "3Gi"},
			setup: func(e *env) { e.setStatus("2Gi", inProgressState) }, want: sentExtend{3, "3Gi", string(inProgressState)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.spec)
			if tc.setup != nil {
				tc.setup(e)
			}
			e.r.pass(e.ctx, testKey)
			if got := e.extends(); !slices.Equal(got, []sentExtend{tc.want}) {
				t.Errorf("os-extends sent %+v, want %+v", got, []sentExtend{tc.want})
			}
			e.chargesAtLeast("after the pass", e.volume().SizeGiB)
		})
	}
}

// TestLoweredRequestNeverShrinksNorUndercharges: a request lowered while a
// recorded resize is under way (Kubernetes lets it go down to just above
// status.capacity) never gets a smaller os-extend, never a shrink, and the
// claim's allocatedResources never falls below what Cinder holds: quota
// keeps charging the volume's size.
func TestLoweredRequestNeverShrinksNorUndercharges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  spec
		setup func(e *env)
		want  outcome
		msg   string
		sent  []sentExtend
		// afterwards
		volSize                           int
		pvCap, claimCap, allocated, state string
	}{
		{name: "lowered while Cinder extends: waits for that extend, sends none",
			spec: spec{block: true, request: "2Gi"},
			setup: func(e *env) {
				e.setStatus("3Gi", inProgressState)
				e.cinder.SetExtendingPolls(1)
				if err := e.cinder.ExtendVolume(e.ctx, e.volumeID, 3); err != nil {
					t.Fatal(err)
				}
			},
			want: resized, msg: "cannot shrink", sent: nil, volSize: 3, pvCap: "3Gi", claimCap: "3Gi", allocated: "3Gi"},
		{name: "lowered after Cinder grew the volume, before the PV",
			spec:  spec{block: true, request: "2Gi", volumeSize: 3},
			setup: func(e *env) { e.setStatus("3Gi", inProgressState) },
			want:  resized, sent: nil, volSize: 3, pvCap: "3Gi", claimCap: "3Gi", allocated: "3Gi"},
		{name: "lowered after the PV grew, before the claim: completed, not refused",
			spec:  spec{block: true, request: "2Gi", volumeSize: 3, pvCap: "3Gi"},
			setup: func(e *env) { e.setStatus("3Gi", inProgressState) },
			want:  resized, sent: nil, volSize: 3, pvCap: "3Gi", claimCap: "3Gi", allocated: "3Gi"},
		{name: "lowered after the record, before os-extend left: the recorded size is extended",
			spec:  spec{block: true, request: "2Gi"},
			setup: func(e *env) { e.setStatus("3Gi", inProgressState) },
			want:  resized, sent: []sentExtend{{3, "3Gi", string(inProgressState)}}, volSize: 3, pvCap: "3Gi", claimCap: "3Gi", allocated: "3Gi"},
		{name: "Cinder holds more than the request and nothing was recorded: allocatedResources is what it holds",
			spec: spec{block: true, request: "2Gi", volumeSize: 3},
			want: resized, sent: nil, volSize: 3, pvCap: "3Gi", claimCap: "3Gi", allocated: "3Gi"},
		{name: "RBD filesystem lowered after Cinder grew the volume: the kubelet is asked for what Cinder holds",
			spec:  spec{source: "csi", request: "2Gi", volumeSize: 3},
			setup: func(e *env) { e.setStatus("3Gi", inProgressState) },
			want:  nodePending, sent: nil, volSize: 3, pvCap: "3Gi", claimCap: "1Gi", allocated: "3Gi", state: string(corev1.PersistentVolumeClaimNodeResizePending)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.spec)
			if tc.setup != nil {
				tc.setup(e)
			}
			e.cinder.ResetCalls()
			res := e.r.pass(e.ctx, testKey)
			if res.out != tc.want {
				t.Errorf("outcome %s (%s: %s, %v), want %s", res.out, res.reason, res.message, res.err, tc.want)
			}
			if tc.msg != "" && !strings.Contains(res.message, tc.msg) {
				t.Errorf("message %q does not say %q", res.message, tc.msg)
			}
			if got := e.extends(); !slices.Equal(got, tc.sent) {
				t.Errorf("os-extends sent %+v, want %+v", got, tc.sent)
			}
			v, c := e.volume(), e.claim()
			if v.SizeGiB != tc.volSize {
				t.Errorf("volume %d GiB, want %d", v.SizeGiB, tc.volSize)
			}
			if got := storageOf(e.pv().Spec.Capacity); got != tc.pvCap {
				t.Errorf("PV capacity %s, want %s", got, tc.pvCap)
			}
			if got := storageOf(c.Status.Capacity); got != tc.claimCap {
				t.Errorf("claim capacity %s, want %s", got, tc.claimCap)
			}
			if got := storageOf(c.Status.AllocatedResources); got != tc.allocated {
				t.Errorf("claim allocatedResources %q, want %q", got, tc.allocated)
			}
			if got := string(c.Status.AllocatedResourceStatuses[corev1.ResourceStorage]); got != tc.state {
				t.Errorf("claim allocatedResourceStatuses %q, want %q", got, tc.state)
			}
			e.chargesAtLeast("after the pass", v.SizeGiB)
		})
	}
}

// TestRaisedThenLoweredWhileCinderExtends is issue 17's reproduction on the
// fake: a block claim raised to 10Gi, lowered to 2Gi while Cinder is still
// extending (cinder-volume stopped: the wait never ends in a pass). Quota
// charges 10Gi throughout, one os-extend to 10 GiB is sent, and once Cinder
// is done the claim, the PV and allocatedResources say 10Gi.
func TestRaisedThenLoweredWhileCinderExtends(t *testing.T) {
	e := newEnv(t, spec{block: true, request: "10Gi"})
	e.cinder.SetExtendingPolls(100)
	stopped := true // cinder-volume: a pass's wait ends without the extend done
	e.cinder.Hook(fake.OpWaitForVolumeStatus, func(_ context.Context, c fake.Call) error {
		if stopped {
			return &cinder.WaitError{What: "volume " + c.VolumeID + " to become in-use", Last: cinder.StatusExtending, Err: context.DeadlineExceeded}
		}
		return nil
	})
	if res := e.r.pass(e.ctx, testKey); res.out != inProgress {
		t.Fatalf("first pass %s (%s), want in_progress", res.out, res.message)
	}
	e.chargesAtLeast("while extending", 10)
	e.setRequest("2Gi")
	e.chargesAtLeast("lowered while extending", 10)
	if res := e.r.pass(e.ctx, testKey); res.out != inProgress {
		t.Fatalf("pass after the lowering %s (%s), want in_progress", res.out, res.message)
	}
	e.chargesAtLeast("lowered, still extending", 10)
	stopped = false
	res := e.r.pass(e.ctx, testKey)
	if res.out != resized {
		t.Fatalf("pass once Cinder is done %s (%s), want resized", res.out, res.message)
	}
	if want := []sentExtend{{10, "10Gi", string(inProgressState)}}; !slices.Equal(e.extends(), want) {
		t.Errorf("os-extends sent %+v, want %+v", e.extends(), want)
	}
	v, c := e.volume(), e.claim()
	if v.SizeGiB != 10 || storageOf(e.pv().Spec.Capacity) != "10Gi" || storageOf(c.Status.Capacity) != "10Gi" {
		t.Errorf("volume %d GiB, PV %s, claim %s; want 10 everywhere", v.SizeGiB, storageOf(e.pv().Spec.Capacity), storageOf(c.Status.Capacity))
	}
	if got := storageOf(c.Status.AllocatedResources); got != "10Gi" {
		t.Errorf("allocatedResources %q, want 10Gi", got)
	}
	if len(c.Status.AllocatedResourceStatuses) != 0 {
		t.Errorf("allocatedResourceStatuses %v, want none once the resize is done", c.Status.AllocatedResourceStatuses)
	}
	e.chargesAtLeast("done", 10)
	if !strings.Contains(res.message, "ResourceQuota") {
		t.Errorf("the VolumeResized message does not say what quota charges: %s", res.message)
	}
}

// TestFinalFailureMarksControllerResizeInfeasible: an extend Cinder refuses
// for good ends with ControllerResizeInfeasible on the claim, as
// external-resizer's markControllerExpansionInfeasible; allocatedResources
// keeps the size asked (Kubernetes lowers it only when the user lowers the
// request) and the Event says so. A failure that may pass leaves the
// resize recorded as in progress; one before any record leaves the claim
// untouched.
func TestFinalFailureMarksControllerResizeInfeasible(t *testing.T) {
	for _, tc := range []struct {
		name             string
		setup            func(e *env)
		want             outcome
		event            string
		allocated, state string
	}{
		{name: "no backend can extend it attached", setup: func(e *env) { e.cinder.SetOnlineExtend(false) },
			want: refused, event: ReasonExtendRefused, allocated: "2Gi", state: string(infeasibleState)},
		{name: "Cinder below 3.42", setup: func(e *env) { e.cinder.SetMaxMicroversion("3.40") },
			want: refused, event: ReasonOnlineExtendUnsupported, allocated: "2Gi", state: string(infeasibleState)},
		{name: "Cinder rejects the request", setup: func(e *env) {
			e.cinder.FailNext(fake.OpExtendVolume, cinder.NewError("extend volume", e.volumeID, cinder.ErrInvalid, "Invalid input received: no"))
		}, want: refused, event: ReasonCinderRejected, allocated: "2Gi", state: string(infeasibleState)},
		{name: "Cinder's policy forbids it", setup: func(e *env) {
			e.cinder.FailNext(fake.OpExtendVolume, cinder.NewError("extend volume", e.volumeID, cinder.ErrUnauthorized, "Policy doesn't allow it"))
		}, want: refused, event: ReasonCinderRejected, allocated: "2Gi", state: string(infeasibleState)},
		{name: "volume gone after the record", setup: func(e *env) {
			e.setStatus("2Gi", inProgressState)
			e.cinder.FailNext(fake.OpGetVolume, cinder.NewError("get volume", e.volumeID, cinder.ErrNotFound, "not found"))
		}, want: refused, event: ReasonVolumeGone, allocated: "2Gi", state: string(infeasibleState)},
		{name: "over Cinder's quota: retried, still in progress", setup: func(e *env) { e.cinder.SetGigabytesQuota(1) },
			want: retry, event: ReasonQuotaExceeded, allocated: "2Gi", state: string(inProgressState)},
		{name: "driver fails: retried, still in progress", setup: func(e *env) { e.cinder.SetExtendResult(fake.ExtendDriverFails) },
			want: retry, event: ReasonExtendFailed, allocated: "2Gi", state: string(inProgressState)},
		{name: "Cinder down before any record: untouched", setup: func(e *env) { e.cinder.SetDown(true) },
			want: retry, event: ReasonCinderUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, spec{block: true})
			tc.setup(e)
			res := e.r.pass(e.ctx, testKey)
			if res.out != tc.want || res.reason != tc.event {
				t.Errorf("outcome %s %s (%s), want %s %s", res.out, res.reason, res.message, tc.want, tc.event)
			}
			c := e.claim()
			if got := storageOf(c.Status.AllocatedResources); got != tc.allocated {
				t.Errorf("allocatedResources %q, want %q", got, tc.allocated)
			}
			if got := string(c.Status.AllocatedResourceStatuses[corev1.ResourceStorage]); got != tc.state {
				t.Errorf("allocatedResourceStatuses %q, want %q", got, tc.state)
			}
			if tc.state == string(infeasibleState) && !strings.Contains(res.message, "ControllerResizeInfeasible") {
				t.Errorf("message does not say the claim is marked infeasible: %s", res.message)
			}
			if e.cinder.SetDown(false); e.volume().SizeGiB != 1 {
				t.Errorf("volume %d GiB, want 1", e.volume().SizeGiB)
			}
		})
	}
}

// TestRecoveryFromExpansionFailure: Kubernetes lets a user lower a request
// Cinder could not meet; the lower size replaces allocatedResources (quota
// stops charging the refused size) only once nothing can still be
// extending: after ControllerResizeInfeasible, or after Cinder refused the
// recorded size in this process. A new process that has seen no refusal
// first tries the recorded size again.
func TestRecoveryFromExpansionFailure(t *testing.T) {
	overQuota := func(e *env) {
		e.setRequest("10Gi")
		e.cinder.SetGigabytesQuota(5)
		if res := e.r.pass(e.ctx, testKey); res.out != retry || res.reason != ReasonQuotaExceeded {
			t.Fatalf("pass at 10Gi %s %s, want retry %s", res.out, res.reason, ReasonQuotaExceeded)
		}
	}
	for _, tc := range []struct {
		name    string
		setup   func(e *env)
		passes  []outcome // after the request is lowered to 2Gi
		sent    []sentExtend
		volSize int
	}{
		{name: "after ControllerResizeInfeasible",
			setup:  func(e *env) { e.setStatus("10Gi", infeasibleState) },
			passes: []outcome{resized}, sent: []sentExtend{{2, "2Gi", string(inProgressState)}}, volSize: 2},
		{name: "after Cinder refused the recorded size in this process",
			setup:  overQuota,
			passes: []outcome{resized}, sent: []sentExtend{{10, "10Gi", string(inProgressState)}, {2, "2Gi", string(inProgressState)}}, volSize: 2},
		{name: "a new process first tries the recorded size again",
			setup:  func(e *env) { overQuota(e); e.restart() },
			passes: []outcome{retry, resized},
			sent:   []sentExtend{{10, "10Gi", string(inProgressState)}, {10, "10Gi", string(inProgressState)}, {2, "2Gi", string(inProgressState)}}, volSize: 2},
		{name: "an extend possibly under way (recorded, never refused) is not given up",
			setup:  func(e *env) { e.setStatus("3Gi", inProgressState) },
			passes: []outcome{resized}, sent: []sentExtend{{3, "3Gi", string(inProgressState)}}, volSize: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, spec{block: true, request: "2Gi"})
			tc.setup(e)
			e.setRequest("2Gi")
			for i, want := range tc.passes {
				if res := e.r.pass(e.ctx, testKey); res.out != want {
					t.Fatalf("pass %d after the lowering: %s (%s: %s), want %s", i+1, res.out, res.reason, res.message, want)
				}
			}
			if got := e.extends(); !slices.Equal(got, tc.sent) {
				t.Errorf("os-extends sent %+v, want %+v", got, tc.sent)
			}
			v, c := e.volume(), e.claim()
			want := fmt.Sprintf("%dGi", tc.volSize)
			if v.SizeGiB != tc.volSize || storageOf(c.Status.Capacity) != want || storageOf(c.Status.AllocatedResources) != want {
				t.Errorf("volume %d GiB, claim %s, allocatedResources %s; want %s", v.SizeGiB, storageOf(c.Status.Capacity), storageOf(c.Status.AllocatedResources), want)
			}
			e.chargesAtLeast("done", v.SizeGiB)
		})
	}
}

// TestNodeResizeUnderWayIsLeftToTheKubelet: a larger request while the
// kubelet has a node expansion pending or running waits for it
// (external-resizer's expandAndRecover): no Cinder call, the kubelet's
// status stays.
func TestNodeResizeUnderWayIsLeftToTheKubelet(t *testing.T) {
	for _, state := range []corev1.ClaimResourceStatus{corev1.PersistentVolumeClaimNodeResizePending, corev1.PersistentVolumeClaimNodeResizeInProgress} {
		t.Run(string(state), func(t *testing.T) {
			e := newEnv(t, spec{source: "csi", request: "3Gi", volumeSize: 2, pvCap: "2Gi"})
			e.setStatus("2Gi", state)
			if res := e.r.pass(e.ctx, testKey); res.out != idle {
				t.Errorf("outcome %s (%s), want idle", res.out, res.message)
			}
			if ops := e.cinder.Ops(); len(ops) != 0 {
				t.Errorf("Cinder calls %v, want none", ops)
			}
			c := e.claim()
			if storageOf(c.Status.AllocatedResources) != "2Gi" || c.Status.AllocatedResourceStatuses[corev1.ResourceStorage] != state {
				t.Errorf("status %v %v, want the kubelet's untouched", c.Status.AllocatedResources, c.Status.AllocatedResourceStatuses)
			}
		})
	}
}
