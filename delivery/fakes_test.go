package delivery

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"hookd/store"
)

// fakeClock only moves when a test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	made   chan *fakeTimer // one-shot timers, as they are made
}

type fakeTimer struct {
	clock   *fakeClock
	c       chan time.Time
	at      time.Time
	period  time.Duration // 0 for a one-shot timer
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), made: make(chan *fakeTimer, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(d time.Duration) Timer { return c.timer(d, d) }

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := c.timer(d, 0)
	c.made <- t
	return t
}

func (c *fakeClock) timer(d, period time.Duration) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, c: make(chan time.Time, 1), at: c.now.Add(d), period: period}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock on and fires what fell due, like time's timers
// (a ticker that nobody reads drops ticks).
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.stopped || t.at.After(c.now) {
			continue
		}
		select {
		case t.c <- c.now:
		default:
		}
		if t.period == 0 {
			t.stopped = true
			continue
		}
		for !t.at.After(c.now) {
			t.at = t.at.Add(t.period)
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() {
	t.clock.mu.Lock()
	t.stopped = true
	t.clock.mu.Unlock()
}

// fakeStore keeps delivery records in a map and applies outcomes at once.
type fakeStore struct {
	mu       sync.Mutex
	recs     map[string]*store.Delivery
	outcomes []store.Outcome
	reads    int // Delivery calls
	scans    int
	states   map[string]store.EndpointState
	parked   []string             // endpoints passed to ParkEndpoint
	failing  map[string]time.Time // ordered deliveries: first failed attempt of the cycle
	lookups  int                  // OrderedHead calls
	hold     bool                 // Complete waits for commit
	held     []func()
	moved    uint64 // redelivers and parkings, as the store's Moved
}

// commit applies the outcomes Complete held and runs their callbacks, as
// the store's committer does after a commit.
func (f *fakeStore) commit() {
	f.mu.Lock()
	held := f.held
	f.held, f.hold = nil, false
	f.mu.Unlock()
	for _, fn := range held {
		fn()
	}
	f.mu.Lock()
	f.hold = true
	f.mu.Unlock()
}

func newFakeStore() *fakeStore {
	return &fakeStore{recs: map[string]*store.Delivery{}, states: map[string]store.EndpointState{}, failing: map[string]time.Time{}}
}

// putOrdered stores a pending delivery of an ordered endpoint and returns
// its queue entry, as the log writer reports a new event's.
func (f *fakeStore) putOrdered(id, endpoint string, seq uint64, due time.Time) store.QueueEntry {
	d := &store.Delivery{EventID: id, Endpoint: endpoint, EventType: "test.event", State: store.Pending, Due: due, Seq: seq, Ordered: true}
	f.mu.Lock()
	f.recs[d.Key()] = d
	f.mu.Unlock()
	c := *d
	return store.QueueEntry{Key: d.Key(), Due: due, Seq: seq, Ordered: true, Delivery: &c}
}

// redeliver queues a delivery again at the tail with seq, as the store's
// requeue does, and returns the entry its commit reports.
func (f *fakeStore) redeliver(key string, seq uint64, now time.Time) store.QueueEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.recs[key]
	d.State, d.Due, d.Seq, d.Cycle, d.Reason = store.Pending, now, seq, d.Attempts, ""
	delete(f.failing, key)
	f.moved++
	return store.QueueEntry{Key: key, Due: now, Seq: seq, Ordered: d.Ordered}
}

func (f *fakeStore) Moved() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.moved
}

func (f *fakeStore) OrderedHead(endpoint string) (store.Head, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	var best *store.Delivery
	for _, d := range f.recs {
		if d.Ordered && d.Endpoint == endpoint && d.State == store.Pending && (best == nil || d.Seq < best.Seq) {
			best = d
		}
	}
	if best == nil {
		return store.Head{}, false, nil
	}
	return store.Head{QueueEntry: store.QueueEntry{Key: best.Key(), Due: best.Due, Seq: best.Seq, Ordered: true},
		FailingSince: f.failing[best.Key()]}, true, nil
}

func (f *fakeStore) OrderedEndpoints() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, d := range f.recs {
		if d.Ordered && d.State == store.Pending && !seen[d.Endpoint] {
			seen[d.Endpoint] = true
			out = append(out, d.Endpoint)
		}
	}
	slices.Sort(out)
	return out, nil
}

// put stores a pending delivery and returns its queue entry, carrying a
// copy of the record as the store does for new events.
func (f *fakeStore) put(id, endpoint string, due time.Time, body []byte) store.QueueEntry {
	d := &store.Delivery{EventID: id, Endpoint: endpoint, EventType: "test.event", Body: body, State: store.Pending, Due: due}
	f.mu.Lock()
	f.recs[d.Key()] = d
	moved := f.moved
	f.mu.Unlock()
	c := *d
	return store.QueueEntry{Key: d.Key(), Due: due, Delivery: &c, Moved: moved}
}

func (f *fakeStore) ScanDue(until time.Time, limit int, skip func([]byte) bool, fn func(store.QueueEntry)) error {
	f.mu.Lock()
	var due []store.Delivery
	for _, d := range f.recs {
		if d.State == store.Pending && !d.Ordered && !d.Due.After(until) {
			due = append(due, *d)
		}
	}
	f.scans++
	f.mu.Unlock()
	slices.SortFunc(due, func(a, b store.Delivery) int {
		return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.Key(), b.Key()))
	})
	n := 0
	for _, d := range due {
		if n == limit {
			break
		}
		if !skip([]byte(d.Key())) {
			fn(store.QueueEntry{Key: d.Key(), Due: d.Due})
			n++
		}
	}
	return nil
}

func (f *fakeStore) Delivery(key string) (*store.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	d, ok := f.recs[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := *d
	return &c, nil
}

func (f *fakeStore) Complete(o *store.Outcome, done func(error)) {
	f.mu.Lock()
	if f.hold {
		f.held = append(f.held, func() { f.Complete(o, done) })
		f.mu.Unlock()
		return
	}
	o.Superseded = true
	if d := f.recs[o.Key]; d != nil {
		if o.Attempt != nil {
			d.Attempts++
		}
		current := d.State == store.Pending && d.Due.Equal(o.Due) && (!d.Ordered || d.Seq == o.Seq)
		if current && d.Ordered && !o.Delivered && o.Attempt != nil {
			if _, ok := f.failing[o.Key]; !ok {
				f.failing[o.Key] = o.Attempt.At
			}
		}
		parkedByIt := o.Disabled && d.State == store.Undeliverable && d.Reason == o.Reason
		o.Superseded = !current && !(o.Delivered && d.State != store.Pending) && !parkedByIt
		switch {
		case parkedByIt:
		case o.Superseded:
		case o.Delivered:
			d.State = store.Delivered
		case !o.Next.IsZero():
			d.Due = o.Next
		default:
			d.State, d.Reason = store.Undeliverable, o.Reason
		}
	}
	f.outcomes = append(f.outcomes, *o)
	f.mu.Unlock()
	done(nil)
}

func (f *fakeStore) UpdateEndpointState(_ context.Context, name string, fn func(*store.EndpointState) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	es := f.states[name]
	if err := fn(&es); err != nil {
		return err
	}
	f.states[name] = es
	return nil
}

func (f *fakeStore) PendingOf(endpoints []string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, d := range f.recs {
		if d.State == store.Pending && slices.Contains(endpoints, d.Endpoint) {
			n++
		}
	}
	return n
}

func (f *fakeStore) ParkEndpoint(_ context.Context, endpoint, reason string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parked = append(f.parked, endpoint)
	f.moved++
	n := 0
	for _, d := range f.recs {
		if d.Endpoint == endpoint && d.State == store.Pending {
			d.State, d.Reason = store.Undeliverable, reason
			n++
		}
	}
	return n, nil
}

func (f *fakeStore) state(key string) store.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recs[key].State
}

// fakeSender answers each endpoint with a fixed status (200 unless set).
type fakeSender struct {
	mu     sync.Mutex
	status map[string]int
	sent   []string // event ids, in order
	during func()   // runs in each Send, as if while the request was out
}

func (f *fakeSender) Send(_ context.Context, ep *Endpoint, id, _ string, _ []byte) Result {
	if f.during != nil {
		f.during()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, id)
	status := 200
	if s, ok := f.status[ep.Name]; ok {
		status = s
	}
	return Result{Attempt: store.Attempt{At: time.Now().UTC(), Status: status}}
}

func (f *fakeSender) Close() {}

// testEndpoint is an endpoint with max_in_flight n and a one-retry policy.
func testEndpoint(t testing.TB, name, url string, n int, timeout time.Duration) *Endpoint {
	t.Helper()
	ep, err := NewEndpoint(EndpointConfig{
		Name: name, URL: url, Events: []string{"*"}, Envelope: &StandardEnvelope,
		Signing: &SigningConfig{Scheme: "none"}, Policy: &Policy{Schedule: []time.Duration{time.Minute}},
		Timeout: timeout, MaxInFlight: n, MaxResponseBytes: 4096,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// harness is a scheduler that is never started: the test is its loop.
type harness struct {
	*Scheduler
	st    *fakeStore
	clock *fakeClock
	send  *fakeSender
}

func newHarness(t testing.TB, opts Options, eps ...*Endpoint) *harness {
	t.Helper()
	h := &harness{st: newFakeStore(), clock: newFakeClock(), send: &fakeSender{status: map[string]int{}}}
	opts.Clock = h.clock
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = time.Second
	}
	s, err := New(h.st, h.send, NewTable(eps, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	h.Scheduler = s
	t.Cleanup(s.Close)
	return h
}

// prove marks endpoints as having answered promptly: they have their
// max_in_flight (dispatch), not a probe's one attempt.
func (h *harness) prove(ids ...string) {
	for _, id := range ids {
		h.state(id).answered.Store(true)
	}
}

// slow marks endpoints whose last attempt got no prompt answer: they share
// half the workers (dispatch).
func (h *harness) slow(ids ...string) {
	for _, id := range ids {
		h.state(id).slow.Store(true)
	}
}

// step runs one turn of the loop at the fake clock's time.
func (h *harness) step() { h.Scheduler.step(h.clock.Now()) }

// dispatched takes what the last steps handed to workers, in order.
func (h *harness) dispatched() []*item {
	var out []*item
	for {
		select {
		case it := <-h.jobs:
			out = append(out, it)
		default:
			return out
		}
	}
}

// ids lists the event ids of items.
func ids(items []*item) []string {
	var out []string
	for _, it := range items {
		id, _ := store.SplitKey(it.key)
		out = append(out, id)
	}
	return out
}
