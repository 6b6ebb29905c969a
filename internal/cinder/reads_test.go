package cinder

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// stubCinder answers lists and GETs from a map of volumes, and counts them.
// A list can be held until the test releases it.
type stubCinder struct {
	mu       sync.Mutex
	vols     map[string]Volume
	lists    [][]string // the statuses of each list
	gets     []string   // the ids of each GET
	listErr  error
	hold     chan struct{} // non-nil: a list waits for it
	listSeen chan struct{} // a list started (buffered)
}

func newStub(vols ...Volume) *stubCinder {
	s := &stubCinder{vols: map[string]Volume{}, listSeen: make(chan struct{}, 100)}
	for _, v := range vols {
		s.vols[v.ID] = v
	}
	return s
}

func (s *stubCinder) list(ctx context.Context, statuses []string) ([]Volume, error) {
	s.mu.Lock()
	s.lists = append(s.lists, statuses)
	hold := s.hold
	s.mu.Unlock()
	s.listSeen <- struct{}{}
	if hold != nil {
		<-hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listErr != nil {
		return nil, s.listErr
	}
	var out []Volume
	for _, v := range s.vols {
		if slices.Contains(statuses, v.Status) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (s *stubCinder) get(ctx context.Context, id string) (*Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets = append(s.gets, id)
	v, ok := s.vols[id]
	if !ok {
		return nil, NewError("get volume", id, ErrNotFound, "")
	}
	return &v, nil
}

func (s *stubCinder) set(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vols[id]
	v.ID, v.Status = id, status
	s.vols[id] = v
}

func (s *stubCinder) counts() (lists, gets int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lists), len(s.gets)
}

// pending counts the polls that joined the round not yet started.
func (r *Reads) pending(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := 0
		if r.next != nil {
			n = r.next.polls
		}
		r.mu.Unlock()
		if n == want {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("never saw %d polls waiting for the next round", want)
}

// TestPollsShareOneList: polls that ask while a list is in flight are all
// served by the one list that starts after it, and see what it saw, not
// the older answer of the list already in flight.
func TestPollsShareOneList(t *testing.T) {
	const n = 20
	s := newStub()
	for i := range n {
		s.set(volID(i), StatusCreating)
	}
	s.hold = make(chan struct{})
	r := NewReads(s.list, s.get, 0)
	ctx := context.Background()

	first := make(chan *Volume, 1)
	go func() {
		v, _ := r.Get(ctx, volID(0), StatusCreating, StatusAvailable)
		first <- v
	}()
	<-s.listSeen // the first round's list is in flight, holding

	// Cinder moves on; the polls that ask now must see it
	for i := range n {
		s.set(volID(i), StatusAvailable)
	}
	var wg sync.WaitGroup
	got := make([]*Volume, n)
	errs := make([]error, n)
	for i := 1; i < n; i++ {
		wg.Go(func() { got[i], errs[i] = r.Get(ctx, volID(i), StatusCreating, StatusAvailable) })
	}
	r.pending(t, n-1)
	close(s.hold)
	wg.Wait()
	<-first

	for i := 1; i < n; i++ {
		if errs[i] != nil || got[i] == nil || got[i].Status != StatusAvailable {
			t.Errorf("poll %d: %+v %v, want the second list's available", i, got[i], errs[i])
		}
	}
	if lists, gets := s.counts(); lists != 2 || gets != 0 {
		t.Errorf("%d lists and %d GETs for %d polls, want 2 lists and no GET", lists, gets, n)
	}
}

// TestVolumeMissingFromTheListIsReadWithOneGet: a volume the list does not
// return is read with one GET: gone is ErrNotFound, one in another status
// is returned as it is.
func TestVolumeMissingFromTheListIsReadWithOneGet(t *testing.T) {
	s := newStub()
	s.set("moved", "maintenance")
	r := NewReads(s.list, s.get, 0)
	ctx := context.Background()

	if _, err := r.Get(ctx, "gone", StatusDeleting); !errors.Is(err, ErrNotFound) {
		t.Errorf("gone volume: %v, want ErrNotFound", err)
	}
	v, err := r.Get(ctx, "moved", StatusAvailable)
	if err != nil || v.Status != "maintenance" {
		t.Errorf("volume outside the statuses: %+v %v, want it as GET reads it", v, err)
	}
	if _, gets := s.counts(); gets != 2 {
		t.Errorf("%d GETs, want one per volume the list missed", gets)
	}
}

// TestListFailureReachesEveryPollOfItsRound: a failed list is each poll's
// failure (a transient one keeps the wait polling), with no GET storm.
func TestListFailureReachesEveryPollOfItsRound(t *testing.T) {
	s := newStub()
	s.set("v1", StatusCreating)
	s.listErr = NewError("list volumes", "", ErrUnavailable, "503")
	r := NewReads(s.list, s.get, 0)
	if _, err := r.Get(context.Background(), "v1", StatusAvailable); !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want the list's ErrUnavailable", err)
	}
	if _, gets := s.counts(); gets != 0 {
		t.Errorf("%d GETs after a failed list, want 0", gets)
	}
}

// TestRoundAsksForTheUnionOfItsPollsStatuses: one list carries every
// status its polls expect.
func TestRoundAsksForTheUnionOfItsPollsStatuses(t *testing.T) {
	s := newStub()
	s.set("a", StatusCreating)
	s.set("b", StatusDeleting)
	s.hold = make(chan struct{})
	r := NewReads(s.list, s.get, 0)
	ctx := context.Background()
	done := make(chan struct{})
	go func() { _, _ = r.Get(ctx, "warmup", "x"); close(done) }()
	<-s.listSeen
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = r.Get(ctx, "a", statusesFor(StatusAvailable)...) })
	wg.Go(func() { _, _ = r.Get(ctx, "b", deletingStatuses...) })
	r.pending(t, 2)
	close(s.hold)
	wg.Wait()
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	want := slices.Sorted(slices.Values(append(append([]string{StatusAvailable}, pendingStatuses...), deletingStatuses...)))
	if len(s.lists) != 2 || !slices.Equal(s.lists[1], want) {
		t.Errorf("lists %v, want the second to ask for %v", s.lists, want)
	}
}

// TestWaitsThroughReads: WaitForStatus and WaitForDeleted end as they do
// with GETs when their polls go through Reads.
func TestWaitsThroughReads(t *testing.T) {
	s := newStub()
	s.set("v1", StatusCreating)
	s.set("v2", StatusDeleting)
	r := NewReads(s.list, s.get, 0)
	b := Backoff{Initial: time.Millisecond, Max: time.Millisecond, Factor: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	go func() {
		time.Sleep(5 * time.Millisecond)
		s.set("v1", StatusAvailable)
		s.mu.Lock()
		delete(s.vols, "v2")
		s.mu.Unlock()
	}()
	v, err := WaitForStatus(ctx, b, r.StatusGetter(s.get, StatusAvailable), "v1", StatusAvailable)
	if err != nil || v.Status != StatusAvailable {
		t.Fatalf("wait available: %+v %v", v, err)
	}
	if err := WaitForDeleted(ctx, b, r.DeletedGetter(s.get), "v2"); err != nil {
		t.Fatalf("wait deleted: %v", err)
	}
	s.set("v3", StatusError)
	_, err = WaitForStatus(ctx, b, r.StatusGetter(s.get, StatusAvailable), "v3", StatusAvailable)
	if !errors.Is(err, ErrVolumeError) {
		t.Fatalf("error volume: %v, want ErrVolumeError", err)
	}
	lists, gets := s.counts()
	if lists == 0 || gets != 1 {
		t.Errorf("%d lists, %d GETs; want lists, and one GET (the deleted volume's 404)", lists, gets)
	}
}

// TestInUseWaitsAndNoScopeUseGet: a wait for in-use, or a client without a
// scope (nil Reads), polls with GET and never lists.
func TestInUseWaitsAndNoScopeUseGet(t *testing.T) {
	s := newStub()
	s.set("v1", StatusInUse)
	r := NewReads(s.list, s.get, 0)
	ctx := context.Background()
	b := Backoff{Initial: time.Millisecond, Max: time.Millisecond, Factor: 1}
	if _, err := WaitForStatus(ctx, b, r.StatusGetter(s.get, StatusInUse, StatusAvailable), "v1", StatusInUse, StatusAvailable); err != nil {
		t.Fatal(err)
	}
	var none *Reads
	if _, err := WaitForStatus(ctx, b, none.StatusGetter(s.get, StatusAvailable), "v1", StatusInUse); err != nil {
		t.Fatal(err)
	}
	if err := WaitForDeleted(ctx, b, none.DeletedGetter(s.get), "gone"); err != nil {
		t.Fatal(err)
	}
	if lists, gets := s.counts(); lists != 0 || gets != 3 {
		t.Errorf("%d lists, %d GETs; want 0 lists, 3 GETs", lists, gets)
	}
}

// TestCancelledPollReturns: a poll whose context ends returns at once,
// while its round's list is still held.
func TestCancelledPollReturns(t *testing.T) {
	s := newStub()
	s.hold = make(chan struct{})
	defer close(s.hold)
	r := NewReads(s.list, s.get, 0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := r.Get(ctx, "v1", StatusAvailable); errc <- err }()
	<-s.listSeen
	cancel()
	if err := <-errc; !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
}

func volID(i int) string { return "vol-" + string(rune('a'+i)) }

func TestRoundGap(t *testing.T) {
	for _, tc := range []struct {
		polls int
		want  time.Duration
	}{{0, 0}, {1, RoundGapStep}, {2, 2 * RoundGapStep}, {4, RoundGapMax}, {5, RoundGapMax}, {200, RoundGapMax}} {
		if got := RoundGap(tc.polls); got != tc.want {
			t.Errorf("RoundGap(%d) = %v, want %v", tc.polls, got, tc.want)
		}
	}
}

// TestEachRoundPausesTheNextByThePollsItServed: after a round, the next
// waits the gap its polls earned, and the polls that ask meanwhile share
// that next round instead of each starting a list.
func TestEachRoundPausesTheNextByThePollsItServed(t *testing.T) {
	s := newStub()
	for i := range 5 {
		s.set(volID(i), StatusCreating)
	}
	r := NewReads(s.list, s.get, 0)
	frozen := time.Unix(0, 0)
	r.now = func() time.Time { return frozen } // lists take no time
	pauses := make(chan time.Duration)
	resume := make(chan struct{})
	r.pause = func(d time.Duration) {
		pauses <- d
		<-resume
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	get := func(i int) {
		wg.Go(func() {
			if _, err := r.Get(ctx, volID(i), StatusCreating, StatusAvailable); err != nil {
				t.Errorf("poll %d: %v", i, err)
			}
		})
	}
	// the next pause the rounds ask for; a bound, so that rounds that never
	// pause fail the test instead of hanging it
	nextPause := func() time.Duration {
		t.Helper()
		select {
		case d := <-pauses:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("the rounds never paused")
			return 0
		}
	}
	lists := func(want int) {
		t.Helper()
		if n, _ := s.counts(); n != want {
			t.Errorf("%d lists, want %d", n, want)
		}
	}

	get(0)
	if d := nextPause(); d != RoundGap(1) { // round 1 served one poll
		t.Errorf("pause after a round of 1 poll = %v, want %v", d, RoundGap(1))
	}
	for i := 1; i <= 3; i++ {
		get(i) // during the pause: they wait for round 2
	}
	r.pending(t, 3)
	lists(1)
	resume <- struct{}{}
	if d := nextPause(); d != RoundGap(3) { // round 2 served three
		t.Errorf("pause after a round of 3 polls = %v, want %v", d, RoundGap(3))
	}
	lists(2)
	get(4)
	r.pending(t, 1)
	lists(2)
	resume <- struct{}{}
	nextPause() // round 3 served the last poll
	resume <- struct{}{}
	wg.Wait()
	if n, gets := s.counts(); n != 3 || gets != 0 {
		t.Errorf("%d lists and %d GETs for 5 polls, want 3 lists (1, 3 and 1 polls) and no GET", n, gets)
	}
}
