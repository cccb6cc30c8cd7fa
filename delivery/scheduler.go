package delivery

import (
	"context"
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
