package cinder

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// StatusLister lists, in one request (paged), the volumes of this client's
// scope (our cluster's metadata) whose status is one of statuses.
type StatusLister func(ctx context.Context, statuses []string) ([]Volume, error)

// Reads serves the polls of every wait in flight with one list request at a
// time, instead of one GET per volume per pause: Cinder's API is CPU-bound
// Python, and during a burst of claims it spends most of its time answering
// those GETs.
//
// A poll joins the next round; a round starts only after every poll in it
// asked (so each sees a read newer than its last one), once the round before
// it ended (at most one list is in flight) and once the pause that round
// earned has passed (RoundGap). A volume the list
// does not return (it left the statuses asked for, or is gone) is read with
// one GET, which also turns "gone" into ErrNotFound. The answer is therefore
// the same as a GET's; only the number of requests differs.
type Reads struct {
	list StatusLister
	get  VolumeGetter
	// timeout bounds one list: it serves many waits, so it runs on a
	// context of its own rather than on any one poll's.
	timeout time.Duration
	// pause sleeps between rounds and now reads the clock (time.Sleep and
	// time.Now; tests replace them)
	pause func(time.Duration)
	now   func() time.Time

	mu      sync.Mutex
	next    *round // the round a poll joins now; nil: none yet
	running bool   // a goroutine is running rounds
}

// round is one list request and everything it answers.
type round struct {
	statuses map[string]bool
	polls    int // that joined it
	done     chan struct{}
	found    map[string]Volume // by id
	err      error
}

// NewReads returns Reads over list, falling back to get for a volume the
// list does not return. timeout bounds each list (0: one minute).
func NewReads(list StatusLister, get VolumeGetter, timeout time.Duration) *Reads {
	if timeout <= 0 {
		timeout = time.Minute
	}
	return &Reads{list: list, get: get, timeout: timeout, pause: time.Sleep, now: time.Now}
}

// Pacing of the rounds. Run back to back, rounds list as often as polls
// come, one list per poll when the waits are few (on the local stack, 200
// claims with 4 workers: 2.3 lists per claim to bind, 2.9 to delete, 3-6 a
// second), more often than the waits need. Each poll a round served adds
// RoundGapStep before the next round may start, up to RoundGapMax: the
// polls that come meanwhile share the next list, and the more waits there
// are, the more each list serves. A wait learns of its volume's change at
// most RoundGapMax late (RoundGapStep for a claim alone).
const (
	RoundGapStep = 250 * time.Millisecond
	RoundGapMax  = time.Second
)

// RoundGap is how long after a round that served polls started the next
// one may start.
func RoundGap(polls int) time.Duration {
	return min(RoundGapMax, time.Duration(max(polls, 0))*RoundGapStep)
}

// Get returns volume id as the next round's list saw it, or as one GET sees
// it when the list did not return it. statuses are those the caller expects
// the volume to be in (where it is and where it may go); the round asks for
// the union of its polls' statuses.
func (r *Reads) Get(ctx context.Context, id string, statuses ...string) (*Volume, error) {
	rd := r.join(statuses)
	select {
	case <-ctx.Done():
		return nil, NewError("get volume", id, ErrUnavailable, ctx.Err().Error())
	case <-rd.done:
	}
	if rd.err != nil {
		return nil, rd.err
	}
	if v, ok := rd.found[id]; ok {
		return &v, nil
	}
	return r.get(ctx, id)
}

// join adds a poll to the next round, starting the rounds when none run.
func (r *Reads) join(statuses []string) *round {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.next = &round{statuses: map[string]bool{}, done: make(chan struct{})}
	}
	for _, s := range statuses {
		r.next.statuses[s] = true
	}
	r.next.polls++
	rd := r.next
	if !r.running {
		r.running = true
		go r.run()
	}
	return rd
}

// run lists round after round while polls keep joining, each after the
// gap the one before earned, then stops.
func (r *Reads) run() {
	for {
		r.mu.Lock()
		rd := r.next
		r.next = nil
		if rd == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		started := r.now()
		r.serve(rd)
		if gap := RoundGap(rd.polls) - r.now().Sub(started); gap > 0 {
			// polls that ask meanwhile join the next round
			r.pause(gap)
		}
	}
}

func (r *Reads) serve(rd *round) {
	defer close(rd.done)
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	statuses := slices.Sorted(maps.Keys(rd.statuses))
	vols, err := r.list(ctx, statuses)
	if err != nil {
		rd.err = err
		return
	}
	rd.found = make(map[string]Volume, len(vols))
	for _, v := range vols {
		rd.found[v.ID] = v
	}
}

// Statuses a wait's poll asks a round for, besides the ones it waits for:
// where a volume is while Cinder works on it, and where that work fails.
var (
	// pending: a volume being created, cloned, restored or extended.
	pendingStatuses = []string{StatusCreating, "downloading", StatusExtending, StatusError, StatusErrorExtending}
	// deletingStatuses: a volume being deleted.
	deletingStatuses = []string{StatusDeleting, StatusErrorDeleting}
)

// StatusGetter returns the getter a wait for wanted polls with: a round of
// r, or get itself where a round would not pay. A wait for in-use (a
// resize of an exported volume) polls with get: a list of every in-use
// volume of the cluster, most of them long bound, would cost Cinder more
// than the one GET it saves.
func (r *Reads) StatusGetter(get VolumeGetter, wanted ...string) VolumeGetter {
	if r == nil || slices.Contains(wanted, StatusInUse) {
		return get
	}
	statuses := statusesFor(wanted...)
	return func(ctx context.Context, id string) (*Volume, error) {
		return r.Get(ctx, id, statuses...)
	}
}

// statusesFor is what a wait for wanted asks a round for.
func statusesFor(wanted ...string) []string {
	return append(slices.Clone(pendingStatuses), wanted...)
}

// DeletedGetter returns the getter a wait for a deletion polls with.
func (r *Reads) DeletedGetter(get VolumeGetter) VolumeGetter {
	if r == nil {
		return get
	}
	return func(ctx context.Context, id string) (*Volume, error) {
		return r.Get(ctx, id, deletingStatuses...)
	}
}
