package resizer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

// TestResizePaths: one pass over a claim whose request grew from 1Gi to
// 2Gi, for every transport and mode and every way Cinder answers. Each row
// checks the outcome, the Event, the Cinder calls, and what the volume, the
// PV and the claim show afterwards.
func TestResizePaths(t *testing.T) {
	const none = "-"
	for _, tc := range []struct {
		name  string
		spec  spec
		setup func(e *env)
		want  outcome
		event string // "Type Reason"; "" none
		msg   string // in the Event's message
		calls []string
		// afterwards; "" means the start value
		volSize                   int
		volStatus                 string
		pvCap, claimCap           string
		allocated, allocatedState string // "-": absent
	}{
		{name: "block iSCSI grows, done by us", spec: spec{block: true}, want: resized, event: "Normal VolumeResized", msg: "next iSCSI login",
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume, fake.OpWaitForVolumeStatus}, volSize: 2, pvCap: "2Gi", claimCap: "2Gi", allocated: "2Gi", allocatedState: none},
		{name: "block: allocatedResourceStatuses cleared, allocatedResources kept, as Kubernetes ends a resize", spec: spec{block: true},
			setup: func(e *env) {
				c := e.claim()
				c.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]}
				c.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: corev1.PersistentVolumeClaimControllerResizeInProgress}
				if _, err := e.kube.CoreV1().PersistentVolumeClaims(testNamespace).UpdateStatus(e.ctx, c, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: resized, event: "Normal VolumeResized", volSize: 2, pvCap: "2Gi", claimCap: "2Gi", allocated: "2Gi", allocatedState: none},
		{name: "block FC grows", spec: spec{block: true, source: "fc"}, want: resized, event: "Normal VolumeResized",
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume, fake.OpWaitForVolumeStatus}, volSize: 2, pvCap: "2Gi", claimCap: "2Gi", allocated: "2Gi", allocatedState: none},
		{name: "block RBD grows", spec: spec{block: true, source: "csi"}, want: resized, event: "Normal VolumeResized",
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume, fake.OpWaitForVolumeStatus}, volSize: 2, pvCap: "2Gi", claimCap: "2Gi", allocated: "2Gi", allocatedState: none},
		{name: "RBD filesystem: the kubelet grows it", spec: spec{source: "csi"}, want: nodePending, event: "Normal FileSystemResizePending",
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume, fake.OpWaitForVolumeStatus}, volSize: 2, pvCap: "2Gi", claimCap: "1Gi",
			allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimNodeResizePending)},
		{name: "request rounded up to GiB", spec: spec{block: true, request: "1500Mi"}, want: resized, event: "Normal VolumeResized",
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume, fake.OpWaitForVolumeStatus}, volSize: 2, pvCap: "2Gi", claimCap: "2Gi", allocated: "2Gi"},
		{name: "iSCSI filesystem refused before anything", spec: spec{}, want: refused, event: "Warning FilesystemExpansionUnsupported",
			msg: "in-tree iSCSI plugin cannot grow a filesystem", calls: []string{}},
		{name: "FC filesystem refused before anything", spec: spec{source: "fc"}, want: refused, event: "Warning FilesystemExpansionUnsupported",
			msg: "volumeMode: Block", calls: []string{}},
		{name: "class does not allow expansion", spec: spec{block: true, noExpand: true}, want: refused, event: "Warning VolumeExpansionNotAllowed",
			msg: "allowVolumeExpansion: true", calls: []string{}},
		{name: "class gone", spec: spec{block: true, noClass: true}, want: refused, event: "Warning VolumeExpansionNotAllowed", calls: []string{}},
		{name: "Cinder below 3.42", spec: spec{block: true}, setup: func(e *env) { e.cinder.SetMaxMicroversion("3.40") },
			want: refused, event: "Warning OnlineExtendUnsupported", msg: "never unexports a live PV",
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume}, allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimControllerResizeInfeasible)},
		{name: "backend without online extend", spec: spec{block: true}, setup: func(e *env) { e.cinder.SetOnlineExtend(false) },
			want: refused, event: "Warning CinderExtendRefused", msg: "message-list",
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume, fake.OpWaitForVolumeStatus}, allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimControllerResizeInfeasible)},
		{name: "driver fails: error_extending reported with the fix", spec: spec{block: true}, setup: func(e *env) { e.cinder.SetExtendResult(fake.ExtendDriverFails) },
			want: retry, event: "Warning CinderExtendFailed", msg: "cinder reset-state --state in-use", volStatus: cinder.StatusErrorExtending,
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume, fake.OpWaitForVolumeStatus}, allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimControllerResizeInProgress)},
		{name: "already error_extending: no new extend", spec: spec{block: true, status: cinder.StatusErrorExtending},
			want: retry, event: "Warning CinderExtendFailed", calls: []string{fake.OpGetVolume}},
		{name: "over quota", spec: spec{block: true}, setup: func(e *env) { e.cinder.SetGigabytesQuota(1) },
			want: retry, event: "Warning CinderQuotaExceeded", msg: "VolumeSizeExceedsAvailableQuota",
			calls: []string{fake.OpGetVolume, fake.OpExtendVolume}, allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimControllerResizeInProgress)},
		{name: "Cinder rejects the request", spec: spec{block: true},
			setup: func(e *env) {
				e.cinder.FailNext(fake.OpExtendVolume, cinder.NewError("extend volume", e.volumeID, cinder.ErrInvalid, "Invalid input received: no"))
			},
			want: refused, event: "Warning CinderRequestRejected", msg: "Invalid input received", calls: []string{fake.OpGetVolume, fake.OpExtendVolume},
			allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimControllerResizeInfeasible)},
		{name: "Cinder's policy forbids extending attached volumes", spec: spec{block: true},
			setup: func(e *env) {
				e.cinder.FailNext(fake.OpExtendVolume, cinder.NewError("extend volume", e.volumeID, cinder.ErrUnauthorized,
					"Policy doesn't allow volume_extension:volume_actions:extend_attached_volume to be performed."))
			},
			want: refused, event: "Warning CinderRequestRejected", msg: "extend_attached_volume", calls: []string{fake.OpGetVolume, fake.OpExtendVolume},
			allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimControllerResizeInfeasible)},
		{name: "Cinder down", spec: spec{block: true}, setup: func(e *env) { e.cinder.SetDown(true) },
			want: retry, event: "Warning CinderUnavailable", calls: []string{fake.OpGetVolume}},
		{name: "volume in maintenance", spec: spec{block: true, status: "maintenance"},
			want: retry, event: "Warning CinderVolumeNotExtendable", msg: "maintenance", calls: []string{fake.OpGetVolume}},
		{name: "volume gone", spec: spec{block: true}, setup: func(e *env) {
			if err := e.cinder.SetStatus(e.volumeID, cinder.StatusDeleting); err != nil {
				t.Fatal(err)
			}
			_, _ = e.cinder.GetVolume(e.ctx, e.volumeID) // gone at the next poll
			e.cinder.ResetCalls()
		}, want: refused, event: "Warning CinderVolumeGone", calls: []string{fake.OpGetVolume}, volSize: -1},
		{name: "volume already grown (PV update lost)", spec: spec{block: true, volumeSize: 2}, want: resized, event: "Normal VolumeResized",
			calls: []string{fake.OpGetVolume}, volSize: 2, pvCap: "2Gi", claimCap: "2Gi", allocated: "2Gi"},
		{name: "PV already grown (claim update lost)", spec: spec{block: true, volumeSize: 2, pvCap: "2Gi"}, want: resized, event: "Normal VolumeResized",
			calls: []string{}, volSize: 2, pvCap: "2Gi", claimCap: "2Gi", allocated: "2Gi"},
		{name: "iSCSI filesystem PV grown by someone else: left alone", spec: spec{volumeSize: 2, pvCap: "2Gi"}, want: idle, calls: []string{}, volSize: 2, pvCap: "2Gi"},
		{name: "not our PV", spec: spec{block: true, notOurs: true}, want: idle, calls: []string{}},
		{name: "not grown", spec: spec{block: true, request: "1Gi"}, want: idle, calls: []string{}},
		{name: "shrink below an earlier grow", spec: spec{source: "csi", request: "1500Mi", pvCap: "2Gi", volumeSize: 2},
			setup: func(e *env) {
				c := e.claim()
				c.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: e.pv().Spec.Capacity[corev1.ResourceStorage]}
				c.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: corev1.PersistentVolumeClaimNodeResizePending}
				if _, err := e.kube.CoreV1().PersistentVolumeClaims(testNamespace).UpdateStatus(e.ctx, c, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: refused, event: "Warning VolumeShrinkUnsupported", msg: "cannot shrink", calls: []string{}, volSize: 2, pvCap: "2Gi",
			allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimNodeResizePending)},
		{name: "RBD filesystem with a node resize under way: left to the kubelet", spec: spec{source: "csi", volumeSize: 2, pvCap: "2Gi"},
			setup: func(e *env) {
				c := e.claim()
				c.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: e.pv().Spec.Capacity[corev1.ResourceStorage]}
				c.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: corev1.PersistentVolumeClaimNodeResizeInProgress}
				if _, err := e.kube.CoreV1().PersistentVolumeClaims(testNamespace).UpdateStatus(e.ctx, c, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: idle, calls: []string{}, volSize: 2, pvCap: "2Gi", allocated: "2Gi", allocatedState: string(corev1.PersistentVolumeClaimNodeResizeInProgress)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.spec)
			if tc.setup != nil {
				tc.setup(e)
			}
			res := e.r.pass(e.ctx, testKey)
			if res.out != tc.want {
				t.Errorf("outcome %s (%s: %s, %v), want %s", res.out, res.reason, res.message, res.err, tc.want)
			}
			events := e.drainEvents()
			wantEvents := []string{}
			if tc.event != "" {
				wantEvents = []string{tc.event}
			}
			if got := reasons(events); !slices.Equal(got, wantEvents) {
				t.Errorf("events %v, want %v", events, wantEvents)
			}
			if tc.msg != "" && (len(events) != 1 || !strings.Contains(events[0], tc.msg)) {
				t.Errorf("event %v does not say %q", events, tc.msg)
			}
			if got := e.cinder.Ops(); tc.calls != nil && !slices.Equal(got, tc.calls) {
				t.Errorf("Cinder calls %v, want %v", got, tc.calls)
			}
			e.cinder.SetDown(false)
			wantSize, wantStatus := tc.volSize, tc.volStatus
			if wantSize == 0 {
				wantSize = max(tc.spec.volumeSize, 1)
			}
			if wantStatus == "" {
				wantStatus = tc.spec.status
				if wantStatus == "" {
					wantStatus = cinder.StatusInUse
				}
			}
			if wantSize > 0 {
				if v := e.volume(); v.SizeGiB != wantSize || v.Status != wantStatus {
					t.Errorf("volume %d GiB %s, want %d GiB %s", v.SizeGiB, v.Status, wantSize, wantStatus)
				}
			}
			check := func(what, got, want, start string) {
				t.Helper()
				if want == "" {
					want = start
				}
				if want == none {
					want = ""
				}
				if got != want {
					t.Errorf("%s %q, want %q", what, got, want)
				}
			}
			c := e.claim()
			check("PV capacity", storageOf(e.pv().Spec.Capacity), tc.pvCap, firstOf(tc.spec.pvCap, "1Gi"))
			check("claim capacity", storageOf(c.Status.Capacity), tc.claimCap, firstOf(tc.spec.claimCap, "1Gi"))
			check("claim allocatedResources", storageOf(c.Status.AllocatedResources), tc.allocated, none)
			check("claim allocatedResourceStatuses", string(c.Status.AllocatedResourceStatuses[corev1.ResourceStorage]), tc.allocatedState, none)
		})
	}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestRefusalIsRememberedUntilTheRequestChanges: the same refusal costs no
// Cinder call and no new Event; a new request is tried for real.
func TestRefusalIsRememberedUntilTheRequestChanges(t *testing.T) {
	e := newEnv(t, spec{block: true})
	e.cinder.SetMaxMicroversion("3.40")
	if res := e.r.pass(e.ctx, testKey); res.out != refused {
		t.Fatalf("first pass %s", res.out)
	}
	e.drainEvents()
	e.cinder.ResetCalls()
	if res := e.r.pass(e.ctx, testKey); res.out != refusedAgain {
		t.Fatalf("second pass %s, want refusedAgain", res.out)
	}
	if ops, ev := e.cinder.Ops(), e.drainEvents(); len(ops) != 0 || len(ev) != 0 {
		t.Fatalf("second pass made calls %v and events %v", ops, ev)
	}
	e.cinder.SetMaxMicroversion("3.70") // Cinder upgraded; the user asks again, a little more
	e.setRequest("3Gi")
	if res := e.r.pass(e.ctx, testKey); res.out != resized {
		t.Fatalf("pass after a new request %s (%s)", res.out, res.message)
	}
	if v := e.volume(); v.SizeGiB != 3 {
		t.Fatalf("volume %d GiB", v.SizeGiB)
	}
}

// TestShrinkIsRefusedOnce: the shrink Event is not repeated.
func TestShrinkIsRefusedOnce(t *testing.T) {
	e := newEnv(t, spec{source: "csi", request: "1500Mi", pvCap: "2Gi", volumeSize: 2})
	c := e.claim()
	c.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: e.pv().Spec.Capacity[corev1.ResourceStorage]}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(testNamespace).UpdateStatus(e.ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if res := e.r.pass(e.ctx, testKey); res.out != refused {
		t.Fatalf("first pass %s", res.out)
	}
	if res := e.r.pass(e.ctx, testKey); res.out != refusedAgain {
		t.Fatalf("second pass %s, want refusedAgain", res.out)
	}
	if ev := e.drainEvents(); len(ev) != 1 {
		t.Errorf("events %v, want one", ev)
	}
}

// TestInterruptedExtendIsFinished: a crash right after Cinder accepted the
// extend, or a lost answer: the next pass finds the volume extending or
// grown and finishes without a second os-extend.
func TestInterruptedExtendIsFinished(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(f *fake.Fake)
	}{
		{"crash after os-extend", func(f *fake.Fake) { f.CrashAt(fake.OpExtendVolume) }},
		{"answer lost", func(f *fake.Fake) { f.LoseAnswer(fake.OpExtendVolume, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, spec{block: true})
			e.cinder.SetExtendingPolls(1)
			tc.inject(e.cinder)
			if res := e.r.pass(e.ctx, testKey); res.out != retry {
				t.Fatalf("first pass %s, want retry", res.out)
			}
			if v := e.volume(); v.Status != cinder.StatusExtending {
				t.Fatalf("volume %s after the interrupted pass", v.Status)
			}
			if pv := e.pv(); storageOf(pv.Spec.Capacity) != "1Gi" {
				t.Fatal("PV grown before the volume")
			}
			e.cinder.Restart()
			e.cinder.ResetCalls()
			if res := e.r.pass(e.ctx, testKey); res.out != resized {
				t.Fatalf("second pass %s (%s)", res.out, res.message)
			}
			if ops := e.cinder.Ops(); slices.Contains(ops, fake.OpExtendVolume) {
				t.Errorf("second pass sent os-extend again: %v", ops)
			}
			if v, c := e.volume(), e.claim(); v.SizeGiB != 2 || storageOf(c.Status.Capacity) != "2Gi" || storageOf(e.pv().Spec.Capacity) != "2Gi" {
				t.Errorf("volume %d GiB, claim %s, PV %s", v.SizeGiB, storageOf(c.Status.Capacity), storageOf(e.pv().Spec.Capacity))
			}
		})
	}
}

// TestSecondGrowWhileTheFirstRuns: the volume is extending to 2 GiB when
// the request becomes 3Gi: the pass waits for the first, the next extends
// again; nothing is refused.
func TestSecondGrowWhileTheFirstRuns(t *testing.T) {
	e := newEnv(t, spec{block: true, request: "3Gi"})
	e.cinder.SetExtendingPolls(2)
	if err := e.cinder.ExtendVolume(e.ctx, e.volumeID, 2); err != nil {
		t.Fatal(err)
	}
	if res := e.r.pass(e.ctx, testKey); res.out != inProgress {
		t.Fatalf("first pass %s (%s), want inProgress", res.out, res.message)
	}
	if v := e.volume(); v.SizeGiB != 2 || v.Status != cinder.StatusInUse {
		t.Fatalf("volume %d GiB %s after the first extend", v.SizeGiB, v.Status)
	}
	if res := e.r.pass(e.ctx, testKey); res.out != resized {
		t.Fatalf("second pass %s (%s)", res.out, res.message)
	}
	if v := e.volume(); v.SizeGiB != 3 || storageOf(e.claim().Status.Capacity) != "3Gi" {
		t.Fatalf("volume %d GiB, claim %s", v.SizeGiB, storageOf(e.claim().Status.Capacity))
	}
}

// TestExtendOutlastingThePass: a pass whose time ends while Cinder is
// still extending is inProgress, and the next one finishes.
func TestExtendOutlastingThePass(t *testing.T) {
	e := newEnv(t, spec{block: true})
	e.r.passTimeout = 500 * time.Millisecond // room for the Kubernetes and Cinder calls before the wait, under -race too
	e.cinder.SetExtendingPolls(1 << 30)
	if res := e.r.pass(e.ctx, testKey); res.out != inProgress {
		t.Fatalf("pass %s (%s), want inProgress", res.out, res.message)
	}
	if ev := e.drainEvents(); len(ev) != 0 {
		t.Errorf("events %v for an extend in progress", ev)
	}
	e.cinder.SetExtendingPolls(0)
	if err := e.cinder.SetStatus(e.volumeID, cinder.StatusInUse); err != nil { // the backend finished (without a size: see below)
		t.Fatal(err)
	}
	if res := e.r.pass(e.ctx, testKey); res.out != resized {
		t.Fatalf("second pass %s (%s)", res.out, res.message)
	}
}

// TestClaimDeletedMeanwhile: a claim deleted before or during a pass ends
// it without error; the PV keeps the size Cinder gave the volume.
func TestClaimDeletedMeanwhile(t *testing.T) {
	e := newEnv(t, spec{block: true})
	e.cinder.Hook(fake.OpWaitForVolumeStatus, func(_ context.Context, _ fake.Call) error {
		return e.kube.CoreV1().PersistentVolumeClaims(testNamespace).Delete(e.ctx, testClaim, metav1.DeleteOptions{})
	})
	if res := e.r.pass(e.ctx, testKey); res.out != gone {
		t.Fatalf("pass %s (%s), want gone", res.out, res.message)
	}
	if pv := e.pv(); storageOf(pv.Spec.Capacity) != "2Gi" {
		t.Errorf("PV %s, want the volume's 2Gi", storageOf(pv.Spec.Capacity))
	}
	if res := e.r.pass(e.ctx, testKey); res.out != gone {
		t.Fatalf("pass after deletion %s, want gone", res.out)
	}
}

func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		o          outcome
		name       string
		requeue    bool
		event      string
		remembered bool
	}{
		{idle, "idle", false, "", false},
		{gone, "gone", false, "", false},
		{resized, "resized", false, corev1.EventTypeNormal, false},
		{nodePending, "node_pending", false, corev1.EventTypeNormal, false},
		{inProgress, "in_progress", true, "", false},
		{retry, "retry", true, corev1.EventTypeWarning, false},
		{refused, "refused", false, corev1.EventTypeWarning, true},
		{refusedAgain, "refused_again", false, "", false},
	} {
		if tc.o.String() != tc.name || tc.o.requeue() != tc.requeue || tc.o.eventType() != tc.event || tc.o.remembered() != tc.remembered {
			t.Errorf("%s: requeue %v event %q remembered %v", tc.o, tc.o.requeue(), tc.o.eventType(), tc.o.remembered())
		}
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	_, err := New(Config{})
	for _, want := range []string{"no Cinder client", "no Kubernetes client", "no event recorder", "provisioner name is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(empty): %v, want %q", err, want)
		}
	}
}
