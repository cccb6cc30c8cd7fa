package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"hookd/store"
)

// Store is what the scheduler needs from the database; *store.Store is
// the real one, tests pass a fake.
type Store interface {
	// ScanDue walks the due index in time order up to until.
	// skip is given the key's bytes, valid during the call only.
	ScanDue(until time.Time, limit int, skip func(key []byte) bool, fn func(store.QueueEntry)) error
	// Delivery reads a delivery's record when it was not carried, or
	// Moved says the carried copy may be out of date.
	Delivery(key string) (*store.Delivery, error)
	Moved() uint64
	// Complete records an outcome; done runs after its commit.
	Complete(o *store.Outcome, done func(error))
	UpdateEndpointState(ctx context.Context, name string, fn func(*store.EndpointState) error) error
	ParkEndpoint(ctx context.Context, endpoint, reason string) (int, error)
	// PendingOf counts the pending deliveries of the endpoints (by id).
	PendingOf(endpoints []string) int64
	// OrderedHead returns an ordered endpoint's first pending delivery.
	OrderedHead(endpoint string) (store.Head, bool, error)
	// OrderedEndpoints lists the endpoints with ordered deliveries pending.
	OrderedEndpoints() ([]string, error)
}

var _ Store = (*store.Store)(nil)

// Attempter makes delivery attempts; *Sender is the real one, tests pass
// a fake.
type Attempter interface {
	// Send makes one attempt; it returns early, failed, when ctx ends.
	Send(ctx context.Context, ep *Endpoint, id, eventType string, body []byte) Result
	// Close drops idle connections.
	Close()
}

// Internal tuning, not configuration. An Options field left zero takes
// the matching default; tests shrink them.
const (
	DefaultTick         = 10 * time.Millisecond // wheel resolution
	DefaultScanInterval = time.Second           // how often the due index is re-read
	DefaultMaxTracked   = 100_000               // deliveries held in memory at most
)

// nearHorizon is how far ahead the scheduler holds deliveries in memory;
// later ones stay in the store until a scan finds them within it.
const nearHorizon = 30 * time.Second

// wheelSlots with DefaultTick gives a 40s wheel: the horizon fits.
const wheelSlots = 4096

// Options configure the Scheduler. Workers and ShutdownTimeout come from
// the [delivery] config and are required; the rest are tuning.
type Options struct {
	Workers         int           // delivery goroutines, at least 1
	ShutdownTimeout time.Duration // how long Close lets in-flight attempts run, > 0
	Tick            time.Duration // 0: DefaultTick
	ScanInterval    time.Duration // 0: DefaultScanInterval
	MaxTracked      int           // 0: DefaultMaxTracked
	Clock           Clock         // nil: RealClock
	Log             zerolog.Logger
	// OnOutcome, if set, is told of every outcome after it was recorded
	// (metrics, notifications). It runs on the store's committer goroutine:
	// it must not block or write to the store synchronously.
	OnOutcome func(OutcomeEvent)
}

func (o *Options) resolve() error {
	if o.Workers < 1 {
		return fmt.Errorf("delivery scheduler: workers = %d, need at least 1", o.Workers)
	}
	if o.ShutdownTimeout <= 0 {
		return fmt.Errorf("delivery scheduler: shutdown timeout %v, need more than 0", o.ShutdownTimeout)
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = DefaultScanInterval
	}
	if o.MaxTracked <= 0 {
		o.MaxTracked = DefaultMaxTracked
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	return nil
}

// Scheduler moves due deliveries from the store to a bounded pool of
// workers, fairly across endpoints, and records each attempt's outcome.
type Scheduler struct {
	st     Store
	sender Attempter
	clock  Clock
	opts   Options
	log    zerolog.Logger

	table   atomic.Pointer[Table]
	tableMu sync.Mutex // serialises the table's swaps; never held across a commit
	epLocks KeyLocks   // by id: orders one endpoint's changes, each a commit and a swap (lockEndpoint)

	// inbox: written by the committer (via OnQueued and completion
	// callbacks), drained by the loop. A mutex and a wake channel rather than
	// a channel of work, so the committer never blocks on the scheduler.
	mu       sync.Mutex
	queuedIn []store.QueueEntry
	sentIn   []*item // attempt over: the worker and the endpoint slot are free
	doneIn   []*item // outcome committed: the item may be loaded again
	pings    []chan struct{}
	wake     chan struct{}

	recheckIn []string // FIFOs whose waiting heads are to be read again (Recheck)

	statsMu sync.Mutex
	eps     map[string]*epState // by endpoint id
	failing map[string]struct{} // endpoints with Failures > 0

	jobs chan *item

	ctx      context.Context // ends when Close begins: no new attempts
	cancel   context.CancelFunc
	attempts context.Context // ends at the shutdown deadline: in-flight attempts stop
	abort    context.CancelCauseFunc
	loopWG   sync.WaitGroup
	workerWG sync.WaitGroup
	closed   sync.Once

	// owned by the goroutine that runs step: the loop, or a test
	items    map[string]*item
	wheel    *wheel
	ready    readyQueue
	held     ring   // slow endpoints waiting for room in their share (dispatch)
	readied  uint64 // items made ready so far: their order (makeReady)
	atLimit  int    // endpoints waiting at their in-flight limit with deliveries ready
	busy     int
	busySlow int  // workers attempting for slow endpoints
	carried  int  // bytes of bodies held by tracked items (loop only)
	needScan bool // the periodic re-read of the due index is due
	overflow bool // something due was left in the store for lack of room

	// ordered endpoints (fifo.go), also owned by the loop
	fifos     map[string]*fifo
	lookups   []string           // FIFOs to look up in this step
	relook    []string           // lookups that failed: retried at the next scan
	far       map[*item]struct{} // heads due beyond the horizon
	needFIFOs bool               // the FIFOs are to be read from the store (after a start)
}

// New creates a stopped scheduler over st with the given endpoints.
func New(st Store, sender Attempter, t *Table, opts Options) (*Scheduler, error) {
	if err := opts.resolve(); err != nil {
		return nil, err
	}
	s := &Scheduler{st: st, sender: sender, clock: opts.Clock, opts: opts, log: opts.Log,
		wake: make(chan struct{}, 1), jobs: make(chan *item, opts.Workers),
		items: map[string]*item{}, eps: map[string]*epState{}, failing: map[string]struct{}{},
		wheel: newWheel(opts.Tick, wheelSlots, opts.Clock.Now()), needScan: true,
		fifos: map[string]*fifo{}, far: map[*item]struct{}{}, needFIFOs: true}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.attempts, s.abort = context.WithCancelCause(context.Background())
	s.table.Store(t)
	return s, nil
}

// Start launches the loop and the workers.
func (s *Scheduler) Start() {
	s.loopWG.Add(1)
	go s.loop()
	for range s.opts.Workers {
		s.workerWG.Add(1)
		go s.worker()
	}
}

// errShutdown ends the attempts still running at the shutdown deadline.
var errShutdown = errors.New("shutdown timeout")

// Close stops dispatching, gives attempts in flight up to ShutdownTimeout
// to finish and be recorded, then cancels those still running (their
// connections are closed) and waits for every goroutine. Cancelled attempts
// are not recorded: their deliveries stay pending in the store and are
// retried after a restart (at-least-once). Close may be called more than
// once, and without Start.
func (s *Scheduler) Close() {
	s.closed.Do(func() {
		s.cancel()
		s.loopWG.Wait()
		close(s.jobs)
		done := make(chan struct{})
		go func() { s.workerWG.Wait(); close(done) }()
		deadline := s.clock.NewTimer(s.opts.ShutdownTimeout)
		select {
		case <-done:
		case <-deadline.C():
			s.log.Warn().Msg("shutdown timeout: cancelling in-flight attempts; they are retried after restart")
			s.abort(errShutdown)
			<-done
		}
		deadline.Stop()
		s.abort(errShutdown)
		s.sender.Close()
	})
}

// SendTest makes one attempt outside the queue (a test event), under the
// workers' attempt context, which Close cancels once the workers are done
// (a test attempt then still running fails as cancelled). The caller's
// context is not used: the API's is fasthttp's RequestCtx, which
// is recycled when its handler returns, and the goroutines the context
// package, resolver and dialer start for a foreign context may outlive the
// attempt and read it (a data race the race detector found).
func (s *Scheduler) SendTest(ep *Endpoint, id, eventType string, body []byte) Result {
	return s.sender.Send(s.attempts, ep, id, eventType, body)
}

// Table returns the endpoints in force.
func (s *Scheduler) Table() *Table { return s.table.Load() }

// UpdateTable swaps in fn of the table in force (a reload, a managed
// endpoint created), serialised with the other swaps so that no change is
// lost; disabled flags carry over. added are the ids of endpoints the
// change adds (or adds again).
func (s *Scheduler) UpdateTable(fn func(*Table) *Table, added ...string) {
	s.swap(fn)
	// An endpoint added again may have an ordered head waiting for its
	// retry that was parked meanwhile: look at the added ones again.
	if len(added) > 0 {
		s.Recheck(added...)
	} else {
		s.poke()
	}
}

// swap replaces the table in force by fn of it.
func (s *Scheduler) swap(fn func(*Table) *Table) {
	s.tableMu.Lock()
	s.table.Store(fn(s.table.Load()))
	s.tableMu.Unlock()
}

// lockEndpoint serialises the changes of the endpoint with internal id
// id (SetDisabled, CommitEndpoint), so that none lands between another's
// commit and its swap, and returns its unlock. The table's own lock is
// held only for each swap: changes of different endpoints commit together
// instead of one per commit (a storm of 410s from many endpoints, each
// disabling its own, once ran at one commit each, with the workers that
// got them waiting in line).
func (s *Scheduler) lockEndpoint(id string) func() {
	return s.epLocks.Lock(id)
}

// CommitEndpoint makes a change of the endpoint with internal id id that
// is committed to the store first: commit commits it, then apply makes it
// current, unless commit failed (its error is returned, and the table
// stays as it was). A SetDisabled (a 410, disable_after) of the endpoint
// cannot land between the commit and the swap, where it would write a
// state the swap then contradicts or, for a delete, park with its own
// reason. added is as UpdateTable's.
func (s *Scheduler) CommitEndpoint(id string, commit func() error, apply func(*Table) *Table, added ...string) error {
	defer s.lockEndpoint(id)()
	if err := commit(); err != nil {
		return err
	}
	// A patch that enables it starts its failing streak over; before the
	// swap, so that disable_after, which reads the table first, never sees
	// it enabled with the old streak. Restarted for any change of a
	// disabled endpoint: its streak counts nothing meanwhile.
	if s.table.Load().Disabled(id) {
		s.restartStreak(id)
	}
	s.UpdateTable(apply, added...)
	return nil
}

// SetDisabled enables or disables the endpoint with internal id id, by
// who (store.ByOperator, ByTenant or ByHookd: see DisableChange). The
// state is persisted; disabling parks its pending deliveries as
// undeliverable with reason. DisableChange's refusals are its errors.
func (s *Scheduler) SetDisabled(ctx context.Context, id string, on bool, reason, by string) error {
	unlock := s.lockEndpoint(id)
	t := s.table.Load()
	if t.ByID(id) == nil {
		// Deleted or removed meanwhile (a 410 answering an attempt that
		// was in flight at the delete, an operator's disable racing the
		// tenant's delete): a state written now would outlive it, and its
		// deliveries are parked with the reason it went with. A managed
		// endpoint's delete holds its lock, so it is wholly before or
		// after this; a reload does not, and a config endpoint it removes
		// during the write keeps the state, as a config endpoint's state
		// outlives its removal anyway.
		unlock()
		return ErrGone
	}
	// A disable takes effect before the state is written, so nothing more
	// is dispatched to the endpoint; an enable after, so that one the
	// state refuses (an operator's hold) is never dispatched to. A disable
	// is undone if the write fails.
	was := t.Disabled(id)
	if !on {
		if err := s.ParkLeftovers(ctx, id); err != nil {
			unlock()
			return err
		}
	}
	if on {
		s.swap(func(t *Table) *Table { return t.WithDisabled(id, true) })
	}
	change := DisableChange(on, reason, by, s.clock.Now().UTC())
	err := s.st.UpdateEndpointState(ctx, id, func(es *store.EndpointState) error {
		if Repeat(*es, on, by) {
			return ErrUnchanged
		}
		return change(es)
	})
	switch {
	case err != nil && on && !was && !errors.Is(err, ErrUnchanged): // disabled already where it is stored
		s.swap(func(t *Table) *Table { return t.WithDisabled(id, false) })
	case !on && (err == nil || errors.Is(err, ErrUnchanged)): // enabled where it is stored
		if was { // before the swap: see CommitEndpoint
			s.restartStreak(id)
		}
		s.swap(func(t *Table) *Table { return t.WithDisabled(id, false) })
	}
	unlock()
	if err != nil || !on {
		return err
	}
	s.ParkDisabled(ctx, id, reason)
	return nil
}

// ErrOperatorHold refuses a tenant's change to the disabled state of an
// endpoint the operator disabled.
var ErrOperatorHold = errors.New("disabled by the operator")

// ErrGone is a state change of an endpoint no longer there: deleted or
// removed since it was looked up. The change is the delete's to answer
// (its deliveries are parked with its reason); an API caller gets a 404,
// as if it had come after.
var ErrGone = errors.New("no such endpoint")

// ErrUnchanged is a change of an endpoint's disabled state that finds it
// so already: hookd's own disable of one disabled by anyone, which keeps
// that reason, or a repeat of the API's disable or enable by the same
// party. Nothing is written, and no deliveries are parked again.
var ErrUnchanged = errors.New("disabled already")

// DisableChange is the state update that sets an endpoint's disabled
// state to on with reason, by who, at now. The holds between who may
// change it are checked in the transaction that writes the state, so that
// nothing landing between a read and a write is overruled:
//   - an operator's disable holds against the tenant (ErrOperatorHold)
//     until the operator enables it. A platform that turns a customer's
//     endpoint off (abuse, an unpaid plan) must not see the customer turn it
//     back on, nor make the disable its own by disabling it again. Disables
//     by hookd or the tenant stay the tenant's to undo;
//   - hookd's own disable (a 410, disable_after) changes only an enabled
//     endpoint: one disabled by another keeps its reason, and its hold.
func DisableChange(on bool, reason, by string, now time.Time) func(*store.EndpointState) error {
	return func(es *store.EndpointState) error {
		switch {
		case by == store.ByTenant:
			if err := CheckHold(*es); err != nil {
				return err
			}
		case by == store.ByHookd && es.Disabled:
			return ErrUnchanged
		}
		es.Disabled, es.Reason, es.Since, es.By = on, reason, now, by
		return nil
	}
}

// Repeat reports whether setting the disabled state es to on, by who, is
// a repeat of what es says already: nothing to write, park or log again (a
// customer's loop of disables committed and logged each one). Another
// party's disable is not one: the operator's takes a tenant's over.
func Repeat(es store.EndpointState, on bool, by string) bool {
	return es.Disabled == on && (!on || es.By == by)
}

// Held says whether an operator's disable holds the endpoint with state
// es against its tenant (DisableChange).
func Held(es store.EndpointState) bool { return es.Disabled && es.By == store.ByOperator }

// CheckHold is ErrOperatorHold for a tenant's change to an endpoint
// with state es that the operator's disable holds, or nil.
func CheckHold(es store.EndpointState) error {
	if Held(es) {
		return ErrOperatorHold
	}
	return nil
}

// ParkDisabled parks what the endpoint with internal id id has pending, as
// undeliverable with reason, once the table has it disabled and its state
// says so (SetDisabled, or a change committed with its state). A failure
// (the stop ending ctx midway, a failed commit) is logged, not returned:
// the disable is made and current, the worker parks what comes due
// meanwhile, and an enable (ParkLeftovers) or the next start parks the
// rest.
func (s *Scheduler) ParkDisabled(ctx context.Context, id, reason string) {
	n, err := s.st.ParkEndpoint(ctx, id, reason)
	s.Recheck(id)
	msg := "endpoint disabled"
	if err != nil {
		msg = "endpoint disabled; parking its deliveries stopped, the rest are parked as they come due, at an enable or at the next start"
	}
	s.log.Warn().Err(err).Str("endpoint", s.table.Load().Name(id)).Str("reason", reason).Int("parked", n).Msg(msg)
}

// ParkLeftovers parks what a disabled endpoint still has pending before
// it is enabled: what its disable's parking left (a failed commit; the
// stop's leftovers the next start parks) or an attempt in flight at the
// disable rescheduled, which an enable would otherwise send without the
// redeliver that parked deliveries wait for. Nothing else is pending for
// a disabled endpoint (ingest records its deliveries as undeliverable),
// so usually this is a count in memory, not a scan. An error leaves the
// endpoint disabled.
func (s *Scheduler) ParkLeftovers(ctx context.Context, id string) error {
	if !s.table.Load().Disabled(id) || s.st.PendingOf([]string{id}) == 0 {
		return nil
	}
	n, err := s.st.ParkEndpoint(ctx, id, ReasonDisabled)
	s.Recheck(id)
	s.log.Warn().Err(err).Str("endpoint", s.table.Load().Name(id)).Int("parked", n).Msg("parked what a disable had left pending, before enabling")
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
	t := s.clock.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C():
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
