package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The log writer goroutine owns the write-ahead log. It takes every ingest
// request waiting, decides duplicates and max_pending for the whole batch,
// writes the accepted events with one fdatasync, answers the callers, and
// hands the batch to the committer, which applies it to bbolt in its next
// transaction (together with attempt outcomes) and records how far the log
// has been applied. Until then the events are "unapplied": kept in memory
// so that duplicate checks, pending counts and the workers' reads see them.

// unapplied is what the log holds that bbolt does not yet.
type unapplied struct {
	ids        map[string]struct{}  // event ids
	keys       map[string]string    // dedup key → event id
	deliveries map[string]*Delivery // delivery key → record
	pending    int64
	epPending  map[string]int64
	bytes      int64 // of the records held
	// ordered holds each endpoint's ordered deliveries in Seq order: the
	// log writer adds them in that order and the committer applies them in
	// the same order.
	ordered map[string][]*Delivery
}

func newUnapplied() unapplied {
	return unapplied{ids: map[string]struct{}{}, keys: map[string]string{}, deliveries: map[string]*Delivery{}, epPending: map[string]int64{},
		ordered: map[string][]*Delivery{}}
}

func (u *unapplied) duplicate(p *preparedEvent) (string, bool) {
	if key := p.ne.DedupKey; key != "" {
		if id, ok := u.keys[key]; ok {
			return id, true
		}
	}
	if _, ok := u.ids[p.ne.Event.ID]; ok {
		return p.ne.Event.ID, true
	}
	return "", false
}

// mark records p's id and dedup key for duplicate.
func (u *unapplied) mark(p *preparedEvent) {
	u.ids[p.ne.Event.ID] = struct{}{}
	if p.expiry > 0 {
		u.keys[p.ne.DedupKey] = p.ne.Event.ID
	}
}

func (u *unapplied) add(p *preparedEvent) {
	u.mark(p)
	for _, pd := range p.deliveries {
		u.deliveries[string(pd.key)] = pd.d
		if pd.d.State == Pending {
			u.epPending[pd.d.Endpoint]++
			u.pending++
		}
		if pd.d.Ordered {
			u.ordered[pd.d.Endpoint] = append(u.ordered[pd.d.Endpoint], pd.d)
		}
	}
	u.bytes += p.size()
}

func (u *unapplied) remove(p *preparedEvent) {
	delete(u.ids, p.ne.Event.ID)
	if p.expiry > 0 && u.keys[p.ne.DedupKey] == p.ne.Event.ID {
		delete(u.keys, p.ne.DedupKey)
	}
	for _, pd := range p.deliveries {
		delete(u.deliveries, string(pd.key))
		if pd.d.Ordered {
			l := u.ordered[pd.d.Endpoint]
			if i := slices.Index(l, pd.d); i >= 0 { // the first, as applied in order
				l = slices.Delete(l, i, i+1)
			}
			if len(l) == 0 {
				delete(u.ordered, pd.d.Endpoint)
			} else {
				u.ordered[pd.d.Endpoint] = l
			}
		}
		if pd.d.State != Pending {
			continue
		}
		u.pending--
		if u.epPending[pd.d.Endpoint]--; u.epPending[pd.d.Endpoint] <= 0 {
			delete(u.epPending, pd.d.Endpoint)
		}
	}
	u.bytes -= p.size()
}

// maxUnapplied and maxUnappliedBytes bound the logged events waiting for
// the committer (and the records memory holds for them) before the log writer
// waits for it: by count for many small events, by bytes for large ones.
const (
	maxUnapplied      = 16384
	maxUnappliedBytes = 64 << 20
)

func (s *Store) committerBehind() bool {
	s.umu.Lock()
	defer s.umu.Unlock()
	return len(s.u.ids) > maxUnapplied || s.u.bytes > maxUnappliedBytes
}

// linger is the longest the log writer holds a batch that is much smaller than
// usual, so that the requests about to arrive share its sync.
const linger = 200 * time.Microsecond

func (s *Store) walLoop() {
	defer s.walWG.Done()
	defer close(s.walStopped)
	batch := make([]*ingestReq, 0, maxBatch)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	typical := 0.0 // moving average of requests per batch
	for {
		select {
		case r := <-s.ingests:
			b := s.drainIngests(append(batch[:0], r))
			// Group commit without a delay lets a convoy form under load:
			// all clients answered by one sync come back spread out, the
			// first finds the log writer idle and gets a sync of its own, and
			// the rest wait for it. Waiting briefly when a batch is far
			// below the usual size gives them one sync together instead.
			if float64(len(b)) < typical/4 {
				timer.Reset(linger)
				b = s.lingerIngests(b, int(typical/2), timer.C)
			}
			typical += (float64(len(b)) - typical) / 8
			s.walBatch(b)
			// The backing array outlives the batch: drop its pointers so
			// the requests (bodies, rendered deliveries) can be collected.
			clear(b)
		case <-s.walClosing:
			for b := s.drainIngests(batch[:0]); len(b) > 0; b = s.drainIngests(batch[:0]) {
				s.walBatch(b)
			}
			return
		}
	}
}

// lingerIngests adds requests to batch as they arrive until it holds want
// or the timer fires.
func (s *Store) lingerIngests(batch []*ingestReq, want int, timeout <-chan time.Time) []*ingestReq {
	for len(batch) < want {
		select {
		case r := <-s.ingests:
			batch = s.drainIngests(append(batch, r))
		case <-timeout:
			return batch
		}
	}
	return batch
}

// drainIngests adds the requests already waiting to batch, up to about
// maxTxWeight events, so that one log batch (and the transaction that
// applies it) stays bounded however many events each request carries.
func (s *Store) drainIngests(batch []*ingestReq) []*ingestReq {
	n := 0
	for _, r := range batch {
		n += len(r.events)
	}
	for len(batch) < maxBatch && n < maxTxWeight {
		select {
		case r := <-s.ingests:
			batch = append(batch, r)
			n += len(r.events)
		default:
			return batch
		}
	}
	return batch
}

func (s *Store) walBatch(batch []*ingestReq) {
	finish := func(err error) {
		for _, r := range batch {
			r.done <- err
		}
	}
	if s.applyFailing.Load() {
		// Logged events could not be applied (disk full, I/O error): take
		// no more until they are, so memory and the log stay bounded.
		finish(fmt.Errorf("%w: the database cannot be written", ErrStorage))
		return
	}
	probe := false
	for _, r := range batch {
		probe = probe || len(r.events) == 0
	}
	// Unapplied events first, then the database: an event leaves the
	// unapplied set only after its commit, so a read begun after this check
	// sees every event the check missed.
	lookup := false // only client-chosen ids and dedup keys can repeat
	s.umu.Lock()
	for _, r := range batch {
		for i := range r.prep {
			p := &r.prep[i]
			if id, ok := s.u.duplicate(p); ok {
				r.results[i] = IngestResult{ID: id, Duplicate: true}
			} else if !p.ne.FreshID || p.ne.DedupKey != "" {
				lookup = true
			}
		}
	}
	s.umu.Unlock()
	if lookup {
		if err := s.lookupDuplicates(batch); err != nil {
			finish(fmt.Errorf("%w: read: %v", ErrStorage, err))
			return
		}
	}

	accepted, payloads := s.accept(batch)
	if len(accepted) == 0 {
		if probe && s.walFailing.Load() {
			s.probeLog()
		}
		finish(nil)
		return
	}

	// Backpressure: while the committer is far behind (a burst through the
	// batch API), wait for it rather than let unapplied events pile up in
	// memory.
	if s.committerBehind() {
		s.barrier()
	}
	// Sequence numbers in log order are acknowledgement order: a batch is
	// acknowledged after the one before it. A failed write leaves a gap,
	// which is harmless: ordering needs them increasing, not dense.
	first := s.seq.Add(uint64(len(accepted))) - uint64(len(accepted)) + 1
	for i, p := range accepted {
		p.setSeq(first + uint64(i))
	}
	start := time.Now()
	pos, err := s.wal.write(payloads, s.opts.BeforeCommit, s.appliedSeg.Load())
	s.walFailing.Store(err != nil)
	if err != nil {
		finish(fmt.Errorf("%w: write-ahead log: %v", ErrStorage, err))
		return
	}
	walBatchSize.Update(float64(len(accepted)))
	walSyncSeconds.UpdateDuration(start)

	// Before the events can be read or moved: a redeliver needs their ids
	// (after the 202), and a parking of their endpoint waits for their
	// apply, submitted below (a review found this read after the submit,
	// where a park could slip in between).
	moved := s.moved.Load()
	s.umu.Lock()
	for _, p := range accepted {
		s.u.add(p)
	}
	s.umu.Unlock()
	s.submitApply(accepted, pos)
	if s.opts.OnQueued != nil {
		var queued []QueueEntry
		for _, p := range accepted {
			for _, pd := range p.deliveries {
				if pd.d.State != Pending {
					continue
				}
				queued = append(queued, QueueEntry{Key: string(pd.key), Due: pd.d.Due, Seq: pd.d.Seq, Ordered: pd.d.Ordered, Delivery: pd.d, Moved: moved, Hint: pd.hint})
			}
		}
		s.opts.OnQueued(queued)
	}
	finish(nil)
}

// accept decides, after the duplicate lookups, which events of the batch
// are logged: not a repeat of another in the batch (only ids and keys
// matter) and within max_pending. It fills each request's results.
func (s *Store) accept(batch []*ingestReq) (accepted []*preparedEvent, payloads [][]byte) {
	seen := unapplied{ids: map[string]struct{}{}, keys: map[string]string{}}
	start := s.Pending()
	pending := start
	var quotaAdded map[string]int64 // pending deliveries this batch adds, by endpoint, for quotas
	for _, r := range batch {
		for i := range r.prep {
			p := &r.prep[i]
			if r.results[i].Duplicate {
				continue
			}
			if id, ok := seen.duplicate(p); ok {
				r.results[i] = IngestResult{ID: id, Duplicate: true}
				continue
			}
			// Refused once the limit is reached, not when this event's
			// deliveries would pass it: an event fanning out to more than
			// max_pending was refused for ever with "retry later", and
			// /readyz (pending under the limit) said it would be stored.
			n := p.pendingCount()
			if r.lim.MaxPending > 0 && n > 0 && pending >= r.lim.MaxPending {
				r.results[i] = IngestResult{ID: p.ne.Event.ID, Err: ErrTooManyPending}
				continue
			}
			// A tenant has no more pending than all endpoints together: only
			// once those reach its quota are its own counted (in maps of
			// every endpoint with deliveries pending, a cache miss or two
			// each with 100,000 tenants). The total is read afresh, as the
			// tenant's counts would be: a commit may have added some since
			// the batch began (a redeliver, say).
			if q := p.ne.Quota; q != nil && n > 0 && s.Pending()+pending-start >= q.Max {
				if quotaAdded == nil {
					quotaAdded = pendingAdded(accepted)
				}
				if s.overQuota(q, quotaAdded) {
					r.results[i] = IngestResult{ID: p.ne.Event.ID, Err: ErrTenantTooManyPending}
					continue
				}
			}
			pending += n
			if quotaAdded != nil {
				addPending(quotaAdded, p)
			}
			seen.mark(p)
			// Parked deliveries (disabled endpoints) count as created.
			r.results[i] = IngestResult{ID: p.ne.Event.ID, Deliveries: len(p.deliveries)}
			accepted = append(accepted, p)
			payloads = append(payloads, p.wal)
		}
	}
	return accepted, payloads
}

// pendingAdded counts the pending deliveries of events by endpoint.
func pendingAdded(events []*preparedEvent) map[string]int64 {
	out := map[string]int64{}
	for _, p := range events {
		addPending(out, p)
	}
	return out
}

// addPending adds p's pending deliveries to counts, by endpoint.
func addPending(counts map[string]int64, p *preparedEvent) {
	for _, pd := range p.deliveries {
		if pd.d.State == Pending {
			counts[pd.d.Endpoint]++
		}
	}
}

// overQuota says whether q's endpoints already have q.Max deliveries
// pending: committed, acknowledged and not applied, and accepted earlier
// in this batch (added). A soft limit, as before the event: an event
// accepted just under it adds all its deliveries, so a tenant with more
// endpoints than Max can still send one.
func (s *Store) overQuota(q *Quota, added map[string]int64) bool {
	n := s.PendingOf(q.Endpoints)
	for _, id := range q.Endpoints {
		n += added[id]
	}
	return n >= q.Max
}

// probeLog answers readiness after a failed log write: is there room for a
// batch of events, and can the log be written (a new segment after a
// failure, and a sync)?
func (s *Store) probeLog() {
	err := probeSpace(s.wal.dir, walProbeBytes)
	if err == nil {
		_, err = s.wal.write(nil, s.opts.BeforeCommit, s.appliedSeg.Load())
	}
	s.walFailing.Store(err != nil)
}

func (s *Store) lookupDuplicates(batch []*ingestReq) error {
	return s.db.View(func(tx *bolt.Tx) error {
		for _, r := range batch {
			for i := range r.prep {
				if r.results[i].Duplicate {
					continue
				}
				if id, ok := duplicateIn(tx, &r.prep[i]); ok {
					r.results[i] = IngestResult{ID: id, Duplicate: true}
				}
			}
		}
		return nil
	})
}

// submitApply hands logged events to the committer. If their transaction
// fails, the request is kept and retried (see run) and ingest is refused
// meanwhile; the events stay in the log either way.
func (s *Store) submitApply(evs []*preparedEvent, pos walPos) {
	r := &request{events: len(evs), fn: func(tx *bolt.Tx, st *txState) error {
		for _, p := range evs {
			if err := applyEvent(tx, st, p, false); err != nil {
				return err
			}
		}
		return tx.Bucket(bktMeta).Put(keyWALApplied, pos.bytes())
	}}
	r.committed = func() { // under umu, with the committed counts
		for _, p := range evs {
			s.u.remove(p)
		}
	}
	r.done = func(err error) { // on the committer goroutine
		if err != nil {
			s.stuck = append(s.stuck, r)
			s.applyFailing.Store(true)
			return
		}
		s.appliedSeg.Store(pos.seg)
		if len(s.stuck) == 0 && s.applyFailing.Load() {
			// The database took them, perhaps into pages it had freed
			// itself, which says nothing of room for the log on a disk
			// still full: readiness probes the log before it says ready
			// again, rather than flap to ready until the next event fails.
			// Marked first, so no reader sees neither flag set.
			s.walFailing.Store(true)
			s.applyFailing.Store(false)
		}
	}
	// ErrClosed only while closing, and then the log replays these events
	// at the next Open.
	s.toCommitter(r)
}

// replay applies what the log holds beyond the position the database
// recorded. It runs in Open, before the committer starts.
func (s *Store) replay() error {
	var applied walPos
	if err := s.db.View(func(tx *bolt.Tx) error {
		applied = parseWALPos(tx.Bucket(bktMeta).Get(keyWALApplied))
		return nil
	}); err != nil {
		return err
	}
	var evs []*preparedEvent
	var end walPos
	flush := func() error {
		if len(evs) == 0 {
			return nil
		}
		batch, pos := evs, end
		evs = nil
		s.replayed += len(batch)
		_, err := s.commit([]*request{{fn: func(tx *bolt.Tx, st *txState) error {
			for _, p := range batch {
				if err := applyEvent(tx, st, p, true); err != nil {
					return err
				}
			}
			return tx.Bucket(bktMeta).Put(keyWALApplied, pos.bytes())
		}}})
		return err
	}
	last, dmg, err := replayWAL(s.wal.dir, s.wal.id, applied, func(payload []byte, pos walPos) error {
		p, err := decodeWALRecord(payload)
		if err != nil {
			return err
		}
		evs, end = append(evs, &p), pos
		if len(evs) >= chunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("replay write-ahead log: %w", err)
	}
	// Everything up to segment last is in bbolt now: the first write
	// recycles or deletes those segments.
	s.wal.pos = walPos{seg: last}
	s.appliedSeg.Store(last + 1)
	s.unreadable, s.walGaps = dmg.unknown, dmg.gaps
	return nil
}

// Replayed is how many logged events Open found missing from the database
// (after a crash) and applied.
func (s *Store) Replayed() int { return s.replayed }

// UnreadableSegments are the write-ahead log segments Open could have
// replayed but whose start is neither a segment header nor empty: a first
// write torn by a crash (never acknowledged), or a file written over by
// something else (whatever it held is lost). Nothing was replayed from them.
func (s *Store) UnreadableSegments() []string { return s.unreadable }

// DamagedLog is what Open skipped of the write-ahead log as damaged, with
// intact records after it, which it replayed.
func (s *Store) DamagedLog() []WALGap { return s.walGaps }

// Writable reports whether ingest can store events now: nil, or an error
// wrapping ErrStorage when the write-ahead log or the database cannot be
// written. After a log failure it probes the log again (one sync) rather
// than wait for the next event, so readiness recovers by itself.
func (s *Store) Writable(ctx context.Context) error {
	if s.applyFailing.Load() {
		return fmt.Errorf("%w: the database cannot be written", ErrStorage)
	}
	if !s.walFailing.Load() {
		return nil
	}
	if _, err := s.Ingest(ctx, nil, Limits{}); err != nil {
		return err
	}
	if s.walFailing.Load() {
		return fmt.Errorf("%w: the write-ahead log cannot be written", ErrStorage)
	}
	return nil
}
