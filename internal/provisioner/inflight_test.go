package provisioner

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// fakeClock is a settable clock for inflight.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time                  { return c.t }
func (c *fakeClock) add(d time.Duration)             { c.t = c.t.Add(d) }
func (c *fakeClock) since(d time.Duration) time.Time { return c.t.Add(-d) }

func TestInflightWaitsUntilNoCreateCanLand(t *testing.T) {
	const window = time.Minute
	type send struct {
		uid      types.UID
		ago      time.Duration // sent this long before the question
		answered bool
	}
	for _, tc := range []struct {
		name  string
		began time.Duration // the process began this long before the question; 0: at the question
		sends []send
		want  time.Duration
	}{
		{name: "first act: an earlier process's create may land", want: window},
		{name: "began 20s ago", began: 20 * time.Second, want: 40 * time.Second},
		{name: "began long ago, nothing sent", began: time.Hour},
		{name: "answered create", began: time.Hour, sends: []send{{"a", 5 * time.Second, true}}},
		{name: "create without an answer, 5s ago", began: time.Hour, sends: []send{{"a", 5 * time.Second, false}}, want: 55 * time.Second},
		{name: "its answer lost long ago", began: time.Hour, sends: []send{{"a", 2 * time.Minute, false}}},
		{name: "another claim's lost answer", began: time.Hour, sends: []send{{"b", 5 * time.Second, false}}},
		{name: "lost, then answered: the lost one may still land", began: time.Hour, sends: []send{{"a", 30 * time.Second, false}, {"a", 10 * time.Second, true}}, want: 30 * time.Second},
		{name: "two lost: the later counts", began: time.Hour, sends: []send{{"a", 50 * time.Second, false}, {"a", 10 * time.Second, false}}, want: 50 * time.Second},
		{name: "lost soon after the process began", began: 20 * time.Second, sends: []send{{"a", 10 * time.Second, false}}, want: 50 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: fakeEpoch}
			f := &inflight{window: window, now: clock.now}
			if tc.began > 0 {
				f.sent("someone-else", clock.since(tc.began), true)
			}
			for _, s := range tc.sends {
				f.sent(s.uid, clock.since(s.ago), s.answered)
			}
			if got := f.wait("a"); got != tc.want {
				t.Errorf("wait = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInflightForgetsWhatCanNoLongerLand(t *testing.T) {
	clock := &fakeClock{t: fakeEpoch}
	f := &inflight{window: time.Minute, now: clock.now}
	for i := range 100 {
		f.sent(types.UID(string(rune('a'+i%26))+string(rune('0'+i/26))), clock.t, false)
	}
	clock.add(2 * time.Minute)
	f.sent("late", clock.t, false)
	if n := len(f.unsure); n != 1 {
		t.Errorf("%d lost creates remembered, want only the one that may still land", n)
	}
}

// A create whose answer was lost lands after the claim was deleted and a
// lookup found nothing: the claim stays held until no create can land, then
// the late volume goes with it. Without the hold the finalizer would go at
// once and the volume would be nobody's.
func TestClaimDeletedWhileItsCreateMayLandIsHeld(t *testing.T) {
	for _, how := range []string{"the library calls Provision", "the Guard (no attempt runs)"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			clock := &fakeClock{t: fakeEpoch}
			e.p.inflight = inflight{window: time.Minute, now: clock.now}
			opts := options(newClaim(claimSpec{}), newClass(nil))
			var sent *cinder.CreateRequest
			e.cinder.Hook(fake.OpCreateVolume, func(_ context.Context, c fake.Call) error {
				sent = c.Request
				return cinder.NewError("create volume", "", cinder.ErrUnavailable, "timeout awaiting response headers")
			})
			clock.add(time.Hour) // long after the process began
			if _, _, err := e.provision(opts); err == nil || sent == nil {
				t.Fatalf("Provision = %v (create sent: %v); want an error after a create", err, sent != nil)
			}
			e.cinder.Hook(fake.OpCreateVolume, nil)
			deleting := e.startDeleting()

			clock.add(10 * time.Second)
			releaseOnce := func() (time.Duration, error) {
				if how == "the Guard (no attempt runs)" {
					return e.p.release(e.ctx, deleting)
				}
				_, _, err := e.p.Provision(e.ctx, opts)
				var ig *controller.IgnoredError
				if errors.As(err, &ig) {
					return 0, nil
				}
				return time.Second, nil // held: the library retries
			}
			if again, err := releaseOnce(); err != nil || again == 0 {
				t.Fatalf("release while the create may land = %v, %v; want held", again, err)
			}
			if !protected(e.liveClaim()) {
				t.Fatal("the claim was released while its create may still land")
			}
			// the create lands in Cinder
			if _, err := e.cinder.CreateVolume(e.ctx, *sent); err != nil {
				t.Fatal(err)
			}
			clock.add(time.Minute)
			if again, err := releaseOnce(); err != nil || again != 0 {
				t.Fatalf("release once no create can land = %v, %v", again, err)
			}
			e.checkNothingLeft()
			if protected(e.liveClaim()) {
				t.Error("the deleted claim is still held after its late volume went")
			}
		})
	}
}

// A provisioner that has just begun cannot know what its predecessor sent:
// a deleted claim with no volume found is held for the window, then
// released.
func TestNewLeaderHoldsDeletedClaimsForTheWindow(t *testing.T) {
	e := newEnv(t)
	opts := options(newClaim(claimSpec{}), newClass(nil))
	e.cinder.Fail(fake.OpCreateVolume, cinder.NewError("create volume", "", cinder.ErrUnavailable, "connection refused"))
	if _, _, err := e.provision(opts); err == nil {
		t.Fatal("want the attempt to fail")
	}
	e.cinder.Fail(fake.OpCreateVolume, nil)
	deleting := e.startDeleting()

	// the next leader
	clock := &fakeClock{t: fakeEpoch}
	e.p.inflight = inflight{window: time.Minute, now: clock.now}
	e.p.locks = claimLocks{}
	if again, err := e.p.release(e.ctx, deleting); err != nil || again != time.Minute {
		t.Fatalf("first release of the new leader = %v, %v; want held for 1m0s", again, err)
	}
	clock.add(time.Minute)
	if again, err := e.p.release(e.ctx, deleting); err != nil || again != 0 {
		t.Fatalf("release after the window = %v, %v", again, err)
	}
	if protected(e.liveClaim()) {
		t.Error("the deleted claim is still held")
	}
}

// boundKeepingTheFinalizer binds the claim to pv as the PV binder does; the
// finalizer stays for the Guard to take off.
func (e *env) boundKeepingTheFinalizer(pv *corev1.PersistentVolume) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	c := e.liveClaim()
	c.Spec.VolumeName = pv.Name
	out, err := e.kube.CoreV1().PersistentVolumeClaims(c.Namespace).Update(e.ctx, c, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// A claim in flight when its provisioner died is bound by the next one; the
// dead one's create lands late: a second volume of the claim's name. The
// new process holds the bound claim until no create can land, then removes
// the late volume and keeps the PV's. A claim this process protected, with
// every create answered, is released at once without a Cinder request.
func TestBoundClaimWhoseCreateMayBeLostLosesTheLateVolume(t *testing.T) {
	for _, inherited := range []bool{true, false} {
		t.Run(fmt.Sprintf("inherited=%v", inherited), func(t *testing.T) {
			e := newEnv(t)
			pv := provisioned(t, e, nil)
			claim := e.boundKeepingTheFinalizer(pv)
			if !protected(claim) {
				t.Fatal("the attempt did not hold the claim")
			}
			clock := &fakeClock{t: fakeEpoch}
			if inherited {
				// the next process: it never put the finalizer on
				e.p.inflight = inflight{window: time.Minute, now: clock.now}
				late := earlierVolume(e, cinder.Volume{})
				if again, err := e.p.release(e.ctx, claim); err != nil || again != time.Minute {
					t.Fatalf("release while a create may land = %v, %v; want held for 1m0s", again, err)
				}
				if _, ok := e.cinder.Volume(late); !ok || !protected(e.liveClaim()) {
					t.Fatal("the claim was let go, or the late volume removed, while a create may still land")
				}
				clock.add(time.Minute)
				defer func() {
					if _, ok := e.cinder.Volume(late); ok {
						t.Errorf("the late volume %s is still there", late)
					}
				}()
			}
			e.cinder.ResetCalls()
			if again, err := e.p.release(e.ctx, claim); err != nil || again != 0 {
				t.Fatalf("release = %v, %v", again, err)
			}
			if protected(e.liveClaim()) {
				t.Error("the bound claim is still held")
			}
			if _, ok := e.cinder.Volume(pv.Annotations[contract.AnnVolumeID]); !ok {
				t.Error("the PV's volume was removed")
			}
			if ops := e.ops(); !inherited && len(ops) != 0 {
				t.Errorf("Cinder calls %q to release a claim of this process", ops)
			}
		})
	}
}
