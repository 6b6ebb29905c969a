package provisioner

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// A create can land after its sender gave up on it. Cinder writes the
// volume's record while it handles the request, so a create still inside
// Cinder when its answer was lost (timeout, broken connection) or when its
// sender died can make the claim's volume after a lookup found none. A
// claim being deleted whose volume is not found therefore keeps
// contract.FinalizerProvisioning until no create for it can still land:
//   - a create this process sent and got no answer to can land until
//     CreateLands after it was sent (an answered one made the volume, which
//     lookups find, or made nothing);
//   - a create of an earlier process (one killed, the previous leader) was
//     sent before this process began to act (it acts only once it leads),
//     and can land until CreateLands after that.
// A claim that binds while a lost create of it may still land would get a
// second volume of its name, next to the one its PV holds. So a bound claim
// whose create may have been lost (one of this process got no answer, or
// the claim was in flight before this process began: its finalizer was not
// put on here) keeps the finalizer until no create can land, and is then
// looked up once: a late volume is removed, the PV's kept (release.go).
// A create that lands later still is not lost: nothing in Kubernetes refers
// to the volume, so the sweep reports it and deletes it past its grace
// period (sweep.go).

// DefaultCreateLands is how long after it was sent a create whose answer
// was lost may still make a volume: far longer than Cinder takes to write a
// volume's record (milliseconds; seconds under load).
const DefaultCreateLands = time.Minute

// inflight remembers when creates may still land; its zero value is ready
// (with a window of DefaultCreateLands and the wall clock).
type inflight struct {
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	began  time.Time               // this process's first act; zero before
	unsure map[types.UID]time.Time // claim -> its last create with no answer, when sent
	ours   map[types.UID]bool      // claims this process put the finalizer on
}

func (f *inflight) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}

func (f *inflight) lands() time.Duration {
	if f.window > 0 {
		return f.window
	}
	return DefaultCreateLands
}

// act notes that this process acts; the first call is when it began.
// Called with f.mu held.
func (f *inflight) act(now time.Time) {
	if f.began.IsZero() {
		f.began = now
	}
}

// sending is called right before a create for the claim is sent; what it
// returns is told whether the answer came back (made or refused).
func (f *inflight) sending(uid types.UID) (answered func(bool)) {
	at := f.clock()
	return func(ok bool) { f.sent(uid, at, ok) }
}

func (f *inflight) sent(uid types.UID, at time.Time, answered bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.act(at)
	if answered {
		return
	}
	if f.unsure == nil {
		f.unsure = map[types.UID]time.Time{}
	}
	// forget what can no longer land: the map holds only recent losses
	for k, t := range f.unsure {
		if at.Sub(t) >= f.lands() {
			delete(f.unsure, k)
		}
	}
	if t, ok := f.unsure[uid]; !ok || at.After(t) {
		f.unsure[uid] = at
	}
}

// wait is how long from now a create for the claim may still land (0:
// none can).
func (f *inflight) wait(uid types.UID) time.Duration {
	now := f.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.act(now)
	until := f.began.Add(f.lands())
	if t, ok := f.unsure[uid]; ok {
		lost := t.Add(f.lands())
		if lost.After(until) {
			until = lost
		}
		if !now.Before(lost) {
			delete(f.unsure, uid)
		}
	}
	if d := until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// protected notes that this process put the finalizer on the claim: every
// create for it was sent from here (the finalizer comes before the first).
func (f *inflight) protected(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ours == nil {
		f.ours = map[types.UID]bool{}
	}
	f.ours[uid] = true
}

// released forgets the claim: its finalizer is off.
func (f *inflight) released(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ours, uid)
}

// mayBeLost reports whether a create for the claim may have been lost: one
// of this process's got no answer, or the claim was held before this
// process began (another process may have sent one). wait says how long
// such a create may still land.
func (f *inflight) mayBeLost(uid types.UID) (lost bool, wait time.Duration) {
	f.mu.Lock()
	_, unsure := f.unsure[uid]
	lost = unsure || !f.ours[uid]
	f.mu.Unlock()
	if !lost {
		return false, 0
	}
	return true, f.wait(uid)
}
