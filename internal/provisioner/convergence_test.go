package provisioner

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// These tests interrupt Provision and Delete at every Cinder step the honest
// fake models (a crash after the step took effect, an answer lost after it
// took effect) and check that the next attempt converges: Bound to exactly
// one volume with exactly one attached export, or nothing left at all.

// provisionSteps are the Cinder steps of one provisioning, per export method.
var provisionSteps = map[cinder.ExportMethod][]string{
	cinder.ExportAttachments: {fake.OpFindVolumeByName, fake.OpCreateVolume, fake.OpWaitForVolumeStatus, fake.OpAttachmentCreate, fake.OpAttachmentComplete},
	cinder.ExportLegacy:      {fake.OpFindVolumeByName, fake.OpCreateVolume, fake.OpWaitForVolumeStatus, fake.OpReserve, fake.OpInitializeConnection, fake.OpAttach},
}

// interruptions are the ways a step can be cut off after Cinder applied it.
var interruptions = map[string]func(f *fake.Fake, op string){
	"crash":       func(f *fake.Fake, op string) { f.CrashAt(op) },
	"lost answer": func(f *fake.Fake, op string) { f.LoseAnswer(op, nil) },
}

// checkBoundToOne asserts that the PV is backed by the only volume of its
// name, exported exactly once (attached) with the export the PV records.
func (e *env) checkBoundToOne(pv *corev1.PersistentVolume) {
	e.t.Helper()
	var named []cinder.Volume
	for _, v := range e.cinder.Volumes() {
		if v.Name == testPVName {
			named = append(named, v)
		}
	}
	if len(named) != 1 {
		e.t.Fatalf("%d volumes named %s, want exactly 1: %+v", len(named), testPVName, named)
	}
	v := named[0]
	if pv.Annotations[contract.AnnVolumeID] != v.ID || v.Status != cinder.StatusInUse {
		e.t.Errorf("PV backed by %s, volume %s is %s; want the PV on the one in-use volume", pv.Annotations[contract.AnnVolumeID], v.ID, v.Status)
	}
	atts := e.cinder.Attachments(v.ID)
	if len(atts) != 1 || atts[0].Status != cinder.AttachAttached || atts[0].ID != pv.Annotations[contract.AnnExportID] {
		e.t.Errorf("attachments of %s = %+v, want only the PV's export %s, attached", v.ID, atts, pv.Annotations[contract.AnnExportID])
	}
	if e.cinder.Reserved(v.ID) {
		e.t.Errorf("volume %s keeps a reservation without record", v.ID)
	}
}

// checkNothingLeft asserts no volume, export or CHAP Secret remains.
func (e *env) checkNothingLeft() {
	e.t.Helper()
	if vols := e.cinder.Volumes(); len(vols) != 0 {
		e.t.Errorf("volumes left: %+v", vols)
	}
	if l, _ := e.kube.CoreV1().Secrets(testSecretNamespace).List(e.ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		e.t.Errorf("%d Secrets left", len(l.Items))
	}
}

func TestProvisionConvergesAfterAnInterruptionAtAnyStep(t *testing.T) {
	for method, steps := range provisionSteps {
		for how, interrupt := range interruptions {
			for _, op := range steps {
				t.Run(string(method)+"/"+how+" at "+op, func(t *testing.T) {
					e := newEnv(t)
					e.cinder.SetExportMethod(method)
					opts := options(newClaim(claimSpec{}), newClass(nil))
					e.attempted = op == fake.OpFindVolumeByName // only a retry looks up
					interrupt(e.cinder, op)
					_, state, err := e.provision(opts)
					if err == nil {
						t.Fatal("first attempt succeeded, want it cut off")
					}
					if state != controller.ProvisioningInBackground {
						t.Errorf("state after the interruption = %s, want InBackground (a volume may exist): %v", state, err)
					}
					e.cinder.Restart()
					pv, state, err := e.provision(opts)
					if err != nil || state != controller.ProvisioningFinished {
						t.Fatalf("retry = %v, %s; want bound", err, state)
					}
					e.checkBoundToOne(pv)
					if err := e.p.Delete(e.ctx, e.save(pv)); err != nil {
						t.Fatalf("Delete: %v", err)
					}
					e.checkNothingLeft()
				})
			}
		}
	}
}

func TestClaimDeletedAfterAnInterruptionLeavesNothing(t *testing.T) {
	for method, steps := range provisionSteps {
		for _, op := range steps {
			t.Run(string(method)+"/crash at "+op, func(t *testing.T) {
				e := newEnv(t)
				e.cinder.SetExportMethod(method)
				opts := options(newClaim(claimSpec{}), newClass(nil))
				e.attempted = op == fake.OpFindVolumeByName // only a retry looks up
				e.cinder.CrashAt(op)
				if _, _, err := e.provision(opts); err == nil {
					t.Fatal("first attempt succeeded, want it cut off")
				}
				e.cinder.Restart()
				if err := e.kube.CoreV1().PersistentVolumeClaims(opts.PVC.Namespace).Delete(e.ctx, opts.PVC.Name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				// the library calls again with the claim it last saw
				pv, state, err := e.p.Provision(e.ctx, opts)
				var ignored *controller.IgnoredError
				if pv != nil || !errors.As(err, &ignored) || state != controller.ProvisioningFinished {
					t.Fatalf("Provision for a deleted claim = %v, %v, %s; want IgnoredError, Finished", pv, err, state)
				}
				if n := len(e.calls(fake.OpCreateVolume)); n > 1 {
					t.Errorf("%d creates, want none for the deleted claim", n)
				}
				e.checkNothingLeft()
				if evs := e.drainEvents(); len(evs) != 1 {
					// only the first attempt's Warning: none for the deleted claim
					t.Errorf("events = %q, want only the interrupted attempt's", evs)
				}
			})
		}
	}
}

func TestDeleteConvergesAfterAnInterruption(t *testing.T) {
	steps := map[cinder.ExportMethod][]string{
		cinder.ExportAttachments: {fake.OpAttachmentDelete, fake.OpGetVolume, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted},
		cinder.ExportLegacy:      {fake.OpBeginDetaching, fake.OpTerminateConnection, fake.OpDetach, fake.OpDeleteVolume},
	}
	for method, ops := range steps {
		for how, interrupt := range interruptions {
			for _, op := range ops {
				t.Run(string(method)+"/"+how+" at "+op, func(t *testing.T) {
					e := newEnv(t)
					e.cinder.SetExportMethod(method)
					// deleting takes a few polls: the retry sees it
					e.cinder.SetDeletingPolls(3)
					pv := provisioned(t, e, nil)
					interrupt(e.cinder, op)
					if err := e.p.Delete(e.ctx, pv); err == nil {
						if how == "crash" {
							t.Fatal("Delete succeeded through a crash")
						}
					}
					e.cinder.Restart()
					if err := e.p.Delete(e.ctx, pv); err != nil {
						t.Fatalf("retried Delete: %v", err)
					}
					e.checkNothingLeft()
					accepted := 0
					for _, c := range e.calls(fake.OpDeleteVolume) {
						if !errors.Is(c.Err, cinder.ErrInvalid) {
							accepted++
						}
					}
					if refused := len(e.calls(fake.OpDeleteVolume)) - accepted; refused > 0 {
						t.Errorf("%d DELETEs refused by Cinder: a volume already deleting must be waited for, not deleted again", refused)
					}
				})
			}
		}
	}
}

func TestDeleteReportsErrorDeleting(t *testing.T) {
	e := newEnv(t)
	e.cinder.SetDeleteFinalStatus(cinder.StatusErrorDeleting)
	pv := provisioned(t, e, nil)
	id := pv.Annotations[contract.AnnVolumeID]
	for attempt := 1; attempt <= 2; attempt++ {
		err := e.p.Delete(e.ctx, pv)
		var se *stuckVolumeError
		if attempt == 2 && !errors.As(err, &se) {
			t.Fatalf("attempt %d: Delete = %v, want a stuck volume error", attempt, err)
		}
		if err == nil || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), cinder.StatusErrorDeleting) {
			t.Errorf("attempt %d: Delete = %v, want an error naming %s and %s", attempt, err, id, cinder.StatusErrorDeleting)
		}
	}
	if n := len(e.calls(fake.OpDeleteVolume)); n != 1 {
		t.Errorf("%d DELETEs sent, want 1: error_deleting needs an admin, not another DELETE", n)
	}
	if err := e.p.Delete(e.ctx, pv); err == nil || !strings.Contains(err.Error(), "openstack volume set --state error "+id) {
		t.Errorf("Delete = %v, want the reset command", err)
	}
}

func TestProvisionReplacesAVolumeCinderNeverScheduled(t *testing.T) {
	for _, scheduled := range []bool{false, true} {
		name := map[bool]string{false: "never scheduled: deleted and made anew", true: "scheduled: waited for"}[scheduled]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			old := earlierVolume(e, cinder.Volume{Status: cinder.StatusCreating, CreatedAt: fakeEpoch.Add(-time.Hour)})
			if !scheduled {
				if err := e.cinder.SetHost(old, ""); err != nil {
					t.Fatal(err)
				}
			} else {
				e.cinder.Hook(fake.OpWaitForVolumeStatus, func(_ context.Context, _ fake.Call) error {
					return e.cinder.SetStatus(old, cinder.StatusAvailable)
				})
			}
			pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			e.checkBoundToOne(pv)
			if got := pv.Annotations[contract.AnnVolumeID] == old; got != scheduled {
				t.Errorf("PV on the old volume: %v, want %v", got, scheduled)
			}
		})
	}
}

// A volume a backend took and never finished (its create lost with a
// cinder-volume that died holding it) cannot be deleted: the attempt waits
// its time, then says what an admin does, and the volume is kept.
func TestVolumeCreatingOnABackendForEverIsReportedStuck(t *testing.T) {
	e := newEnv(t)
	old := earlierVolume(e, cinder.Volume{Status: cinder.StatusCreating, CreatedAt: fakeEpoch.Add(-time.Hour)})
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second) // the attempt's deadline
	defer cancel()
	opts := options(newClaim(claimSpec{}), newClass(nil))
	e.ensureClaim(opts.PVC)
	_, state, err := e.p.Provision(ctx, opts)
	var se *stuckVolumeError
	if !errors.As(err, &se) || se.status != cinder.StatusCreating || state != controller.ProvisioningInBackground {
		t.Fatalf("Provision = %v, %s; want the volume reported stuck creating, InBackground", err, state)
	}
	msg := e.oneWarning(ReasonVolumeStuck)
	for _, want := range []string{old, "is creating", "openstack volume set --state error " + old} {
		if !strings.Contains(msg, want) {
			t.Errorf("event %q does not say %q", msg, want)
		}
	}
	if vols := e.cinder.Volumes(); len(vols) != 1 || vols[0].ID != old {
		t.Errorf("volumes = %+v, want only the one creating, kept", vols)
	}
}

func TestProvisionNeverTouchesTheExportOfAPVThatExists(t *testing.T) {
	e := newEnv(t)
	opts := options(newClaim(claimSpec{}), newClass(nil))
	pv, _, err := e.provision(opts)
	if err != nil {
		t.Fatal(err)
	}
	saved := e.save(pv)
	e.cinder.ResetCalls()
	// informer lag or a second leader: the library calls again
	again, state, err := e.provision(opts)
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision = %v, %s", err, state)
	}
	if again.Annotations[contract.AnnExportID] != saved.Annotations[contract.AnnExportID] || again.Annotations[contract.AnnVolumeID] != saved.Annotations[contract.AnnVolumeID] {
		t.Errorf("Provision returned %v, want the saved PV", again.Annotations)
	}
	if ops := e.ops(); len(ops) != 1 || ops[0] != fake.OpFindVolumeByName {
		t.Errorf("Cinder calls = %q, want only the lookup", ops)
	}
	e.checkBoundToOne(saved)
}

func TestProvisionReportsAVolumeItCannotUse(t *testing.T) {
	tests := []struct {
		name   string
		vol    cinder.Volume
		reason string
		want   []string
	}{
		{"size differs", cinder.Volume{SizeGiB: 2}, ReasonVolumeMismatch, []string{"size 2 GiB, the claim asks for 1 GiB", "delete that volume in Cinder"}},
		{"zone differs", cinder.Volume{AvailabilityZone: "zone-b"}, ReasonVolumeMismatch, []string{`availability zone "zone-b", the class asks for "zone-a"`}},
		{"maintenance", cinder.Volume{Status: "maintenance"}, ReasonVolumeStuck, []string{"is maintenance", "openstack volume set --state available"}},
		{"error_deleting", cinder.Volume{Status: cinder.StatusErrorDeleting}, ReasonVolumeStuck, []string{"is error_deleting", "openstack volume set --state error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.vol.SizeGiB == 0 {
				tc.vol.SizeGiB = 1
			}
			if tc.vol.AvailabilityZone == "" {
				tc.vol.AvailabilityZone = "zone-a"
			}
			id := earlierVolume(e, tc.vol)
			before, _ := e.cinder.Volume(id)
			_, state, err := e.provision(options(newClaim(claimSpec{}), newClass(map[string]string{"availability": "zone-a"})))
			if err == nil || state != controller.ProvisioningInBackground {
				t.Fatalf("Provision = %v, %s; want an error, InBackground (the volume exists)", err, state)
			}
			msg := e.oneWarning(tc.reason)
			for _, w := range append(tc.want, id) {
				if !strings.Contains(msg, w) {
					t.Errorf("event %q does not say %q", msg, w)
				}
			}
			if after, _ := e.cinder.Volume(id); after.Status != before.Status || len(e.cinder.Volumes()) != 1 {
				t.Errorf("volume changed from %s to %s (or others made): it must be left for the admin", before.Status, after.Status)
			}
		})
	}
}

func TestFinalRefusalsDoNotChurn(t *testing.T) {
	nfs := cinder.Connection{DriverVolumeType: "nfs", Data: map[string]any{"export": "192.0.2.1:/srv", "name": "volume-" + fake.VolumeIDPlaceholder}}
	tests := []struct {
		name   string
		params map[string]string
		claim  claimSpec
		setup  func(e *env)
		reason string
	}{
		{"no native source", map[string]string{"type": "nfs"}, claimSpec{}, func(e *env) { e.cinder.SetConnection("nfs", nfs) }, ReasonUnsupportedTransport},
		{"unknown parameter", map[string]string{"zone": "a"}, claimSpec{}, nil, ReasonInvalidParameter},
		{"ReadWriteMany on a volume without multiattach", nil,
			claimSpec{block: true, modes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}},
			func(e *env) { earlierVolume(e, cinder.Volume{Multiattach: false}) }, ReasonInvalidClaim},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(e)
			}
			opts := options(newClaim(tc.claim), newClass(tc.params))
			_, state, first := e.provision(opts)
			if first == nil || state != controller.ProvisioningFinished {
				t.Fatalf("first attempt = %v, %s; want a refusal", first, state)
			}
			e.oneWarning(tc.reason)
			e.checkNothingLeft()
			e.cinder.ResetCalls()
			for range 3 {
				_, state, err := e.provision(opts)
				if err == nil || err.Error() != first.Error() || state != controller.ProvisioningFinished {
					t.Errorf("retry = %v, %s; want the same refusal, Finished", err, state)
				}
			}
			if ops := e.ops(); len(ops) != 0 {
				t.Errorf("retries called Cinder: %q", ops)
			}
			if evs := e.drainEvents(); len(evs) != 0 {
				t.Errorf("retries recorded events: %q", evs)
			}
			// a changed class is tried for real again
			opts.StorageClass = opts.StorageClass.DeepCopy()
			opts.StorageClass.ResourceVersion = "2"
			_, _, _ = e.provision(opts)
			if len(e.ops()) == 0 {
				t.Error("a changed class was not tried against Cinder again")
			}
		})
	}
}

func TestRefusalRemovesAnEarlierAttemptsVolume(t *testing.T) {
	e := newEnv(t)
	opts := options(newClaim(claimSpec{}), newClass(nil))
	e.cinder.CrashAt(fake.OpAttachmentComplete)
	if _, _, err := e.provision(opts); err == nil {
		t.Fatal("first attempt succeeded")
	}
	e.cinder.Restart()
	// the class was recreated with a parameter this provisioner refuses
	opts.StorageClass = newClass(map[string]string{"zone": "a"})
	_, state, err := e.provision(opts)
	var pe *ParameterError
	if !errors.As(err, &pe) || state != controller.ProvisioningFinished {
		t.Fatalf("Provision = %v, %s; want the parameter refused, Finished", err, state)
	}
	e.checkNothingLeft()
}

func TestLookupRejectedKeepsTheClaimInProgress(t *testing.T) {
	e := newEnv(t)
	e.attempted = true // a retry: an earlier attempt's volume may exist
	e.cinder.FailNext(fake.OpFindVolumeByName, cinder.NewError("find volume", testPVName, cinder.ErrUnauthorized, "The request you have made requires authentication."))
	_, state, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err == nil || state != controller.ProvisioningInBackground {
		t.Fatalf("Provision = %v, %s; want an error, InBackground: an earlier attempt's volume may exist", err, state)
	}
	if msg := e.oneWarning(ReasonCinderRejected); !strings.Contains(msg, "credentials") {
		t.Errorf("event %q does not point at the credentials", msg)
	}
}

func TestDeleteCleansUpAPVTheLibraryCouldNotSave(t *testing.T) {
	retain := corev1.PersistentVolumeReclaimRetain
	tests := []struct {
		name     string
		save     bool // the API server has the PV
		unsaved  bool // Delete gets the object Provision returned (no UID)
		wantGone bool
	}{
		{"never saved: everything removed", false, true, true},
		{"saved after all: kept", true, true, false},
		{"a saved Retain PV: kept", true, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			class := newClass(nil)
			class.ReclaimPolicy = &retain
			pv, _, err := e.provision(options(newClaim(claimSpec{}), class))
			if err != nil {
				t.Fatal(err)
			}
			target := pv
			if tc.save {
				saved := e.save(pv)
				if !tc.unsaved {
					target = saved
				}
			}
			err = e.p.Delete(e.ctx, target)
			var ignored *controller.IgnoredError
			if tc.wantGone {
				if err != nil {
					t.Fatalf("Delete: %v", err)
				}
				e.checkNothingLeft()
				return
			}
			if !errors.As(err, &ignored) {
				t.Fatalf("Delete = %v, want IgnoredError", err)
			}
			if len(e.cinder.Volumes()) != 1 {
				t.Error("the volume of a saved Retain PV was deleted")
			}
		})
	}
}

func TestDeleteUsesTheExportMethodRecordedOnThePV(t *testing.T) {
	e := newEnv(t)
	e.cinder.SetExportMethod(cinder.ExportLegacy)
	pv := provisioned(t, e, nil)
	// the provisioner restarted with --cinder-api attachments
	e.cinder.SetExportMethod(cinder.ExportAttachments)
	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	var steps []string
	for _, c := range e.cinder.Steps() {
		steps = append(steps, c.Op)
	}
	joined := strings.Join(steps, " ")
	if !strings.Contains(joined, fake.OpTerminateConnection) || !strings.Contains(joined, fake.OpDetach) || strings.Contains(joined, fake.OpAttachmentDelete) {
		t.Errorf("steps = %q, want the legacy teardown the PV records", steps)
	}
	e.checkNothingLeft()
}

// A create still in Cinder when its process died can land after the next
// process's lookup and create: the claim has two volumes of its name.
func TestProvisionKeepsOneOfTwoVolumesOfTheClaimsName(t *testing.T) {
	e := newEnv(t)
	first := earlierVolume(e, cinder.Volume{})
	second := earlierVolume(e, cinder.Volume{})
	pv, state, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision = %v, %s; want bound", err, state)
	}
	if pv.Annotations[contract.AnnVolumeID] != first {
		t.Errorf("bound to %s, want the oldest, %s", pv.Annotations[contract.AnnVolumeID], first)
	}
	if _, ok := e.cinder.Volume(second); ok {
		t.Errorf("the second volume %s is still there", second)
	}
	e.checkBoundToOne(pv)
}

func TestSweepRemovesASecondVolumeOfABoundPVsName(t *testing.T) {
	e := newEnv(t)
	pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.save(pv)
	e.bind(pv)
	late := e.cinder.AddVolume(cinder.Volume{Name: testPVName, SizeGiB: 1, Metadata: map[string]string{
		contract.MetaClusterID: testClusterID, contract.MetaProvisioner: DefaultName, contract.MetaPVName: testPVName,
		contract.MetaPVCNamespace: "app", contract.MetaPVCName: "data", contract.MetaReclaimPolicy: "Delete"}})
	if n, err := e.p.Sweep(e.ctx); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want nothing deleted within the grace period", n, err)
	}
	e.cinder.Advance(2 * DefaultSweepGrace)
	if n, err := e.p.Sweep(e.ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want the late volume removed", n, err)
	}
	if _, ok := e.cinder.Volume(late); ok {
		t.Error("the late second volume is still there")
	}
	e.checkBoundToOne(pv)
}
