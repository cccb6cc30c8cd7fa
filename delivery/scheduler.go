package delivery

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"hookd/store"
)

// Options tune the Scheduler. Zero values take the defaults noted.
type Options struct {
	Workers         int           // delivery goroutines; default 64
	ShutdownTimeout time.Duration // how long Close lets in-flight attempts finish; default 10s
	Tick            time.Duration // wheel resolution; default 10ms
	ScanInterval    time.Duration // how often the due index is re-read; default 1s
	MaxTracked      int           // deliveries held in memory at most; default 100,000
	Log             zerolog.Logger
	// OnOutcome, if set, is told of every outcome after it was recorded
	// (metrics, notifications). It runs on the store's committer goroutine:
	// it must not block or write to the store synchronously.
	OnOutcome func(OutcomeEvent)
}

// OutcomeEvent describes one recorded outcome.
type OutcomeEvent struct {
	Delivery *store.Delivery // as it was before the attempt
	Outcome  *store.Outcome
	Failures int // consecutive failed attempts of the endpoint, after this one
	Previous int // ... and before it
}

// Stats is what the scheduler knows about an endpoint since start.
type Stats struct {
	InFlight          int
	Failures          int // consecutive failed attempts
	LastSuccess       time.Time
	LastFailure       time.Time
	LastFailureStatus int
	LastFailureError  string
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Tick <= 0 {
		o.Tick = 10 * time.Millisecond
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = time.Second
	}
	if o.MaxTracked <= 0 {
		o.MaxTracked = 100_000
	}
}

// item is one delivery the scheduler holds in memory: in the wheel, ready,
// or in flight. It is tracked from when it is loaded until its attempt's
// outcome is committed, so it is never dispatched twice at once.
type item struct {
	key      string
	endpoint string
	due      time.Time
	d        *store.Delivery // the new event's record, if carried (see carryBytes)
}

// carryBytes bounds the request bodies the loop holds for tracked new
// deliveries, so that a fast ingest far ahead of delivery cannot pile up
// memory; past it, workers read the record from the store.
const carryBytes = 8 << 20

type epQueue struct {
	items    []*item
	inflight int
}

// Scheduler moves due deliveries from the store to a bounded pool of
// workers, fairly across endpoints, and records each attempt's outcome.
type Scheduler struct {
	st     *store.Store
	sender *Sender
	opts   Options
	log    zerolog.Logger

	table   atomic.Pointer[Table]
	tableMu sync.Mutex // serialises table writers

	// inbox: written by the committer (via OnQueued and completion
	// callbacks), drained by the loop. A mutex and a wake channel rather than
	// a channel of work, so the committer never blocks on the scheduler.
	mu       sync.Mutex
	queuedIn []store.QueueEntry
	sentIn   []*item // attempt over: the worker and the endpoint slot are free
	doneIn   []*item // outcome committed: the item may be loaded again
	pings    []chan struct{}
	wake     chan struct{}

	statsMu sync.Mutex
	stats   map[string]*Stats

	jobs    chan *item
	abandon atomic.Bool

	ctx      context.Context
	cancel   context.CancelFunc
	loopWG   sync.WaitGroup
	workerWG sync.WaitGroup

	// owned by the loop goroutine
	items    map[string]*item
	wheel    *wheel
	ready    map[string]*epQueue
	ring     []string
	busy     int
	carried  int  // bytes of bodies held by tracked items (loop only)
	needScan bool // the periodic re-read of the due index is due
	overflow bool // something due was left in the store for lack of room
}

// New creates a stopped scheduler over st with the given endpoints.
func New(st *store.Store, sender *Sender, t *Table, opts Options) *Scheduler {
	opts.defaults()
	s := &Scheduler{st: st, sender: sender, opts: opts, log: opts.Log,
		wake: make(chan struct{}, 1), jobs: make(chan *item, opts.Workers),
		items: map[string]*item{}, ready: map[string]*epQueue{}, stats: map[string]*Stats{}}
	s.table.Store(t)
	return s
}

// Start launches the loop and the workers.
func (s *Scheduler) Start() {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	now := time.Now()
	s.wheel = newWheel(s.opts.Tick, 4096, now)
	s.needScan = true
	s.loopWG.Add(1)
	go s.loop()
	for range s.opts.Workers {
		s.workerWG.Add(1)
		go s.worker()
	}
}

// Close stops dispatching, gives attempts in flight up to ShutdownTimeout
// to finish and be recorded, and waits for every goroutine. Attempts still
// running after that are not recorded: their deliveries stay pending in the
// store and are retried after a restart (at-least-once).
func (s *Scheduler) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.loopWG.Wait()
	close(s.jobs)
	done := make(chan struct{})
	go func() { s.workerWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownTimeout):
		s.abandon.Store(true)
		s.log.Warn().Msg("shutdown timeout: abandoning in-flight attempts; they are retried after restart")
		<-done
	}
}

// Stats returns a copy of every endpoint's statistics.
func (s *Scheduler) Stats() map[string]Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := make(map[string]Stats, len(s.stats))
	for k, v := range s.stats {
		out[k] = *v
	}
	return out
}

// stat returns name's stats; the caller holds statsMu.
func (s *Scheduler) stat(name string) *Stats {
	st := s.stats[name]
	if st == nil {
		st = &Stats{}
		s.stats[name] = st
	}
	return st
}

func (s *Scheduler) addInFlight(name string, n int) {
	s.statsMu.Lock()
	s.stat(name).InFlight += n
	s.statsMu.Unlock()
}

// Sender returns the HTTP sender, for test events sent outside the queue.
func (s *Scheduler) Sender() *Sender { return s.sender }

// Table returns the endpoints in force.
func (s *Scheduler) Table() *Table { return s.table.Load() }

// SetTable swaps in a new table (after a reload), keeping disabled flags.
func (s *Scheduler) SetTable(eps []*Endpoint) {
	s.tableMu.Lock()
	defer s.tableMu.Unlock()
	s.table.Store(NewTable(eps, s.table.Load().disabled))
	s.poke()
}

// SetDisabled enables or disables an endpoint. The state is persisted;
// disabling parks its pending deliveries as undeliverable with reason.
func (s *Scheduler) SetDisabled(ctx context.Context, name string, on bool, reason string) error {
	s.tableMu.Lock()
	old := s.table.Load()
	// Take effect before the state is written, so nothing more is
	// dispatched to an endpoint being disabled; undo if the write fails.
	s.table.Store(old.withDisabled(name, on))
	err := s.st.UpdateEndpointState(ctx, name, func(es *store.EndpointState) {
		es.Disabled, es.Reason, es.Since = on, reason, time.Now().UTC()
	})
	if err != nil {
		s.table.Store(old)
	}
	s.tableMu.Unlock()
	if err != nil || !on {
		return err
	}
	n, err := s.st.ParkEndpoint(ctx, name, reason)
	s.log.Warn().Str("endpoint", name).Str("reason", reason).Int("parked", n).Msg("endpoint disabled")
	return err
}

// Ping reports whether the loop answers within timeout; the systemd
// watchdog is only fed while it does.
func (s *Scheduler) Ping(timeout time.Duration) bool {
	ch := make(chan struct{})
	s.mu.Lock()
	s.pings = append(s.pings, ch)
	s.mu.Unlock()
	s.poke()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// OnQueued is the store's hook for deliveries put on the due queue. It
// never blocks.
func (s *Scheduler) OnQueued(entries []store.QueueEntry) {
	s.mu.Lock()
	s.queuedIn = append(s.queuedIn, entries...)
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) horizon() time.Duration { return min(30*time.Second, s.wheel.span()-s.opts.Tick) }

func (s *Scheduler) loop() {
	defer s.loopWG.Done()
	tick := time.NewTicker(s.opts.Tick)
	defer tick.Stop()
	scan := time.NewTicker(s.opts.ScanInterval)
	defer scan.Stop()
	for {
		now := time.Now()
		s.drainInbox(now)
		// Rescan when the periodic timer says so, or after an overflow once
		// half the room is free again: never per completion, as each scan
		// walks past every tracked key.
		if (s.needScan && len(s.items) < s.opts.MaxTracked) || (s.overflow && len(s.items) <= s.opts.MaxTracked/2) {
			s.scan(now)
		}
		s.wheel.advance(now, s.makeReady)
		s.dispatch()
		// Tick only while something waits in the wheel or for a free slot:
		// an idle daemon sleeps until new work, a ping or the next scan.
		var tickC <-chan time.Time
		if s.wheel.n > 0 || len(s.ring) > 0 {
			tickC = tick.C
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-tickC:
		case <-scan.C:
			s.needScan = true
		}
	}
}

func (s *Scheduler) drainInbox(now time.Time) {
	s.mu.Lock()
	queued, sent, done, pings := s.queuedIn, s.sentIn, s.doneIn, s.pings
	s.queuedIn, s.sentIn, s.doneIn, s.pings = nil, nil, nil, nil
	s.mu.Unlock()
	for _, ch := range pings {
		close(ch)
	}
	for _, it := range sent {
		s.busy--
		s.addInFlight(it.endpoint, -1)
		if q := s.ready[it.endpoint]; q != nil {
			q.inflight--
			if q.inflight == 0 && len(q.items) == 0 {
				delete(s.ready, it.endpoint)
			}
		}
	}
	for _, it := range done {
		delete(s.items, it.key)
	}
	for _, e := range queued {
		s.track(e, now)
	}
}

// track takes a queue entry into memory if it is within the horizon and
// there is room; otherwise it stays only in the store and a later scan
// loads it.
func (s *Scheduler) track(e store.QueueEntry, now time.Time) {
	if _, ok := s.items[e.Key]; ok {
		return
	}
	if e.Due.Sub(now) >= s.horizon() {
		return
	}
	if len(s.items) >= s.opts.MaxTracked {
		s.overflow = true
		return
	}
	_, ep := store.SplitKey(e.Key)
	it := &item{key: e.Key, endpoint: ep, due: e.Due}
	if e.Delivery != nil && s.carried+len(e.Delivery.Body) <= carryBytes {
		it.d = e.Delivery // before makeReady: dispatch gives the bytes back
		s.carried += len(it.d.Body)
	}
	switch s.wheel.add(it) {
	case alreadyDue:
		s.makeReady(it)
	case beyondSpan: // only if the loop fell far behind; a later scan loads it
		if it.d != nil {
			s.carried -= len(it.d.Body)
		}
		return
	}
	s.items[e.Key] = it
}

// scan loads the near horizon from the due index. A delivery stays tracked
// until the loop has drained its committed outcome, and the scan runs on
// the loop goroutine: whatever snapshot it reads, a delivery in flight is
// skipped, and an untracked one is seen in its committed state. A delivery
// is never loaded twice.
func (s *Scheduler) scan(now time.Time) {
	s.needScan, s.overflow = false, false
	room := s.opts.MaxTracked - len(s.items)
	err := s.st.ScanDue(now.Add(s.horizon()), room,
		func(key string) bool { _, ok := s.items[key]; return ok },
		func(e store.QueueEntry) { s.track(e, now) })
	if err != nil {
		s.log.Error().Err(err).Msg("scan due index")
	}
	if len(s.items) >= s.opts.MaxTracked {
		s.overflow = true
	}
}

func (s *Scheduler) makeReady(it *item) {
	q := s.ready[it.endpoint]
	if q == nil {
		q = &epQueue{}
		s.ready[it.endpoint] = q
	}
	if len(q.items) == 0 {
		s.ring = append(s.ring, it.endpoint)
	}
	q.items = append(q.items, it)
}

// dispatch hands ready items to workers round-robin across endpoints, one
// per endpoint per round, within each endpoint's max_in_flight and rate
// limit, so a slow endpoint holds at most its own share of the workers.
func (s *Scheduler) dispatch() {
	t := s.table.Load()
	for s.busy < s.opts.Workers && len(s.ring) > 0 {
		progress := false
		kept := s.ring[:0]
		for _, name := range s.ring {
			q := s.ready[name]
			ep := t.Get(name)
			limit := 16
			if ep != nil {
				limit = ep.MaxInFlight
			}
			if s.busy < s.opts.Workers && q.inflight < limit && (ep == nil || ep.limiter == nil || ep.limiter.Allow()) {
				it := q.items[0]
				q.items[0] = nil
				q.items = q.items[1:]
				q.inflight++
				s.busy++
				if it.d != nil {
					s.carried -= len(it.d.Body)
				}
				s.addInFlight(name, 1)
				s.jobs <- it // never blocks: busy <= Workers == cap(jobs)
				progress = true
			}
			if len(q.items) > 0 {
				kept = append(kept, name)
			}
		}
		clear(s.ring[len(kept):])
		s.ring = kept
		if !progress {
			return
		}
	}
}

func (s *Scheduler) worker() {
	defer s.workerWG.Done()
	for it := range s.jobs {
		if s.ctx.Err() != nil {
			continue // shutting down: no new attempts; it stays pending
		}
		s.attempt(it)
	}
}

// release frees the worker and the endpoint's in-flight slot as soon as
// the attempt is over; the commit of its outcome need not hold them.
func (s *Scheduler) release(it *item) {
	s.mu.Lock()
	s.sentIn = append(s.sentIn, it)
	s.mu.Unlock()
	s.poke()
}

// finish untracks an item once its outcome is committed (or abandoned).
func (s *Scheduler) finish(it *item) {
	s.mu.Lock()
	s.doneIn = append(s.doneIn, it)
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) attempt(it *item) {
	d, err := it.d, error(nil)
	it.d = nil
	if d == nil {
		d, err = s.st.Delivery(it.key)
	}
	if err != nil || d.State != store.Pending || !d.Due.Equal(it.due) {
		// Delivered, parked or rescheduled since it was loaded.
		s.release(it)
		s.finish(it)
		return
	}
	t := s.table.Load()
	ep := t.Get(it.endpoint)
	o := store.Outcome{Key: it.key, Due: it.due}
	switch {
	case ep == nil:
		o.Reason = "endpoint removed"
	case t.Disabled(ep.Name):
		o.Reason = "endpoint disabled"
	default:
		res := s.sender.Send(ep, d.EventID, d.EventType, d.Body)
		if s.abandon.Load() {
			s.release(it)
			s.finish(it)
			return
		}
		o.Attempt = &res.Attempt
		if res.OK() {
			o.Delivered = true
		} else {
			v := ep.Policy.Decide(d.Attempts-d.Cycle+1, res.Attempt.Status, res.Attempt.Error, res.RetryAfter, rand.Float64())
			if v.Retry {
				o.Next = time.Now().Add(v.Delay).UTC()
			} else {
				o.Reason = v.Reason
			}
			if v.Disable {
				// Before this worker's slot is released: the endpoint's
				// next delivery must already see it disabled.
				if err := s.SetDisabled(context.Background(), ep.Name, true, v.Reason); err != nil {
					s.log.Error().Err(err).Str("endpoint", ep.Name).Msg("disable endpoint after 410")
				}
			}
		}
	}
	s.release(it)
	s.st.Complete(o, func(err error) {
		s.logOutcome(d, &o, err)
		if err == nil && o.Attempt != nil {
			ev := OutcomeEvent{Delivery: d, Outcome: &o}
			s.statsMu.Lock()
			st := s.stat(it.endpoint)
			ev.Previous = st.Failures
			if o.Delivered {
				st.Failures, st.LastSuccess = 0, o.Attempt.At
			} else {
				st.Failures++
				st.LastFailure, st.LastFailureStatus, st.LastFailureError = o.Attempt.At, o.Attempt.Status, o.Attempt.Error
			}
			ev.Failures = st.Failures
			s.statsMu.Unlock()
			if s.opts.OnOutcome != nil {
				s.opts.OnOutcome(ev)
			}
		} else if err == nil && s.opts.OnOutcome != nil {
			s.opts.OnOutcome(OutcomeEvent{Delivery: d, Outcome: &o})
		}
		s.finish(it)
	})
}

func (s *Scheduler) logOutcome(d *store.Delivery, o *store.Outcome, err error) {
	var ev *zerolog.Event
	switch {
	case err != nil:
		s.log.Error().Err(err).Str("event_id", d.EventID).Str("endpoint", d.Endpoint).Msg("record attempt failed; delivery stays pending")
		return
	case o.Delivered:
		ev = s.log.Debug()
	case o.Reason != "":
		ev = s.log.Error().Str("reason", o.Reason)
	default:
		ev = s.log.Warn().Time("next_attempt", o.Next)
	}
	ev = ev.Str("event_id", d.EventID).Str("endpoint", d.Endpoint)
	if a := o.Attempt; a != nil {
		ev = ev.Int("attempt", a.N).Int("status", a.Status).Dur("latency", a.Latency)
		if a.Error != "" {
			ev = ev.Str("error", a.Error)
		}
	}
	switch {
	case o.Delivered:
		ev.Msg("delivered")
	case o.Reason != "":
		ev.Msg("undeliverable")
	default:
		ev.Msg("attempt failed; will retry")
	}
}
