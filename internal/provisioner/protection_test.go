package provisioner

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// liveClaim returns the claim as the API server has it (nil: gone).
func (e *env) liveClaim() *corev1.PersistentVolumeClaim {
	e.t.Helper()
	c, err := e.kube.CoreV1().PersistentVolumeClaims("app").Get(e.ctx, "data", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// startDeleting marks the claim deleted by a user: the API server keeps it,
// Terminating, while finalizers hold it.
func (e *env) startDeleting() *corev1.PersistentVolumeClaim {
	e.t.Helper()
	c := e.liveClaim()
	now := metav1.Now()
	c.DeletionTimestamp = &now
	out, err := e.kube.CoreV1().PersistentVolumeClaims("app").Update(e.ctx, c, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestProvisionHoldsTheClaimBeforeTheFirstCreate(t *testing.T) {
	e := newEnv(t)
	heldAtCreate := false
	e.cinder.Hook(fake.OpCreateVolume, func(context.Context, fake.Call) error {
		heldAtCreate = protected(e.liveClaim())
		return nil
	})
	pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !heldAtCreate {
		t.Error("the claim did not carry the provisioning finalizer when the create was sent")
	}
	if !protected(e.liveClaim()) {
		t.Error("a claim whose PV is not bound yet was released")
	}
	// bound: the Guard releases it without a Cinder call
	e.save(pv)
	c := e.liveClaim()
	c.Spec.VolumeName = pv.Name
	c, _ = e.kube.CoreV1().PersistentVolumeClaims("app").Update(e.ctx, c, metav1.UpdateOptions{})
	e.cinder.ResetCalls()
	if again, err := e.p.release(e.ctx, c); err != nil || again != 0 {
		t.Fatalf("release = %v, %v", again, err)
	}
	if protected(e.liveClaim()) {
		t.Error("a bound claim still carries the provisioning finalizer")
	}
	if ops := e.ops(); len(ops) != 0 {
		t.Errorf("Cinder calls %q releasing a bound claim, want none", ops)
	}
}

func TestClaimsThatNeverMakeAVolumeAreNeverHeld(t *testing.T) {
	e := newEnv(t)
	claim := newClaim(claimSpec{})
	claim.Spec.Selector = &metav1.LabelSelector{}
	if _, _, err := e.provision(options(claim, newClass(nil))); err == nil {
		t.Fatal("a claim with a selector was provisioned")
	}
	if protected(e.liveClaim()) {
		t.Error("a refused claim carries the provisioning finalizer")
	}
}

// A claim refused after its volume was made: the volume goes, then the
// claim is released.
func TestRefusalReleasesTheClaimOnceNothingIsLeft(t *testing.T) {
	e := newEnv(t)
	e.cinder.SetConnection("nfs", cinder.Connection{DriverVolumeType: "nfs", Data: map[string]any{"export": "host:/share"}})
	_, state, err := e.provision(options(newClaim(claimSpec{}), newClass(map[string]string{"type": "nfs"})))
	if err == nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision = %v, %s; want a final refusal", err, state)
	}
	e.checkNothingLeft()
	if protected(e.liveClaim()) {
		t.Error("the refused claim is still held")
	}
}

// A claim of a Retain class deleted while its volume is in flight: no PV
// ever held the volume, so it is no retained data; it goes, then the claim.
// The two ways a claim deleted in flight is cleaned up.
var cleanUps = []string{"the library calls Provision", "the Guard (no attempt runs)"}

// deleteAndCleanUp deletes the claim in flight and has it cleaned up how
// says: nothing of it may be left, and the claim is let go.
func (e *env) deleteAndCleanUp(how string, opts controller.ProvisionOptions) {
	e.t.Helper()
	deleting := e.startDeleting()
	switch how {
	case cleanUps[0]:
		_, _, err := e.p.Provision(e.ctx, opts)
		var ig *controller.IgnoredError
		if !errors.As(err, &ig) {
			e.t.Fatalf("Provision of a deleted claim = %v, want IgnoredError", err)
		}
	default:
		if again, err := e.p.release(e.ctx, deleting); err != nil || again != 0 {
			e.t.Fatalf("release = %v, %v", again, err)
		}
	}
	e.checkNothingLeft()
	if protected(e.liveClaim()) {
		e.t.Error("the deleted claim is still held after its volumes went")
	}
}

func TestClaimDeletedInFlightLosesItsVolumeWhateverThePolicy(t *testing.T) {
	for _, how := range cleanUps {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			class := newClass(nil)
			retain := corev1.PersistentVolumeReclaimRetain
			class.ReclaimPolicy = &retain
			opts := options(newClaim(claimSpec{}), class)
			e.cinder.Fail(fake.OpAttachmentComplete, cinder.NewError("export volume", "", cinder.ErrUnavailable, "cinder-volume down"))
			if _, state, err := e.provision(opts); err == nil || state != controller.ProvisioningInBackground {
				t.Fatalf("Provision = %v, %s; want InBackground", err, state)
			}
			if len(e.cinder.Volumes()) != 1 || !protected(e.liveClaim()) {
				t.Fatalf("want one volume in flight and the claim held: %d volumes, held %v", len(e.cinder.Volumes()), protected(e.liveClaim()))
			}
			e.cinder.Fail(fake.OpAttachmentComplete, nil)
			e.deleteAndCleanUp(how, opts)
		})
	}
}

// A create still in Cinder when its process died can land after the next
// process's lookup and create; the claim is then deleted: both volumes of
// its name are ours and unwanted, and both go (the R1 failure of
// 2026-12-06: the Guard stopped at "2 volumes carry this name" for ever).
func TestClaimDeletedWithTwoVolumesOfItsNameLosesBoth(t *testing.T) {
	for _, how := range cleanUps {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			opts := options(newClaim(claimSpec{}), newClass(nil))
			e.cinder.Fail(fake.OpAttachmentComplete, cinder.NewError("export volume", "", cinder.ErrUnavailable, "cinder-volume down"))
			if _, state, err := e.provision(opts); err == nil || state != controller.ProvisioningInBackground {
				t.Fatalf("Provision = %v, %s; want InBackground", err, state)
			}
			e.cinder.Fail(fake.OpAttachmentComplete, nil)
			earlierVolume(e, cinder.Volume{}) // the lost create, landed late
			if n := len(e.cinder.Volumes()); n != 2 {
				t.Fatalf("%d volumes, want the two of the claim's name", n)
			}
			e.deleteAndCleanUp(how, opts)
		})
	}
}

// The Guard never acts on a claim an attempt is working on.
func TestGuardWaitsForTheAttemptOnAClaim(t *testing.T) {
	e := newEnv(t)
	opts := options(newClaim(claimSpec{}), newClass(nil))
	e.cinder.Fail(fake.OpAttachmentComplete, cinder.NewError("export volume", "", cinder.ErrUnavailable, "down"))
	if _, _, err := e.provision(opts); err == nil {
		t.Fatal("want the attempt to stay in flight")
	}
	deleting := e.startDeleting()
	if err := e.p.locks.lock(e.ctx, deleting.UID); err != nil { // an attempt holds it
		t.Fatal(err)
	}
	e.cinder.ResetCalls()
	again, err := e.p.release(e.ctx, deleting)
	if err != nil || again == 0 {
		t.Fatalf("release while an attempt works = %v, %v; want again", again, err)
	}
	if ops := e.ops(); len(ops) != 0 {
		t.Errorf("Cinder calls %q while an attempt holds the claim", ops)
	}
	e.p.locks.unlock(deleting.UID)
	e.cinder.Fail(fake.OpAttachmentComplete, nil)
	if again, err := e.p.release(e.ctx, deleting); err != nil || again != 0 {
		t.Fatalf("release = %v, %v", again, err)
	}
	e.checkNothingLeft()
}

// A claim deleted in flight whose volume a PV refers to (an admin made a
// static PV for it): the volume stays, the claim is released.
func TestCleanupKeepsAVolumeAPVRefersTo(t *testing.T) {
	e := newEnv(t)
	opts := options(newClaim(claimSpec{}), newClass(nil))
	e.cinder.Fail(fake.OpAttachmentComplete, cinder.NewError("export volume", "", cinder.ErrUnavailable, "down"))
	if _, _, err := e.provision(opts); err == nil {
		t.Fatal("want the attempt in flight")
	}
	e.cinder.Fail(fake.OpAttachmentComplete, nil)
	id := e.cinder.Volumes()[0].ID
	e.save(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "admins-pv"}, Spec: corev1.PersistentVolumeSpec{
		PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{IQN: "iqn.2010-10.org.openstack:volume-" + id, TargetPortal: "127.0.0.1:3260"}}}})
	deleting := e.startDeleting()
	if _, err := e.p.release(e.ctx, deleting); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.cinder.Volume(id); !ok {
		t.Fatal("a volume a PV refers to was deleted")
	}
	if protected(e.liveClaim()) {
		t.Error("claim still held")
	}
}

// The CHAP Secret is cleaned up in the namespace it was made in, recorded
// on the volume, even once the class is gone.
func TestCleanupFindsTheSecretWhereItWasMade(t *testing.T) {
	e := newEnv(t)
	const ns = "storage-secrets"
	opts := options(newClaim(claimSpec{}), newClass(map[string]string{"chapSecretNamespace": ns}))
	pv, _, err := e.provision(opts)
	if err != nil {
		t.Fatal(err)
	}
	// the PV was never saved (the process died), then the claim was deleted
	secret := pv.Spec.ISCSI.SecretRef
	if secret.Namespace != ns || !e.secretExists(ns, secret.Name) {
		t.Fatalf("Secret %s/%s not made in %s", secret.Namespace, secret.Name, ns)
	}
	deleting := e.startDeleting()
	if _, err := e.p.release(e.ctx, deleting); err != nil {
		t.Fatal(err)
	}
	if e.secretExists(ns, secret.Name) {
		t.Errorf("Secret %s/%s left behind", ns, secret.Name)
	}
	e.checkNothingLeft()
}

// A volume stuck creating is deleted only when Cinder's own clock says it
// is old: a young one is waited for, whatever the provisioner's clock.
func TestRecoveredCreatingVolumeIsAgedByCinderClock(t *testing.T) {
	e := newEnv(t)
	e.cinder.SetCreatingPolls(3)
	md := map[string]string{contract.MetaClusterID: testClusterID, contract.MetaPVName: testPVName, contract.MetaProvisioner: DefaultName}
	// an earlier attempt's create, still creating (Cinder's created_at)
	e.attempted = true
	if _, err := e.cinder.CreateVolume(e.ctx, cinder.CreateRequest{Name: testPVName, SizeGiB: 1, Metadata: md}); err != nil {
		t.Fatal(err)
	}
	e.cinder.Advance(5 * time.Second)
	e.cinder.ResetCalls()
	pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.calls(fake.OpDeleteVolume)); n != 0 {
		t.Errorf("%d DELETEs of a volume 5 s old by Cinder's clock, want none", n)
	}
	if n := len(e.calls(fake.OpCreateVolume)); n != 0 {
		t.Errorf("%d creates, want the recovered volume used", n)
	}
	e.save(pv)
	e.checkBoundToOne(pv)
}

func TestProvisionNeverHoldsAClaimBeingDeleted(t *testing.T) {
	e := newEnv(t)
	opts := options(newClaim(claimSpec{}), newClass(nil))
	e.ensureClaim(opts.PVC)
	e.startDeleting()
	if _, _, err := e.p.Provision(e.ctx, opts); err == nil {
		t.Fatal("a claim being deleted was provisioned")
	}
	if n := len(e.calls(fake.OpCreateVolume)); n != 0 {
		t.Errorf("%d creates for a claim being deleted", n)
	}
	if c := e.liveClaim(); slices.Contains(c.Finalizers, contract.FinalizerProvisioning) {
		t.Error("a claim being deleted was given the finalizer")
	}
}

// An export's rollback outlives the attempt that started it, but not the
// leadership: a replica that lost the Lease sends Cinder nothing more.
func TestRollbackStopsWhenLeadershipIsLost(t *testing.T) {
	e := newEnv(t)
	leader, loseLeadership := context.WithCancel(e.ctx)
	defer loseLeadership()
	ctx := cinder.WithFence(leader)
	e.cinder.Hook(fake.OpAttachmentComplete, func(context.Context, fake.Call) error {
		loseLeadership()
		return cinder.NewError("export volume", "", cinder.ErrUnavailable, "cinder-volume down")
	})
	opts := options(newClaim(claimSpec{}), newClass(nil))
	e.ensureClaim(opts.PVC)
	if _, _, err := e.p.Provision(ctx, opts); err == nil {
		t.Fatal("want the export to fail")
	}
	for _, st := range e.cinder.Steps() {
		// a request on an ended context never leaves the process
		if st.Op == fake.OpAttachmentDelete && !errors.Is(st.Err, context.Canceled) {
			t.Errorf("attachment delete reached Cinder after leadership was lost (err %v)", st.Err)
		}
	}
	// the next leader finds the export left and converges
	e.cinder.Hook(fake.OpAttachmentComplete, nil)
	pv, _, err := e.p.Provision(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.save(pv)
	e.checkBoundToOne(pv)
}

// Every cinder-provisioner of a cluster puts the same finalizer on its
// claims. A claim the PV binder named another provisioner for (another
// cloud, another cluster id: its volume is where this one does not look)
// is never released here, deleted or bound, and costs no Cinder call: only
// its own provisioner knows whether a volume of it is still in flight.
func TestClaimOfAnotherProvisionerIsNeverReleased(t *testing.T) {
	for _, end := range []string{"deleted", "bound"} {
		t.Run(end, func(t *testing.T) {
			e := newEnv(t)
			claim := newClaim(claimSpec{})
			claim.Annotations[contract.AnnStorageProvisioner] = "region-two.cinder.openstack.org/standalone-cinder"
			claim.Finalizers = []string{contract.FinalizerProvisioning}
			e.ensureClaim(claim)
			var held *corev1.PersistentVolumeClaim
			if end == "deleted" {
				held = e.startDeleting()
			} else {
				c := e.liveClaim()
				c.Spec.VolumeName = testPVName
				var err error
				if held, err = e.kube.CoreV1().PersistentVolumeClaims("app").Update(e.ctx, c, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if e.p.needsRelease(held) {
				t.Error("the Guard would queue another provisioner's claim")
			}
			if again, err := e.p.release(e.ctx, held); err != nil || again != 0 {
				t.Errorf("release = %v, %v; want 0, nil", again, err)
			}
			if !protected(e.liveClaim()) {
				t.Error("another provisioner's claim lost its finalizer")
			}
			if ops := e.cinder.Ops(); len(ops) != 0 {
				t.Errorf("Cinder calls for another provisioner's claim: %v", ops)
			}
		})
	}
}

// Only a claim no attempt ever touched is created without a lookup by name:
// one that carries the started mark (an earlier attempt, released since),
// the finalizer, or was protected by another process between this
// attempt's read and its update may have a volume of its name.
func TestOnlyAClaimNeverAttemptedSkipsTheLookup(t *testing.T) {
	tests := []struct {
		name       string
		prepare    func(e *env, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim
		wantLookup bool
	}{
		{"never attempted", func(_ *env, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim { return c }, false},
		{"started mark only (an earlier attempt ended)", func(_ *env, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
			c.Annotations[contract.AnnProvisioningStarted] = "true"
			return c
		}, true},
		{"finalizer and mark (an attempt in flight)", func(_ *env, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
			return attemptedBefore(c)
		}, true},
		{"another process protects it first", func(e *env, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
			raced := false
			e.kube.PrependReactor("update", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
				if raced {
					return false, nil, nil
				}
				raced = true
				// the other process's update lands first: ours conflicts
				if err := e.kube.Tracker().Update(corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims"), attemptedBefore(c), c.Namespace); err != nil {
					e.t.Fatal(err)
				}
				return true, nil, apierrors.NewConflict(corev1.Resource("persistentvolumeclaims"), c.Name, errors.New("the object has been modified"))
			})
			return c
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			claim := tc.prepare(e, newClaim(claimSpec{}))
			e.ensureClaim(claim)
			pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
			if err != nil {
				t.Fatal(err)
			}
			ops := e.ops()
			if looked := slices.Contains(ops, fake.OpFindVolumeByName); looked != tc.wantLookup {
				t.Errorf("Cinder calls %q: lookup by name %v, want %v", ops, looked, tc.wantLookup)
			}
			e.checkBoundToOne(pv)
			c := e.liveClaim()
			if c.Annotations[contract.AnnProvisioningStarted] == "" || !protected(c) {
				t.Errorf("claim annotations %v, finalizers %v: want the started mark and the finalizer", c.Annotations, c.Finalizers)
			}
		})
	}
}

// A claim that another process protects and a user then deletes, both
// between this attempt's read and its update, gets nothing made: the
// attempt sees the deletion in the claim it re-reads.
func TestClaimProtectedElsewhereAndDeletedMidAttemptGetsNothing(t *testing.T) {
	e := newEnv(t)
	claim := newClaim(claimSpec{})
	e.ensureClaim(claim)
	raced := false
	e.kube.PrependReactor("update", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		if raced {
			return false, nil, nil
		}
		raced = true
		c := attemptedBefore(claim)
		now := metav1.Now()
		c.DeletionTimestamp = &now
		if err := e.kube.Tracker().Update(corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims"), c, c.Namespace); err != nil {
			e.t.Fatal(err)
		}
		return true, nil, apierrors.NewConflict(corev1.Resource("persistentvolumeclaims"), c.Name, errors.New("the object has been modified"))
	})
	pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if pv != nil || err == nil {
		t.Fatalf("Provision = %v, %v; want an error and no PV", pv, err)
	}
	if ops := e.ops(); len(ops) != 0 {
		t.Errorf("Cinder calls %q for a claim being deleted, want none", ops)
	}
}
