package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"hookd/seal"
)

// schemaVersion 2: the deliveries log's endpoint and tenant indexes are
// runs (logruns.go). Open upgrades a version 1 file (its old indexes are
// still read); a build that reads only version 1 refuses the file rather
// than answer endpoint and tenant queries without the runs' deliveries.
const schemaVersion = 2

var (
	bktMeta          = []byte("meta")
	bktEvents        = []byte("events")
	bktEventTime     = []byte("events_by_time") // created|id → nil, walked by the purger
	bktDeliveries    = []byte("deliveries")     // id\0endpoint → Delivery
	bktQueue         = []byte("queue")          // due|id\0endpoint → nil: the due-time index
	bktAttempts      = []byte("attempts")       // id\0endpoint\0n → Attempt
	bktDedup         = []byte("dedup")          // key → expiry|event id
	bktDedupExpiry   = []byte("dedup_by_expiry")
	bktUndeliverable = []byte("undeliverable") // parked|id\0endpoint → nil
	bktEndpoints     = []byte("endpoints")     // name → EndpointState
	bktOrdered       = []byte("ordered")       // endpoint\0seq → event id: ordered endpoints' pending deliveries

	keySchema       = []byte("schema_version")
	keyWALApplied   = []byte("wal_applied") // how far the write-ahead log is applied
	keyDBID         = []byte("db_id")       // random, made with the database: its log's segments carry it
	keyPending      = []byte("pending")
	keySeq          = []byte("seq") // the highest sequence number committed
	prefixEpPending = []byte("pending:")

	allBuckets = [][]byte{bktMeta, bktEvents, bktEventTime, bktDeliveries, bktQueue, bktAttempts,
		bktDedup, bktDedupExpiry, bktUndeliverable, bktEndpoints, bktOrdered}
)

// maxBatch bounds one group commit. Larger batches amortise the fsync
// further but hold the single bbolt writer longer.
const maxBatch = 4096

// maxTxWeight bounds the writes of one transaction (a logged event counts
// one, like any other request), so that a burst of batched ingest cannot
// make one huge transaction that holds memory and the writer for long.
const maxTxWeight = 4096

// commitInterval spaces bbolt commits. Nothing latency-critical waits for
// them (ingest is acknowledged by the log), so fewer, larger transactions
// spend less CPU and leave the disk's flushes to the log's syncs: a bbolt
// commit's two fsyncs take 1-3 ms, and a log sync issued meanwhile waits
// for them. (Measured: 50 ms gives ~5% more acknowledged events/s than
// 10 ms; at 100 ms the maxTxWeight cap would throttle.) A transaction that
// reached maxTxWeight is followed at once by the next.
const commitInterval = 50 * time.Millisecond

// Options tune Open. The zero value is usable.
type Options struct {
	// LockTimeout is how long Open waits for another process's lock on the
	// file before failing; zero means 2s.
	LockTimeout time.Duration
	// OnQueued is called after every commit that put deliveries on the due
	// queue, with those entries, so the scheduler can pick up near-term work
	// without rescanning. It runs on the log writer or the committer goroutine:
	// keep it cheap.
	OnQueued func([]QueueEntry)
	// BeforeCommit, when set, runs just before each commit and each sync of
	// the write-ahead log; an error aborts it as if the disk had failed. It
	// is the fault-injection seam for tests of full or broken disks.
	BeforeCommit func() error
	// SealKey seals the secrets stored in the database ([storage]
	// secrets_key_file); nil stores them in clear. The first key used is
	// recorded: Open then fails without it (ErrSealKeyMissing) or with
	// another (ErrSealKeyWrong). See sealing.go.
	SealKey *seal.Key
	// Ordered says whether an endpoint has ordering = "fifo": its new and
	// redelivered deliveries are then queued in its ordered index (see
	// ordered.go). It is asked when a delivery is queued, on the caller's
	// or the committer's goroutine: keep it cheap.
	Ordered func(endpoint string) bool
}

// QueueEntry is one delivery on the due queue, or in an ordered index.
type QueueEntry struct {
	Key     string
	Due     time.Time
	Seq     uint64 // acknowledgement order; 0 from ScanDue
	Ordered bool   // in its endpoint's ordered index, not the due queue
	// Delivery is the record when the entry is a new event's: the worker
	// may use it instead of reading it back while Moved() still returns
	// Moved. Shared: do not modify it.
	Delivery *Delivery
	Moved    uint64
	Hint     any // the NewDelivery's, when the entry is a new event's
}

// Store is hookd's only access to bbolt. New events go through the log writer
// goroutine (write-ahead log, see walwriter.go); every bbolt write goes
// through a single committer goroutine that group-commits whatever is
// waiting; reads use bbolt read transactions directly.
type Store struct {
	db   *bolt.DB
	path string
	opts Options

	wal        *wal
	ingests    chan *ingestReq
	walClosing chan struct{}
	walStopped chan struct{}
	walWG      sync.WaitGroup
	replayed   int
	unreadable []string // UnreadableSegments
	walGaps    []WALGap // DamagedLog
	resealed   int
	compactErr error // CompactError

	reqs    chan *request
	closing chan struct{}
	stopped chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	stuck        []*request   // committer only: log applications whose commit failed
	applyFailing atomic.Bool  // stuck is not empty
	committing   atomic.Int64 // unix nanoseconds when the transaction in progress began; 0 between them
	walFailing   atomic.Bool  // the last write-ahead log write or sync failed, or the database recovered since: probe before saying ready
	appliedSeg   atomic.Uint64
	moved        atomic.Uint64 // see Moved

	umu sync.Mutex
	u   unapplied

	pending atomic.Int64 // committed count of pending deliveries

	seq   atomic.Uint64 // the last sequence number handed out
	hurry chan struct{} // an ordered endpoint's outcome waits for the next commit

	epMu      sync.Mutex
	epPending map[string]int64 // committed pending count per endpoint
	epParked  map[string]int64 // committed undeliverable count per endpoint

	unindexed   atomic.Int64 // committed deliveries waiting in log_unindexed
	lastIndexed time.Time    // committer only: when indexLog last ran
	indexFailed bool         // committer only: and failed
}

type request struct {
	fn   func(tx *bolt.Tx, st *txState) error
	done func(error)
	// committed, if set, runs after a successful commit under umu, in the
	// same critical section that updates the committed pending counts, so
	// that readers never see a delivery counted both as committed and as
	// unapplied.
	committed func()
	events    int   // logged events it applies
	refused   error // fn's refusal (refuse) in the last commit tried
}

// refusal is an operation's answer that it changes nothing: its fn
// returned it before writing anything, so the batch it is in commits
// without it, and it alone is answered with err. Any other error rolls
// the batch back and retries each operation alone, each with its own
// sync: a refusal repeated in a loop (a customer re-enabling an endpoint
// the operator holds, a magic link used again) would make every batch it
// landed in commit one operation at a time, for everyone.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// refuse is err as a refusal; fn must not have written anything.
func refuse(err error) error { return &refusal{err} }

func (r *request) weight() int { return max(r.events, 1) }

// txState accumulates what a batch of operations changed so the committer
// can update counters once and notify after the fsync.
type txState struct {
	base   int64 // pending count before this transaction
	delta  int64
	eps    map[string]int64 // per-endpoint pending deltas
	parked map[string]int64 // per-endpoint undeliverable deltas
	// parkings counts deliveries parked (whatever the path: an attempt's
	// outcome, a disable, a delete, routing to a disabled endpoint) for
	// hookd_undeliverable_total; leaving the bucket does not lower it.
	parkings int
	queued   []QueueEntry
	seq      uint64 // highest sequence number written
	// unindexed is the change in deliveries waiting in log_unindexed.
	unindexed int64
	runs      *runBounds // read by the first purge that needs them
}

func (st *txState) pending() int64 { return st.base + st.delta }

// pend records that n deliveries of endpoint became (n>0) or stopped
// being (n<0) pending.
func (st *txState) pend(endpoint string, n int64) {
	st.delta += n
	if st.eps == nil {
		st.eps = map[string]int64{}
	}
	st.eps[endpoint] += n
}

// park records that n deliveries of endpoint were parked (n>0) or left
// the undeliverable bucket (n<0).
func (st *txState) park(endpoint string, n int64) {
	if st.parked == nil {
		st.parked = map[string]int64{}
	}
	st.parked[endpoint] += n
	if n > 0 {
		st.parkings += int(n)
	}
}

// Open opens (creating if needed) the database at path and starts the
// committer. It fails fast when another process holds the file.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	}
	if err := checkFileSize(path); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, opts: opts, reqs: make(chan *request, maxBatch),
		closing: make(chan struct{}), stopped: make(chan struct{}),
		ingests: make(chan *ingestReq, maxBatch), walClosing: make(chan struct{}), walStopped: make(chan struct{}),
		wal: &wal{dir: path + ".wal", spareP: runtime.GOMAXPROCS(0) > runtime.NumCPU()}, u: newUnapplied(),
		hurry: make(chan struct{}, 1)}
	err = s.init()
	if err == nil {
		err = os.MkdirAll(s.wal.dir, 0o700)
	}
	if err == nil {
		err = s.replay()
	}
	if err == nil && s.wal.id == nil {
		err = s.assignID()
	}
	if err == nil {
		// A failed copy (no room for it, say) leaves the mark for the next
		// start and is not the start's failure: the secrets are sealed.
		// Only a file that cannot be opened again after the rename is.
		if cerr := s.compactIfPending(); cerr != nil && s.db == nil {
			err = cerr
		} else {
			s.compactErr = cerr
		}
	}
	if err == nil {
		err = s.db.View(func(tx *bolt.Tx) error {
			s.seq.Store(getU64(tx.Bucket(bktMeta).Get(keySeq)))
			return nil
		})
	}
	if err != nil {
		if s.db != nil { // compact may have closed it
			s.db.Close()
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.wg.Add(1)
	go s.run()
	s.walWG.Add(1)
	go s.walLoop()
	return s, nil
}

// openBolt opens the database file. The freelist is synced (bbolt's
// default): without it, Open rebuilds it by walking every page, which with
// a million pending deliveries costs seconds and pulls the whole file into
// memory.
func openBolt(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, ErrLocked
	}
	return db, err
}

// compactIfPending rewrites the database file without its free pages once
// a key has sealed its secrets for the first time (keyCompact): the pages
// that held them in clear are freed, not erased, and stayed in the file
// (and in every backup, a copy of the file) until reused. The copy is
// written next to it, synced, and renamed over it; the mark is removed
// after, so that a crash on the way leaves it to the next start.
func (s *Store) compactIfPending() error {
	var pending bool
	s.db.View(func(tx *bolt.Tx) error {
		pending = tx.Bucket(bktMeta).Get(keyCompact) != nil
		return nil
	})
	if !pending {
		return nil
	}
	tmp := s.path + ".compact"
	os.Remove(tmp) // a crash's leftover
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	err = bolt.Compact(dst, s.db, 64<<20)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact after sealing: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("compact after sealing: %w", err)
	}
	// The old file's lock goes with it; the new one is locked at once.
	s.db.Close()
	if s.db, err = openBolt(s.path, s.opts); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Delete(keyCompact) })
}

func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bktMeta)
		if v := meta.Get(keySchema); v == nil {
			if err := meta.Put(keySchema, putU64(schemaVersion)); err != nil {
				return err
			}
			// A new database: no log can be its own yet.
			id, err := newDBID()
			if err != nil {
				return err
			}
			if err := meta.Put(keyDBID, id); err != nil {
				return err
			}
		} else if got := getU64(v); got < 1 || got > schemaVersion {
			return fmt.Errorf("%w: file has %d, this build reads 1 to %d", ErrSchema, got, schemaVersion)
		} else if got < schemaVersion {
			if err := meta.Put(keySchema, putU64(schemaVersion)); err != nil {
				return err
			}
		}
		// Still nil for a database made before ids: its log is replayed as
		// the previous build wrote it, then Open assigns one.
		if id := meta.Get(keyDBID); id != nil {
			s.wal.id = bytes.Clone(id)
		}
		s.pending.Store(int64(getU64(meta.Get(keyPending))))
		s.epPending, s.epParked = countPending(tx), countParked(tx)
		// Builds before this one kept each endpoint's count in meta.
		c := meta.Cursor()
		for k, _ := c.Seek(prefixEpPending); k != nil && bytes.HasPrefix(k, prefixEpPending); k, _ = c.Seek(prefixEpPending) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		// Deliveries waiting for the log's endpoint and tenant indexes (a
		// batch or two at most: a stop leaves them for the next run).
		s.unindexed.Store(int64(tx.Bucket(bktLogUnindexed).Stats().KeyN))
		return s.initSeal(tx)
	})
}

// addCounts adds a transaction's per-endpoint deltas to counts, which
// holds no zero.
func addCounts(counts, deltas map[string]int64) {
	for ep, n := range deltas {
		old, ok := counts[ep]
		switch v := max(old+n, 0); {
		case v > 0 && !ok:
			// Its own copy: a failing endpoint's count lives for hours,
			// and the caller's string may share its memory with many
			// others (the table's packed endpoints).
			counts[strings.Clone(ep)] = v
		case v > 0:
			counts[ep] = v
		default:
			delete(counts, ep)
		}
	}
}

// countPending counts each endpoint's pending deliveries from the keys of
// the due queue (due|id\0endpoint) and of the ordered index
// (endpoint\0seq), which name it. The counts are not kept in the database:
// with deliveries to many endpoints, a counter per endpoint was a write to
// a random page of meta for each delivery in every commit, and counting at
// Open costs a walk of the pending keys (about 0.1 s a million).
func countPending(tx *bolt.Tx) map[string]int64 {
	out := map[string]int64{}
	countByEndpoint(out, tx.Bucket(bktQueue))
	c := tx.Bucket(bktOrdered).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if i := bytes.IndexByte(k, 0); i >= 0 {
			out[string(k[:i])]++
		}
	}
	return out
}

// countParked counts each endpoint's undeliverable deliveries from the
// keys of the undeliverable bucket (parked|id\0endpoint), like
// countPending: a walk of those keys at Open, no write per delivery.
func countParked(tx *bolt.Tx) map[string]int64 {
	out := map[string]int64{}
	countByEndpoint(out, tx.Bucket(bktUndeliverable))
	return out
}

// countByEndpoint adds to out how many keys of b each endpoint has, for
// the buckets keyed time|id\0endpoint (the due queue, undeliverable).
func countByEndpoint(out map[string]int64, b *bolt.Bucket) {
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if i := bytes.LastIndexByte(k, 0); i >= 0 {
			out[string(k[i+1:])]++
		}
	}
}

func newDBID() ([]byte, error) {
	id := make([]byte, walIDBytes)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("database id: %w", err)
	}
	return id, nil
}

// assignID gives a database made before ids its id, once its log (written
// without headers) has been replayed. It records the whole log as applied
// in the same transaction, so that the next Open, holding an id, never
// meets an unapplied segment without a header.
func (s *Store) assignID() error {
	id, err := newDBID()
	if err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		if err := meta.Put(keyDBID, id); err != nil {
			return err
		}
		return meta.Put(keyWALApplied, walPos{seg: s.wal.pos.seg + 1}.bytes())
	}); err != nil {
		return fmt.Errorf("assign database id: %w", err)
	}
	s.wal.id = id
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Pending is the number of deliveries acknowledged and not yet delivered
// or parked.
func (s *Store) Pending() int64 {
	s.umu.Lock()
	defer s.umu.Unlock()
	return s.pending.Load() + s.u.pending
}

// Close stops the log writer, commits the writes already queued (including the
// logged events not yet applied), stops the committer (later writes fail
// with ErrClosed) and closes the database.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.walClosing)
		s.walWG.Wait()
		close(s.closing)
		s.wg.Wait()
		s.wal.close()
		err = s.db.Close()
	})
	return err
}

// submit hands fn to the committer and waits for its commit. A ctx done
// before then refuses it; once handed over it is committed or failed by
// the committer, which runs until the store closes, and submit answers
// that, whatever ctx does meanwhile: an answer never says "not stored" of a
// write that was. (Returning at ctx's end, an API change cut short by the
// shutdown answered 503, "nothing was stored", and was kept.)
func (s *Store) submit(ctx context.Context, fn func(*bolt.Tx, *txState) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch := make(chan error, 1)
	if err := s.toCommitter(&request{fn: fn, done: func(err error) { ch <- err }}); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-s.stopped:
		select {
		case err := <-ch:
			return err
		default:
			return ErrClosed
		}
	}
}

// submitAsync hands fn to the committer; done runs on the committer
// goroutine after the commit (or failure).
func (s *Store) submitAsync(fn func(*bolt.Tx, *txState) error, done func(error)) {
	if err := s.toCommitter(&request{fn: fn, done: done}); err != nil {
		done(err)
	}
}

func (s *Store) toCommitter(r *request) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	select {
	case s.reqs <- r:
		return nil
	case <-s.closing:
		return ErrClosed
	}
}

func (s *Store) run() {
	defer s.wg.Done()
	defer close(s.stopped)
	batch := make([]*request, 0, maxBatch)
	var last time.Time
	full := false // the last transaction took its maximum: more is waiting
	tick := time.NewTicker(logIndexEvery / 2)
	defer tick.Stop()
	s.lastIndexed = time.Now()
	for {
		var retry <-chan time.Time
		if len(s.stuck) > 0 {
			retry = time.After(100 * time.Millisecond)
		}
		select {
		case r := <-s.reqs:
			if wait := commitInterval - time.Since(last); wait > 0 && !full {
				s.pause(wait, last)
			}
			last = time.Now()
			b := s.drain(append(s.takeStuck(batch[:0]), r))
			full = len(b) == maxBatch || weight(b) >= maxTxWeight
			s.apply(b)
			clear(b) // the reused array must not keep applied requests alive
			s.maybeIndexLog()
		case <-tick.C:
			s.maybeIndexLog()
		case <-retry:
			b := s.drain(s.takeStuck(batch[:0]))
			s.apply(b)
			clear(b)
		case <-s.closing:
			// Commit what was queued before Close: attempt outcomes of a
			// graceful shutdown must not be lost (they would be repeated).
			// Log applications that fail once more are replayed at Open.
			for b := s.drain(s.takeStuck(batch[:0])); len(b) > 0; b = s.drain(batch[:0]) {
				s.apply(b)
			}
			return
		}
	}
}

// maybeIndexLog runs indexLog in a transaction of its own when a batch is
// waiting, or anything has waited logIndexEvery. A failure (the disk is
// full, say) leaves the deliveries waiting, where queries still see them,
// and the next try waits logIndexEvery even if a batch is waiting.
func (s *Store) maybeIndexLog() {
	n := s.unindexed.Load()
	if n <= 0 || ((n < logIndexBatch || s.indexFailed) && time.Since(s.lastIndexed) < logIndexEvery) {
		return
	}
	s.lastIndexed = time.Now()
	limit := int(min(n, logIndexBatch))
	s.apply([]*request{{fn: func(tx *bolt.Tx, st *txState) error { return indexAndMerge(tx, st, limit) },
		done: func(err error) { s.indexFailed = err != nil }}})
}

// orderedCommitInterval is how soon after the last commit the next one
// may start when an ordered endpoint's outcome is waiting for it: that
// endpoint sends nothing until its head's outcome is committed, so the
// commit interval would be its pace. (Measured: see README, Performance.)
const orderedCommitInterval = 2 * time.Millisecond

// pause waits out the commit interval, or only orderedCommitInterval
// once an ordered endpoint's outcome is waiting.
func (s *Store) pause(wait time.Duration, last time.Time) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.hurry:
		if rest := orderedCommitInterval - time.Since(last); rest > 0 {
			time.Sleep(rest)
		}
	}
}

// takeStuck puts the failed log applications first in batch, in order.
func (s *Store) takeStuck(batch []*request) []*request {
	batch = append(batch, s.stuck...)
	clear(s.stuck)
	s.stuck = s.stuck[:0]
	return batch
}

// drain adds the requests already waiting to batch, up to maxBatch
// requests and maxTxWeight writes, without waiting for more (run spaces
// the commits; drain only collects).
func (s *Store) drain(batch []*request) []*request {
	w := weight(batch)
	for len(batch) < maxBatch && w < maxTxWeight {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
			w += r.weight()
		default:
			return batch
		}
	}
	return batch
}

func weight(batch []*request) int {
	w := 0
	for _, r := range batch {
		w += r.weight()
	}
	return w
}

// apply commits batch in one transaction. If one operation fails the
// transaction is rolled back and each operation retried alone, so one bad
// request cannot fail its neighbours.
func (s *Store) apply(batch []*request) {
	st, err := s.commit(batch)
	if err != nil && len(batch) > 1 && !errors.Is(err, ErrStorage) {
		for _, r := range batch {
			s.apply([]*request{r})
		}
		return
	}
	if err == nil {
		if len(st.queued) > 0 && s.opts.OnQueued != nil {
			s.opts.OnQueued(st.queued)
		}
	}
	for _, r := range batch {
		if r.refused != nil {
			r.done(r.refused) // whatever became of the rest: it wrote nothing
			continue
		}
		r.done(err)
	}
}

func (s *Store) commit(batch []*request) (*txState, error) {
	if !slices.ContainsFunc(batch, func(r *request) bool { return r.fn != nil }) {
		return &txState{}, nil // only barriers
	}
	start := time.Now()
	s.committing.Store(start.UnixNano())
	defer s.committing.Store(0)
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, fmt.Errorf("%w: begin: %v", ErrStorage, err)
	}
	st := &txState{base: s.pending.Load()}
	wrote := false
	for _, r := range batch {
		r.refused = nil
		if r.fn == nil {
			continue
		}
		if err := r.fn(tx, st); err != nil {
			if ref, ok := errors.AsType[*refusal](err); ok {
				r.refused = ref.err
				continue
			}
			tx.Rollback()
			return nil, err
		}
		wrote = true
	}
	if !wrote {
		// Every operation refused: nothing to commit, and no sync for it.
		tx.Rollback()
		return &txState{}, nil
	}
	if err := s.putCounts(tx, st); err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if s.opts.BeforeCommit != nil {
		if err := s.opts.BeforeCommit(); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("%w: commit: %v", ErrStorage, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("%w: commit: %v", ErrStorage, err)
	}
	s.unindexed.Add(st.unindexed)
	s.umu.Lock()
	s.pending.Store(max(st.pending(), 0))
	if len(st.eps) > 0 || len(st.parked) > 0 {
		s.epMu.Lock()
		addCounts(s.epPending, st.eps)
		addCounts(s.epParked, st.parked)
		s.epMu.Unlock()
	}
	for _, r := range batch {
		if r.committed != nil && r.refused == nil {
			r.committed()
		}
	}
	s.umu.Unlock()
	undeliverableTotal.Add(st.parkings)
	commitBatchSize.Update(float64(len(batch)))
	commitSeconds.UpdateDuration(start)
	return st, nil
}

// putCounts writes the sequence number and the pending count a
// transaction changed (the per-endpoint counts live in memory only: see
// countPending).
func (s *Store) putCounts(tx *bolt.Tx, st *txState) error {
	meta := tx.Bucket(bktMeta)
	if st.seq > getU64(meta.Get(keySeq)) {
		if err := meta.Put(keySeq, putU64(st.seq)); err != nil {
			return err
		}
	}
	if st.delta != 0 {
		if err := meta.Put(keyPending, putU64(uint64(max(st.pending(), 0)))); err != nil {
			return err
		}
	}
	return nil
}

// PendingByEndpoint returns the committed pending count of each endpoint
// that has any.
func (s *Store) PendingByEndpoint() map[string]int64 {
	s.umu.Lock()
	defer s.umu.Unlock()
	s.epMu.Lock()
	defer s.epMu.Unlock()
	out := make(map[string]int64, len(s.epPending))
	for k, v := range s.epPending {
		out[k] = v
	}
	for k, v := range s.u.epPending {
		out[k] += v
	}
	return out
}

// PendingOf is how many deliveries of the endpoints with these internal
// ids are pending, acknowledged ones not yet applied included.
func (s *Store) PendingOf(ids []string) int64 {
	// Summed under the locks rather than through PendingEach: this runs for
	// every tenant event (max_pending), and a map per event was garbage.
	s.umu.Lock()
	defer s.umu.Unlock()
	s.epMu.Lock()
	defer s.epMu.Unlock()
	n := int64(0)
	for _, id := range ids {
		n += s.epPending[id] + s.u.epPending[id]
	}
	return n
}

// PendingEach is PendingOf for each id: a page of endpoints needs its own
// counts, not a copy of every endpoint's.
func (s *Store) PendingEach(ids []string) map[string]int64 {
	s.umu.Lock()
	defer s.umu.Unlock()
	s.epMu.Lock()
	defer s.epMu.Unlock()
	out := make(map[string]int64, len(ids))
	for _, id := range ids {
		out[id] = s.epPending[id] + s.u.epPending[id]
	}
	return out
}

// Check runs bbolt's consistency check and returns the first problem found.
// It runs in the committer's transaction: bbolt's check reads the shared
// freelist, so in a read transaction it is only valid while nothing writes.
func (s *Store) Check() error {
	var problem error
	if err := s.submit(context.Background(), func(tx *bolt.Tx, _ *txState) error {
		problem = check(tx)
		return nil
	}); err != nil {
		return err
	}
	return problem
}

func check(tx *bolt.Tx) error {
	var first error
	for err := range tx.Check() { // drain: Check's goroutine blocks until read
		if first == nil {
			first = err
		}
	}
	return first
}
