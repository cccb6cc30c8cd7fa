package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd/store"
)

// queue puts n deliveries for endpoint, due at due, into the store and
// tells the scheduler, as the store does after an ingest.
func (h *harness) queue(endpoint string, n int, due time.Time, body []byte) []store.QueueEntry {
	var out []store.QueueEntry
	for i := range n {
		out = append(out, h.st.put(fmt.Sprintf("%s%d", endpoint, i), endpoint, due, body))
	}
	h.OnQueued(out)
	return out
}

// Ready deliveries go out oldest first across endpoints, each endpoint
// first within its share of the workers (workers ÷ endpoints waiting), then
// the workers still free to those over it.
func TestDispatchOldestFirstWithinShares(t *testing.T) {
	h := newHarness(t, Options{Workers: 8},
		testEndpoint(t, "a", "", 100, time.Second), testEndpoint(t, "b", "", 100, time.Second), testEndpoint(t, "c", "", 100, time.Second))
	h.prove("a", "b", "c")
	now := h.clock.Now()
	h.queue("a", 6, now, nil)
	h.queue("b", 2, now, nil)
	h.queue("c", 2, now, nil)
	h.step()
	got := h.dispatched()
	// Share 8/3 = 2: a's first two, b's, c's; then a's next two.
	if want := []string{"a0", "a1", "b0", "b1", "c0", "c1", "a2", "a3"}; !slices.Equal(ids(got), want) {
		t.Fatalf("dispatched %v, want %v", ids(got), want)
	}
	for _, it := range got {
		h.attempt(it)
	}
	h.step()
	if got, want := ids(h.dispatched()), []string{"a4", "a5"}; !slices.Equal(got, want) {
		t.Fatalf("after the workers are free: %v, want %v", got, want)
	}
}

// A backlog spread over endpoints drains oldest first, each endpoint within
// its share (here one of the two workers), not endpoint by endpoint in turn:
// a, whose deliveries are the newest, goes last, though it was queued first.
// The outcomes committed together are then neighbours in the store, which
// writes a few pages for them instead of one each.
func TestDispatchDrainsBacklogInDueOrder(t *testing.T) {
	var eps []*Endpoint
	for _, name := range []string{"a", "b", "c"} {
		eps = append(eps, testEndpoint(t, name, "", 16, time.Second))
	}
	h := newHarness(t, Options{Workers: 2}, eps...)
	h.prove("a", "b", "c")
	now := h.clock.Now()
	h.queue("a", 2, now, nil)
	h.queue("b", 2, now.Add(-3*time.Second), nil)
	h.queue("c", 2, now.Add(-2*time.Second), nil)
	for _, want := range [][]string{{"b0", "c0"}, {"b1", "c1"}, {"a0", "a1"}} {
		h.step()
		got := h.dispatched()
		if !slices.Equal(ids(got), want) {
			t.Fatalf("dispatched %v, want %v", ids(got), want)
		}
		for _, it := range got {
			h.attempt(it)
		}
	}
}

// A flood of old deliveries at one endpoint does not hold every worker:
// one that falls ready later gets a worker in the same step, within its
// share, ahead of the flood's older deliveries.
func TestFloodLeavesOthersTheirShare(t *testing.T) {
	h := newHarness(t, Options{Workers: 4},
		testEndpoint(t, "flood", "", 16, time.Second), testEndpoint(t, "other", "", 16, time.Second))
	h.prove("flood", "other")
	now := h.clock.Now()
	h.queue("flood", 10, now.Add(-time.Minute), nil)
	h.queue("other", 1, now, nil)
	h.step()
	if got, want := ids(h.dispatched()), []string{"flood0", "flood1", "other0", "flood2"}; !slices.Equal(got, want) {
		t.Fatalf("dispatched %v, want %v", got, want)
	}
}

// Endpoints that flood every worker with old deliveries, each at its
// max_in_flight, leave the next worker freed to one that falls ready later:
// those at their limit count among the endpoints sharing the workers, so
// one coming back from its limit is over its share.
func TestFloodersAtTheirLimitLeaveOthersAWorker(t *testing.T) {
	for _, c := range []struct{ workers, flooders, inFlight int }{{8, 4, 2}, {64, 4, 16}, {64, 2, 32}} {
		var eps []*Endpoint
		var names []string
		for i := range c.flooders {
			names = append(names, fmt.Sprintf("f%d", i))
			eps = append(eps, testEndpoint(t, names[i], "", c.inFlight, time.Second))
		}
		eps = append(eps, testEndpoint(t, "other", "", 16, time.Second))
		h := newHarness(t, Options{Workers: c.workers}, eps...)
		h.prove(append(names, "other")...)
		now := h.clock.Now()
		for _, n := range names {
			h.queue(n, 200, now.Add(-time.Hour), nil)
		}
		h.step()
		inflight := h.dispatched()
		if len(inflight) != c.workers {
			t.Fatalf("%+v: first step dispatched %d", c, len(inflight))
		}
		h.queue("other", 1, now, nil)
		h.step()
		h.attempt(inflight[0])
		h.step()
		if got := ids(h.dispatched()); !slices.Equal(got, []string{"other0"}) {
			t.Fatalf("%+v: the first worker freed went to %v, want [other0]", c, got)
		}
	}
}

// An endpoint waiting at its limit is looked at again when an outcome of
// its is recorded, not only when an attempt ends: a probe's first prompt
// answer, committed after the next probe went out, lifts its limit from
// one to its max_in_flight at once.
func TestProvenWhileAtLimitGetsWorkers(t *testing.T) {
	h := newHarness(t, Options{Workers: 8}, testEndpoint(t, "a", "", 16, time.Second))
	h.st.hold = true
	h.queue("a", 6, h.clock.Now(), nil)
	h.step()
	first := h.dispatched()
	h.attempt(first[0]) // released; its outcome waits for the commit
	h.step()
	if got := ids(h.dispatched()); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("second probe: %v", got)
	}
	h.st.commit() // a0's prompt 200 is recorded: a is proven
	h.step()
	if got, want := ids(h.dispatched()), []string{"a2", "a3", "a4", "a5"}; !slices.Equal(got, want) {
		t.Fatalf("after the proof: %v, want %v", got, want)
	}
}

// Endpoints whose last attempt got no prompt answer (hung ones) have one
// attempt in flight each and hold at most half the workers together,
// whatever their max_in_flight: they cannot take every worker from a
// healthy one. An endpoint not tried yet probes one attempt at a time
// outside that share, so a new healthy one is not queued behind dead ones.
func TestSlowEndpointsShareHalfTheWorkers(t *testing.T) {
	var eps []*Endpoint
	for _, name := range []string{"u", "v", "w", "x", "y", "z", "ok", "new"} {
		eps = append(eps, testEndpoint(t, name, "", 16, time.Second))
	}
	h := newHarness(t, Options{Workers: 8}, eps...)
	h.prove("ok")
	h.slow("u", "v", "w", "x", "y", "z")
	now := h.clock.Now()
	for _, name := range []string{"u", "v", "w", "x", "y"} {
		h.queue(name, 3, now, nil)
	}
	h.step()
	first := h.dispatched()
	if want := []string{"u0", "v0", "w0", "x0"}; !slices.Equal(ids(first), want) {
		t.Fatalf("dispatched %v, want %v", ids(first), want)
	}
	h.queue("ok", 3, now, nil)
	h.queue("new", 2, now, nil)
	h.step()
	// Each first within its share (8 workers ÷ 6 endpoints, the slow ones at
	// their limit included): ok's oldest, the new one's probe; then the rest
	// to ok, oldest first.
	second := h.dispatched()
	if got, want := ids(second), []string{"ok0", "new0", "ok1", "ok2"}; !slices.Equal(got, want) {
		t.Fatalf("the healthy and the new endpoint got %v, want %v", got, want)
	}
	// An attempt that got no answer (a timeout) frees its slot for the
	// slow one that waited, and leaves u slow.
	h.send.status["u"] = 0
	h.attempt(first[0])
	h.step()
	if got, want := ids(h.dispatched()), []string{"y0"}; !slices.Equal(got, want) || !h.state("u").slow.Load() {
		t.Fatalf("after one slow slot freed: %v, want %v", got, want)
	}
	// One that answers promptly, whatever the status, is slow no more: it
	// waits for a worker with the others, not in held. The slow share's
	// slot it left goes to u, held for it, whose delivery is older.
	h.send.status["v"] = 500
	h.attempt(first[1])
	h.step()
	if got, want := ids(h.dispatched()), []string{"u1"}; !slices.Equal(got, want) || h.state("v").slow.Load() || h.state("v").held {
		t.Fatalf("after v answered: %v, want %v", got, want)
	}
	h.attempt(second[0])
	h.step()
	if got, want := ids(h.dispatched()), []string{"v1"}; !slices.Equal(got, want) {
		t.Fatalf("the next worker free: %v, want %v", got, want)
	}
	// A slow endpoint that falls ready while the slow ones fill their share
	// waits in held for it: the workers freed go to healthy ones.
	h.queue("z", 1, now, nil)
	for i, want := range [][]string{{"new1"}, {"v2"}} {
		h.attempt(second[1+i])
		h.step()
		if got := ids(h.dispatched()); !slices.Equal(got, want) {
			t.Fatalf("with the slow share full: %v, want %v", got, want)
		}
	}
	h.attempt(second[3])
	h.step()
	if got := h.dispatched(); len(got) != 0 || !h.state("z").held {
		t.Fatalf("a slow endpoint went past the share: %v", ids(got))
	}
}

// An endpoint never has more than max_in_flight attempts at once; a slot
// frees as soon as an attempt is over, before its outcome is committed.
func TestDispatchMaxInFlight(t *testing.T) {
	h := newHarness(t, Options{Workers: 10},
		testEndpoint(t, "slow", "", 2, time.Second), testEndpoint(t, "fast", "", 5, time.Second))
	h.prove("slow", "fast")
	now := h.clock.Now()
	h.queue("slow", 5, now, nil)
	h.queue("fast", 5, now, nil)
	h.step()
	got := h.dispatched()
	if want := []string{"slow0", "slow1", "fast0", "fast1", "fast2", "fast3", "fast4"}; !slices.Equal(ids(got), want) {
		t.Fatalf("dispatched %v, want %v", ids(got), want)
	}
	if n := h.Stats()["slow"].InFlight; n != 2 {
		t.Fatalf("slow in flight: %d", n)
	}
	h.release(got[0])
	h.step()
	if got, want := ids(h.dispatched()), []string{"slow2"}; !slices.Equal(got, want) {
		t.Fatalf("after one slot freed: %v, want %v", got, want)
	}
	h.step()
	if got := h.dispatched(); len(got) != 0 {
		t.Fatalf("dispatched %v with no slot free", ids(got))
	}
}

// A removed endpoint's deliveries are parked one at a time, without HTTP.
func TestRemovedEndpointParkedOneAtATime(t *testing.T) {
	h := newHarness(t, Options{Workers: 10}, testEndpoint(t, "a", "", 16, time.Second))
	entries := h.queue("gone", 2, h.clock.Now(), nil)
	h.step()
	got := h.dispatched()
	if want := []string{"gone0"}; !slices.Equal(ids(got), want) {
		t.Fatalf("dispatched %v, want %v", ids(got), want)
	}
	h.attempt(got[0])
	h.step()
	h.attempt(h.dispatched()[0])
	for _, e := range entries {
		if st := h.st.state(e.Key); st != store.Undeliverable {
			t.Fatalf("%s: %v", e.Key, st)
		}
	}
	if len(h.send.sent) != 0 {
		t.Fatalf("sent %v to a removed endpoint", h.send.sent)
	}
	if o := h.st.outcomes[0]; o.Reason != "endpoint removed" || o.Attempt != nil {
		t.Fatalf("outcome %+v", o)
	}
	// A managed endpoint leaves the table only by a delete through the
	// API: a delivery of it found before the delete parked it (or after a
	// crash between the two) has the delete's reason.
	h.queue(ManagedIDPrefix+"gone", 1, h.clock.Now(), nil)
	h.step()
	h.attempt(h.dispatched()[0])
	if o := h.st.outcomes[2]; o.Reason != "endpoint deleted" {
		t.Fatalf("outcome %+v", o)
	}
}

// Only the next 30 seconds are held in memory; a delivery due later stays
// in the store until the periodic scan finds it within the horizon.
func TestHorizonLeavesLaterDeliveriesToTheScan(t *testing.T) {
	h := newHarness(t, Options{Workers: 4}, testEndpoint(t, "a", "", 10, time.Second))
	h.prove("a")
	h.step() // the first scan: nothing yet
	now := h.clock.Now()
	near := h.st.put("near", "a", now.Add(29*time.Second), nil)
	far := h.st.put("far", "a", now.Add(31*time.Second), nil)
	h.OnQueued([]store.QueueEntry{near, far})
	h.step()
	if _, ok := h.items[near.Key]; !ok {
		t.Fatal("a delivery due in 29s is not held")
	}
	if _, ok := h.items[far.Key]; ok {
		t.Fatal("a delivery due in 31s is held in memory")
	}
	h.clock.Advance(2 * time.Second)
	h.step()
	if _, ok := h.items[far.Key]; ok {
		t.Fatal("loaded without a scan")
	}
	h.needScan = true // as the loop's scan ticker does
	h.step()
	if _, ok := h.items[far.Key]; !ok {
		t.Fatal("the scan did not load a delivery now due in 29s")
	}
	h.clock.Advance(26 * time.Second)
	h.step()
	if got := h.dispatched(); len(got) != 0 {
		t.Fatalf("dispatched %v early", ids(got))
	}
	h.clock.Advance(3 * time.Second)
	h.step()
	if got, want := ids(h.dispatched()), []string{"near", "far"}; !slices.Equal(got, want) {
		t.Fatalf("dispatched %v, want %v", got, want)
	}
}

// Past MaxTracked, due deliveries wait in the store; the scan that loads
// them runs once half the room is free again, not per completion.
func TestOverflowGoesToTheScan(t *testing.T) {
	h := newHarness(t, Options{Workers: 10, MaxTracked: 4}, testEndpoint(t, "a", "", 10, time.Second))
	h.prove("a")
	h.step()
	h.queue("a", 6, h.clock.Now(), nil)
	h.step()
	first := h.dispatched()
	if want := []string{"a0", "a1", "a2", "a3"}; !slices.Equal(ids(first), want) {
		t.Fatalf("dispatched %v, want %v", ids(first), want)
	}
	scans := h.st.scans
	h.attempt(first[0])
	h.step()
	if h.st.scans != scans || len(h.dispatched()) != 0 {
		t.Fatal("scanned with less than half the room free")
	}
	h.attempt(first[1])
	h.step()
	if h.st.scans != scans+1 {
		t.Fatalf("%d scans once half the room was free, want 1", h.st.scans-scans)
	}
	if got, want := ids(h.dispatched()), []string{"a4", "a5"}; !slices.Equal(got, want) {
		t.Fatalf("after the scan: %v, want %v", got, want)
	}
}

// The loop carries at most carryBytes of new deliveries' bodies; past that
// the worker reads the record from the store, and a body handed to a
// worker frees its share.
func TestCarryBytesBound(t *testing.T) {
	h := newHarness(t, Options{Workers: 1}, testEndpoint(t, "a", "", 1, time.Second))
	h.step()
	body := make([]byte, carryBytes/2+1)
	due := h.clock.Now().Add(time.Second)
	e := h.queue("a", 2, due, body)
	h.step()
	if h.items[e[0].Key].d == nil || h.items[e[1].Key].d != nil || h.carried != len(body) {
		t.Fatalf("carried %d bytes; first carried %v, second %v", h.carried, h.items[e[0].Key].d != nil, h.items[e[1].Key].d != nil)
	}
	h.clock.Advance(time.Second)
	h.step()
	first := h.dispatched()
	if len(first) != 1 || h.carried != 0 {
		t.Fatalf("dispatched %v, still carrying %d bytes", ids(first), h.carried)
	}
	third := h.st.put("third", "a", due.Add(time.Second), body)
	h.OnQueued([]store.QueueEntry{third})
	h.step()
	if h.items[third.Key].d == nil {
		t.Fatal("a body was not carried with room under the bound")
	}
	h.attempt(first[0])
	if h.st.reads != 0 {
		t.Fatal("the worker read a carried delivery from the store")
	}
	h.step()
	h.attempt(h.dispatched()[0])
	if h.st.reads != 1 {
		t.Fatalf("%d store reads for a delivery not carried, want 1", h.st.reads)
	}
	if want := []string{"a0", "a1"}; !slices.Equal(h.send.sent, want) {
		t.Fatalf("sent %v, want %v", h.send.sent, want)
	}
}

// oneGone is a harness whose endpoint "gone" answers 410, with one
// delivery to it dispatched.
func oneGone(t *testing.T) (*harness, *item) {
	h := newHarness(t, Options{Workers: 4}, testEndpoint(t, "gone", "", 1, time.Second))
	h.send.status["gone"] = 410
	h.step()
	h.queue("gone", 1, h.clock.Now(), nil)
	h.step()
	return h, h.dispatched()[0]
}

// A 410 answering an attempt that was in flight when its endpoint was
// deleted disables nothing: no state is written for an endpoint no longer
// there (it would outlive it), and nothing of it is parked again.
func TestGoneAfterDeleteWritesNoState(t *testing.T) {
	h, it := oneGone(t)
	h.send.during = func() { h.UpdateTable(func(*Table) *Table { return NewTable(nil, nil) }) }
	h.attempt(it)
	if _, ok := h.st.states["gone"]; ok || len(h.st.parked) != 0 {
		t.Fatalf("state %+v, parked %v", h.st.states["gone"], h.st.parked)
	}
}

// A 410 disables the endpoint before its worker slot is freed: its next
// delivery is parked, not sent, and its pending deliveries are parked.
func TestGoneDisablesEndpoint(t *testing.T) {
	h := newHarness(t, Options{Workers: 4}, testEndpoint(t, "gone", "", 1, time.Second), testEndpoint(t, "ok", "", 1, time.Second))
	h.send.status["gone"] = 410
	h.step()
	now := h.clock.Now()
	gone := h.queue("gone", 2, now, nil)
	h.queue("ok", 1, now, nil)
	h.step()
	got := h.dispatched()
	if want := []string{"gone0", "ok0"}; !slices.Equal(ids(got), want) {
		t.Fatalf("dispatched %v, want %v", ids(got), want)
	}
	h.attempt(got[0])
	if !h.Table().Disabled("gone") || !h.st.states["gone"].Disabled || !slices.Equal(h.st.parked, []string{"gone"}) {
		t.Fatalf("after a 410: disabled %v, state %+v, parked %v", h.Table().Disabled("gone"), h.st.states["gone"], h.st.parked)
	}
	// The disable parked this delivery too, before its outcome's commit:
	// that is the outcome's own parking, not one that overtook it.
	if o := h.st.outcomes[0]; o.Attempt == nil || o.Attempt.Status != 410 || o.Reason != "HTTP 410 Gone: endpoint disabled" || !o.Disabled || o.Superseded {
		t.Fatalf("outcome %+v", o)
	}
	if st := h.Stats()["gone"]; st.Failures != 1 || st.LastFailureStatus != 410 {
		t.Fatalf("stats %+v", st)
	}
	h.attempt(got[1])
	h.step()
	next := h.dispatched()
	if want := []string{"gone1"}; !slices.Equal(ids(next), want) {
		t.Fatalf("dispatched %v, want %v", ids(next), want)
	}
	h.attempt(next[0])
	if want := []string{"gone0", "ok0"}; !slices.Equal(h.send.sent, want) {
		t.Fatalf("sent %v, want %v", h.send.sent, want)
	}
	// The disable parked it: the attempt reads that back instead of
	// trusting the record carried from ingest, and reports nothing.
	for _, o := range h.st.outcomes {
		if o.Key == gone[1].Key {
			t.Fatalf("an outcome for the delivery the disable parked: %+v", o)
		}
	}
	if st := h.st.state(gone[1].Key); st != store.Undeliverable {
		t.Fatalf("next delivery: %v", st)
	}
}

// Two deliveries answered 410 at once: the first disable parks the other
// while its request is out. That parking, with the reason its own answer
// gives, is its outcome too, not a change that overtook it (it counted
// superseded and raised no notification).
func TestGoneWhileAnotherGoneDisables(t *testing.T) {
	h, it := oneGone(t)
	h.send.during = func() { // another attempt's 410, disabling first
		h.send.during = nil
		if err := h.SetDisabled(context.Background(), "gone", true, "HTTP 410 Gone: endpoint disabled", store.ByHookd); err != nil {
			t.Error(err)
		}
	}
	h.attempt(it)
	if o := h.st.outcomes[0]; o.Reason != "HTTP 410 Gone: endpoint disabled" || !o.Disabled || o.Superseded {
		t.Fatalf("outcome %+v", o)
	}
}

// spySender passes on what the real sender returned.
type spySender struct {
	Attempter
	results chan Result
}

func (s spySender) Send(ctx context.Context, ep *Endpoint, id, eventType string, body []byte) Result {
	r := s.Attempter.Send(ctx, ep, id, eventType, body)
	s.results <- r
	return r
}

// Close cancels an attempt still running at the shutdown deadline, even if
// its endpoint's timeout is longer; the delivery stays pending. Close may
// be called again.
func TestCloseCancelsAttemptsAtShutdownDeadline(t *testing.T) {
	arrived, hungUp := make(chan struct{}, 1), make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a hang-up only after the body
		arrived <- struct{}{}
		<-r.Context().Done() // never answers
		hungUp <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	clk, st := newFakeClock(), newFakeStore()
	spy := spySender{NewSender("test", nil), make(chan Result, 1)}
	ep := testEndpoint(t, "slow", srv.URL, 1, 60*time.Second)
	s, err := New(st, spy, NewTable([]*Endpoint{ep}, nil), Options{Workers: 2, ShutdownTimeout: 5 * time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	e := st.put("evt", "slow", clk.Now(), []byte(`{}`))
	s.OnQueued([]store.QueueEntry{e})
	<-arrived

	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	<-clk.made // Close waits for the shutdown deadline
	select {
	case <-closed:
		t.Fatal("Close returned before the shutdown deadline with an attempt in flight")
	default:
	}
	clk.Advance(5 * time.Second)
	<-closed
	if r := <-spy.results; !strings.HasPrefix(r.Attempt.Error, "cancelled: ") {
		t.Fatalf("attempt ended with %q, not cancelled at the deadline", r.Attempt.Error)
	}
	<-hungUp
	if got := st.state(e.Key); got != store.Pending || len(st.outcomes) != 0 {
		t.Fatalf("delivery %v, outcomes %+v; want pending, none", got, st.outcomes)
	}
	s.Close()
}

func TestNewRequiresWorkersAndShutdownTimeout(t *testing.T) {
	for _, o := range []Options{{ShutdownTimeout: time.Second}, {Workers: 1}} {
		if _, err := New(newFakeStore(), &fakeSender{}, NewTable(nil, nil), o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// Failing lists the endpoints with a failing streak, and only those.
func TestFailingStats(t *testing.T) {
	h := newHarness(t, Options{Workers: 4}, testEndpoint(t, "bad", "", 16, time.Second), testEndpoint(t, "good", "", 16, time.Second))
	h.send.status["bad"] = 500
	now := h.clock.Now()
	h.queue("bad", 1, now, nil)
	h.queue("good", 1, now, nil)
	h.step()
	for _, it := range h.dispatched() {
		h.attempt(it)
	}
	f := h.Failing()
	if len(f) != 1 || f["bad"].Failures != 1 || f["bad"].FailingSince.IsZero() {
		t.Fatalf("failing %+v", f)
	}
	if _, ok := h.Stats()["good"]; !ok {
		t.Fatal("Stats lacks the endpoint that succeeded")
	}
	h.send.status["bad"] = 200
	h.clock.Advance(2 * time.Minute)
	h.step()          // the wheel catches up with the clock
	h.needScan = true // the retry was beyond the horizon: the scan loads it
	h.step()
	retried := h.dispatched()
	if len(retried) != 1 {
		t.Fatalf("retried %v", ids(retried))
	}
	h.attempt(retried[0])
	if f := h.Failing(); len(f) != 0 {
		t.Fatalf("after a success: failing %+v", f)
	}
}

// An enable starts the failing streak over, whether it is SetDisabled's or
// a change committed with the state: disable_after counts from the next
// failure, not from the ones that disabled the endpoint (an enable was
// undone within a second). The count of failures stays: the next success
// owes the recovered notification.
func TestEnableRestartsTheFailingStreak(t *testing.T) {
	h := newHarness(t, Options{Workers: 4}, testEndpoint(t, "bad", "", 16, time.Second))
	h.send.status["bad"] = 500
	fail := func(id string) {
		h.OnQueued([]store.QueueEntry{h.st.put(id, "bad", h.clock.Now(), nil)})
		h.step()
		for _, it := range h.dispatched() {
			h.attempt(it)
		}
	}
	ctx := context.Background()
	for i, enable := range []func() error{
		func() error { return h.SetDisabled(ctx, "bad", false, "", store.ByOperator) },
		func() error {
			return h.CommitEndpoint("bad", func() error { return nil }, func(t *Table) *Table { return t.WithDisabled("bad", false) })
		},
	} {
		fail(fmt.Sprint("a", i))
		if f := h.Failing(); f["bad"].FailingSince.IsZero() {
			t.Fatalf("no streak after a failure: %+v", f)
		}
		if err := h.SetDisabled(ctx, "bad", true, "failing", store.ByHookd); err != nil {
			t.Fatal(err)
		}
		if err := enable(); err != nil {
			t.Fatal(err)
		}
		if f := h.Failing(); len(f) != 0 {
			t.Fatalf("enable %d kept the streak: %+v", i, f)
		}
		if st := h.StatsOf([]string{"bad"})["bad"]; st.Failures != 2*i+1 {
			t.Fatalf("enable %d: failures %d", i, st.Failures)
		}
		fail(fmt.Sprint("b", i))
		if f := h.Failing(); f["bad"].FailingSince.IsZero() {
			t.Fatalf("the failure after enable %d starts no streak: %+v", i, f)
		}
	}
}

// Who may change an endpoint's disabled state over whom: the operator
// over anyone; the tenant over anyone but the operator's disable; hookd's
// own disable only over an enabled endpoint.
func TestDisableChange(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	enabled := store.EndpointState{}
	by := func(who string) store.EndpointState {
		return store.EndpointState{Disabled: true, Reason: "r", By: who}
	}
	for _, c := range []struct {
		state   store.EndpointState
		on      bool
		who     string
		wantErr error
	}{
		{by(store.ByOperator), false, store.ByTenant, ErrOperatorHold},
		{by(store.ByOperator), true, store.ByTenant, ErrOperatorHold},
		{by(store.ByOperator), true, store.ByHookd, ErrUnchanged},
		{by(store.ByOperator), false, store.ByOperator, nil},
		{by(store.ByTenant), true, store.ByHookd, ErrUnchanged},
		{by(store.ByTenant), true, store.ByOperator, nil},
		{by(store.ByTenant), false, store.ByTenant, nil},
		{by(store.ByHookd), false, store.ByTenant, nil},
		{by(""), false, store.ByTenant, nil},
		{enabled, true, store.ByHookd, nil},
		{enabled, true, store.ByTenant, nil},
	} {
		es := c.state
		err := DisableChange(c.on, "why", c.who, now)(&es)
		if !errors.Is(err, c.wantErr) {
			t.Errorf("%+v, on=%v by %s: %v, want %v", c.state, c.on, c.who, err, c.wantErr)
			continue
		}
		want := store.EndpointState{Disabled: c.on, Reason: "why", Since: now, By: c.who}
		if err != nil {
			want = c.state // refused: unchanged
		}
		if es != want {
			t.Errorf("%+v, on=%v by %s: state %+v, want %+v", c.state, c.on, c.who, es, want)
		}
	}
}

// gatedStates holds the state writes of one endpoint until released, and
// fails the test if two of that endpoint's changes commit at once.
type gatedStates struct {
	*fakeStore
	id      string
	entered chan struct{}
	release chan struct{}
	writing atomic.Int32
	t       *testing.T
}

func (g *gatedStates) UpdateEndpointState(ctx context.Context, name string, fn func(*store.EndpointState) error) error {
	if name == g.id {
		if g.writing.Add(1) > 1 {
			g.t.Errorf("two changes of %s committing at once", name)
		}
		defer g.writing.Add(-1)
		g.entered <- struct{}{}
		<-g.release
	}
	return g.fakeStore.UpdateEndpointState(ctx, name, fn)
}

// A state change waits for the commit of its own endpoint's change in
// progress, not for other endpoints' (a storm of 410s once disabled its
// endpoints one commit at a time, with every worker that got one waiting
// in line); a disable is in force before its commit.
func TestStateChangesWaitOnlyForTheirEndpoint(t *testing.T) {
	a, b := testEndpoint(t, "a", "http://127.0.0.1:1/", 1, time.Second), testEndpoint(t, "b", "http://127.0.0.1:1/", 1, time.Second)
	st := &gatedStates{fakeStore: newFakeStore(), id: "a", entered: make(chan struct{}), release: make(chan struct{}), t: t}
	s, err := New(st, &fakeSender{}, NewTable([]*Endpoint{a, b}, nil), Options{Workers: 1, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- s.SetDisabled(t.Context(), "a", true, "disabled by operator", store.ByOperator) }()
	<-st.entered
	if !s.Table().Disabled("a") {
		t.Fatal("a disable is not in force while it commits")
	}
	// The same endpoint's next change waits for the first's commit.
	go func() { errs <- s.SetDisabled(t.Context(), "a", false, "", store.ByOperator) }()
	done := make(chan error)
	go func() { done <- s.SetDisabled(t.Context(), "b", true, "disabled by operator", store.ByOperator) }()
	select {
	case err := <-done:
		if err != nil || !s.Table().Disabled("b") {
			t.Fatalf("b: %v, disabled %v", err, s.Table().Disabled("b"))
		}
	case <-time.After(30 * time.Second): // a deadlock's detector, not a timing
		close(st.release)
		t.Fatal("b's disable waited for a's commit")
	}
	st.release <- struct{}{}
	<-st.entered
	st.release <- struct{}{}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s.Table().Disabled("a") || st.states["a"].Disabled {
		t.Fatalf("a: disabled in table %v, in store %+v; want enabled (the later change)", s.Table().Disabled("a"), st.states["a"])
	}
}

// A reload builds every endpoint anew; its rate_limit bucket is the
// scheduler's and keeps its tokens (each SIGHUP let a burst through), and
// a changed rate applies with the tokens left, not a full bucket.
func TestRateLimitKeptAcrossReload(t *testing.T) {
	limited := func(perSecond float64) *Endpoint {
		ep, err := NewEndpoint(EndpointConfig{Name: "r", Events: []string{"*"}, Envelope: &StandardEnvelope,
			Signing: &SigningConfig{Scheme: "none"}, Policy: &Policy{Schedule: []time.Duration{time.Minute}},
			Timeout: time.Second, MaxInFlight: 100, MaxResponseBytes: 4096, RateLimit: perSecond})
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	h := newHarness(t, Options{Workers: 100}, limited(2))
	h.send.status["r"] = 200
	h.step()
	h.queue("r", 40, h.clock.Now(), nil)
	h.step()
	// A probe first: one at a time until an answer; then the burst.
	for got := h.dispatched(); len(got) > 0; got = h.dispatched() {
		for _, it := range got {
			h.attempt(it)
		}
		h.step()
	}
	sent := len(h.send.sent)
	if sent != 2 {
		t.Fatalf("sent %d before the first refill, want the burst of 2", sent)
	}
	for _, perSecond := range []float64{2, 10} {
		h.UpdateTable(func(*Table) *Table { return NewTable([]*Endpoint{limited(perSecond)}, nil) })
		h.step()
		if got := h.dispatched(); len(got) != 0 {
			t.Fatalf("a reload to rate_limit = %v let %d more through at once", perSecond, len(got))
		}
	}
}

// A delivery redelivered after it was loaded and before its attempt is sent
// by that attempt, for the redeliver's due time: the redeliver's own entry
// found it tracked, so dropping it left the resend to the next scan.
func TestRedeliveredBeforeItsAttemptIsSentByIt(t *testing.T) {
	h := newHarness(t, Options{Workers: 1}, testEndpoint(t, "e", "http://127.0.0.1:1/", 1, time.Second))
	e := h.queue("e", 1, h.clock.Now(), []byte(`{}`))[0]
	h.step()
	got := h.dispatched()
	if len(got) != 1 {
		t.Fatalf("dispatched %d", len(got))
	}
	h.clock.Advance(time.Millisecond)
	h.OnQueued([]store.QueueEntry{h.st.redeliver(e.Key, 0, h.clock.Now())})
	h.attempt(got[0])
	if len(h.send.sent) != 1 || len(h.st.outcomes) != 1 {
		t.Fatalf("sent %v, outcomes %+v", h.send.sent, h.st.outcomes)
	}
	if o := h.st.outcomes[0]; !o.Delivered || !o.Due.Equal(h.clock.Now()) {
		t.Fatalf("outcome %+v, want delivered for the redeliver's due time", o)
	}
}

// A redeliver of a delivery that waits in the wheel for a retry sends it
// at once; it waited for the retry's time (up to the 30 s horizon), as the
// redeliver's entry found it tracked.
func TestRedeliverOfAWaitingRetryGoesAtOnce(t *testing.T) {
	h := newHarness(t, Options{Workers: 1}, testEndpoint(t, "e", "http://127.0.0.1:1/", 1, time.Second))
	e := h.queue("e", 1, h.clock.Now().Add(5*time.Second), []byte(`{}`))[0]
	h.step()
	if got := h.dispatched(); len(got) != 0 {
		t.Fatalf("dispatched %d before its time", len(got))
	}
	h.clock.Advance(time.Millisecond)
	at := h.clock.Now()
	h.OnQueued([]store.QueueEntry{h.st.redeliver(e.Key, 0, at)})
	h.clock.Advance(time.Second) // a tick of the wheel, well short of the retry
	h.step()
	got := h.dispatched()
	if len(got) != 1 || !got[0].due.Equal(at) || h.carried != 0 {
		t.Fatalf("dispatched %d after the redeliver (carried %d)", len(got), h.carried)
	}
	h.attempt(got[0])
	// The retry's old place in the wheel sends nothing more.
	h.clock.Advance(10 * time.Second)
	h.step()
	if extra := h.dispatched(); len(extra) != 0 || len(h.send.sent) != 1 {
		t.Fatalf("sent %v, then %d more", h.send.sent, len(extra))
	}
}
