package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// NewEvent is an event to store with the deliveries it fans out to.
type NewEvent struct {
	Event      Event
	DedupKey   string // Idempotency-Key, or empty
	Deliveries []NewDelivery
	// FreshID says the id was generated for this event (a ULID), so it
	// cannot repeat a stored one and is not looked up.
	FreshID bool
	// Quota, when set, refuses the event (ErrTenantTooManyPending) while
	// these endpoints (its tenant's own) have Max deliveries pending. It is
	// checked where max_pending is, counting the events accepted before
	// it, in its batch or another request.
	Quota *Quota
}

// Quota bounds the pending deliveries of a set of endpoints.
type Quota struct {
	Endpoints []string // internal ids
	Max       int64
}

// NewDelivery is one endpoint's rendered request body for a new event.
// Parked, when set, records it directly as undeliverable with that reason
// (its endpoint is disabled): it is kept for a later redeliver, not sent.
type NewDelivery struct {
	Endpoint string
	Body     []byte
	Parked   string
	// Hint is the caller's, handed back with the delivery in its
	// QueueEntry (Options.OnQueued) and never stored: the scheduler gets
	// the endpoint ingest routed it to without looking it up again.
	Hint any
	// Ordered puts a pending delivery in its endpoint's ordered index
	// instead of the due queue. Ingest sets it from Options.Ordered; the
	// log records it, so a replay queues the delivery where it was first.
	Ordered bool
}

// IngestResult is the outcome for one NewEvent. Err is ErrTooManyPending
// when the event was refused; a storage failure fails the whole call.
type IngestResult struct {
	ID         string
	Duplicate  bool
	Deliveries int
	Err        error
}

// Limits bound what Ingest accepts.
type Limits struct {
	// DedupWindow is how long an Idempotency-Key is remembered. An event id
	// is a duplicate for as long as its event is stored, which needs no
	// extra key (and retention is at least the window: the config checks).
	DedupWindow time.Duration
	MaxPending  int64 // refuse events once this many deliveries are pending; 0 means unlimited
}

// Ingest stores events and their deliveries and returns once they are
// fsynced in the write-ahead log; the committer applies them to bbolt
// shortly after (see doc.go). An event whose id or dedup key was seen
// within the dedup window is reported as a duplicate and changes nothing.
// The store holds on to events until they are applied: the caller must
// not reuse or change them afterwards.
func (s *Store) Ingest(ctx context.Context, events []NewEvent, lim Limits) ([]IngestResult, error) {
	// Encode on the caller's goroutine: the log writer is a serial stage, so it
	// only checks duplicates and writes prepared bytes.
	r := &ingestReq{events: events, prep: make([]preparedEvent, len(events)), lim: lim,
		results: make([]IngestResult, len(events)), done: make(chan error, 1)}
	for i := range events {
		for j := range events[i].Deliveries {
			nd := &events[i].Deliveries[j]
			nd.Ordered = nd.Parked == "" && s.ordered(nd.Endpoint)
		}
		r.prep[i] = prepare(&events[i], lim)
	}
	select {
	case <-s.walClosing:
		return nil, ErrClosed
	default:
	}
	select {
	case s.ingests <- r:
	case <-s.walClosing:
		return nil, ErrClosed
	}
	select {
	case err := <-r.done:
		if err != nil {
			return nil, err
		}
		return r.results, nil
	case <-s.walStopped:
		// Sent just as the log writer finished: it was never written.
		select {
		case err := <-r.done:
			if err != nil {
				return nil, err
			}
			return r.results, nil
		default:
			return nil, ErrClosed
		}
	case <-ctx.Done():
		// The events may still be logged; callers treat this like any other
		// unacknowledged write.
		return nil, ctx.Err()
	}
}

type ingestReq struct {
	events  []NewEvent
	prep    []preparedEvent
	lim     Limits
	results []IngestResult
	done    chan error
}

type preparedEvent struct {
	ne              *NewEvent
	record, timeKey []byte
	recordEnd       int   // where record ends in wal (setSeq stamps both)
	expiry          int64 // when the dedup key expires (unix ns); 0 = no key kept
	deliveries      []preparedDelivery
	wal             []byte // the write-ahead log record
}

type preparedDelivery struct {
	d         *Delivery
	key, qkey []byte
	record    []byte
	hint      any
}

func prepare(ne *NewEvent, lim Limits) preparedEvent {
	ev := &ne.Event
	p := preparedEvent{ne: ne, record: encodeEvent(ev), timeKey: timeKey(ev.Created, ev.ID), deliveries: make([]preparedDelivery, len(ne.Deliveries))}
	if ne.DedupKey != "" && lim.DedupWindow > 0 {
		p.expiry = ev.Created.Add(lim.DedupWindow).UnixNano()
	}
	parked, ordered := false, false
	for i, nd := range ne.Deliveries {
		d := &Delivery{EventID: ev.ID, Endpoint: nd.Endpoint, EventType: ev.Type, Created: ev.Created, Body: nd.Body, State: Pending, Due: ev.Created,
			Seq: ev.Seq, Ordered: nd.Ordered && nd.Parked == ""}
		ordered = ordered || d.Ordered
		key := d.Key()
		qkey := timeKey(d.Due, key)
		if nd.Parked != "" {
			d.State, d.Reason, d.Parked = Undeliverable, nd.Parked, ev.Created
			qkey, parked = timeKey(d.Parked, key), true // its key in the undeliverable bucket
		}
		p.deliveries[i] = preparedDelivery{d: d, key: []byte(key), qkey: qkey, record: encodeDelivery(d), hint: nd.Hint}
	}
	size := len(p.record) + len(ne.DedupKey) + 32
	for _, nd := range ne.Deliveries {
		size += len(nd.Endpoint) + len(nd.Body) + 16
	}
	e := encoder{b: make([]byte, 0, size)}
	e.bytes(p.record)
	p.recordEnd = len(e.b)
	e.str(ne.DedupKey)
	e.i64(p.expiry)
	e.u64(uint64(len(ne.Deliveries)))
	for _, nd := range ne.Deliveries {
		e.str(nd.Endpoint)
		e.bytes(nd.Body)
	}
	if parked || ordered {
		// Optional trailing sections, so records written before they
		// existed (no trailing bytes: every delivery pending and unordered;
		// one: none ordered) still replay. The second needs the first.
		for _, nd := range ne.Deliveries {
			e.str(nd.Parked)
		}
	}
	if ordered {
		for _, pd := range p.deliveries {
			e.boolean(pd.d.Ordered)
		}
	}
	p.wal = e.b
	return p
}

// setSeq gives an accepted event its place in acknowledgement order. The
// records were encoded before it was known, with the sequence number last
// and fixed-size, so the log writer stamps it in place rather than
// encoding them again on its serial path.
func (p *preparedEvent) setSeq(seq uint64) {
	p.ne.Event.Seq = seq
	stampSeq(p.record, seq)
	stampSeq(p.wal[:p.recordEnd], seq)
	for i := range p.deliveries {
		pd := &p.deliveries[i]
		pd.d.Seq = seq
		stampSeq(pd.record, seq)
	}
}

// pendingCount is how many of p's deliveries are pending (not parked).
func (p *preparedEvent) pendingCount() int64 {
	n := int64(0)
	for _, pd := range p.deliveries {
		if pd.d.State == Pending {
			n++
		}
	}
	return n
}

// size is roughly the memory p's records hold.
func (p *preparedEvent) size() int64 {
	n := len(p.record) + len(p.wal)
	for _, pd := range p.deliveries {
		n += len(pd.record) + len(pd.d.Body)
	}
	return int64(n)
}

// decodeWALRecord is the inverse of the log record built by prepare.
func decodeWALRecord(b []byte) (preparedEvent, error) {
	d := decoder{b: b}
	rec := d.bytes()
	key := d.str()
	expiry := d.i64()
	n := d.u64()
	if d.err != nil || n > uint64(len(b)) {
		return preparedEvent{}, errCorrupt
	}
	ne := &NewEvent{DedupKey: key, Deliveries: make([]NewDelivery, n)}
	for i := range ne.Deliveries {
		ne.Deliveries[i] = NewDelivery{Endpoint: d.str(), Body: d.bytes()}
	}
	if len(d.b) > 0 {
		for i := range ne.Deliveries {
			ne.Deliveries[i].Parked = d.str()
		}
	}
	if len(d.b) > 0 {
		for i := range ne.Deliveries {
			ne.Deliveries[i].Ordered = d.boolean()
		}
	}
	if d.err != nil {
		return preparedEvent{}, d.err
	}
	ev, err := decodeEvent(rec)
	if err != nil {
		return preparedEvent{}, err
	}
	ne.Event = *ev
	p := prepare(ne, Limits{})
	p.expiry = expiry
	return p, nil
}

// duplicateIn reports whether p repeats an event the database holds: its
// dedup key within the window, or its id. It returns the original id.
func duplicateIn(tx *bolt.Tx, p *preparedEvent) (string, bool) {
	ev := &p.ne.Event
	if key := p.ne.DedupKey; key != "" {
		if v := tx.Bucket(bktDedup).Get([]byte(key)); len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) > ev.Created.UnixNano() {
			return string(v[8:]), true
		}
	}
	if !p.ne.FreshID && tx.Bucket(bktEvents).Get([]byte(ev.ID)) != nil {
		return ev.ID, true
	}
	return "", false
}

// applyEvent writes a logged event and its deliveries. On replay it is
// idempotent: a record the database already holds changes nothing. (The
// log writer already refused duplicates of what it logs.)
func applyEvent(tx *bolt.Tx, st *txState, p *preparedEvent, replay bool) error {
	ev := &p.ne.Event
	events := tx.Bucket(bktEvents)
	if replay && events.Get([]byte(ev.ID)) != nil {
		return nil
	}
	events.FillPercent = appendFill
	if err := events.Put([]byte(ev.ID), p.record); err != nil {
		return fmt.Errorf("put event: %w", err)
	}
	etime := tx.Bucket(bktEventTime)
	etime.FillPercent = appendFill
	if err := etime.Put(p.timeKey, nil); err != nil {
		return err
	}
	if key := p.ne.DedupKey; key != "" && p.expiry > 0 {
		dedup, byExpiry := tx.Bucket(bktDedup), tx.Bucket(bktDedupExpiry)
		if v := dedup.Get([]byte(key)); len(v) >= 8 {
			// An expired key not yet purged: drop its expiry index entry.
			if err := byExpiry.Delete(append(append([]byte(nil), v[:8]...), key...)); err != nil {
				return err
			}
		}
		v := append(putU64(uint64(p.expiry)), ev.ID...)
		if err := dedup.Put([]byte(key), v); err != nil {
			return err
		}
		if err := byExpiry.Put(timeKey(time.Unix(0, p.expiry), key), nil); err != nil {
			return err
		}
	}
	deliveries, queue, parked := tx.Bucket(bktDeliveries), tx.Bucket(bktQueue), tx.Bucket(bktUndeliverable)
	deliveries.FillPercent = appendFill
	st.seq = max(st.seq, ev.Seq)
	for i := range p.deliveries {
		pd := &p.deliveries[i]
		if err := deliveries.Put(pd.key, pd.record); err != nil {
			return fmt.Errorf("put delivery: %w", err)
		}
		if err := indexDelivery(tx, st, ev.Created, ev.ID, pd.d.Endpoint, ev.Tenant); err != nil {
			return fmt.Errorf("index delivery: %w", err)
		}
		if pd.d.State == Undeliverable {
			if err := parked.Put(pd.qkey, nil); err != nil {
				return fmt.Errorf("put undeliverable: %w", err)
			}
			st.park(pd.d.Endpoint, 1)
			continue
		}
		if pd.d.Ordered {
			if err := putOrdered(tx, pd.d); err != nil {
				return err
			}
		} else if err := queue.Put(pd.qkey, nil); err != nil {
			return fmt.Errorf("put queue: %w", err)
		}
		st.pend(pd.d.Endpoint, 1)
	}
	return nil
}

// appendFill is the page fill factor for buckets whose keys mostly arrive
// in order (generated ids are ULIDs, time prefixes grow): bbolt's default
// of one half would leave every page half empty.
const appendFill = 0.9

// putPending writes d as pending and puts it on the due queue at d.Due,
// or in its endpoint's ordered index.
func putPending(tx *bolt.Tx, st *txState, d *Delivery) error {
	key := d.Key()
	b := tx.Bucket(bktDeliveries)
	b.FillPercent = appendFill
	if err := b.Put([]byte(key), encodeDelivery(d)); err != nil {
		return fmt.Errorf("put delivery: %w", err)
	}
	if d.Ordered {
		if err := putOrdered(tx, d); err != nil {
			return err
		}
	} else if err := tx.Bucket(bktQueue).Put(timeKey(d.Due, key), nil); err != nil {
		return fmt.Errorf("put queue: %w", err)
	}
	st.queued = append(st.queued, QueueEntry{Key: key, Due: d.Due, Seq: d.Seq, Ordered: d.Ordered})
	return nil
}
