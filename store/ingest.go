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
	DedupKey   string // Idempotency-Key, or the event id when empty
	Deliveries []NewDelivery
}

// NewDelivery is one endpoint's rendered request body for a new event.
type NewDelivery struct {
	Endpoint string
	Body     []byte
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
	MaxPending  int64 // 0 means unlimited
}

// Ingest stores events and their deliveries in one group-committed
// transaction and returns only after the fsync. An event whose id or dedup
// key was seen within the dedup window is reported as a duplicate and
// changes nothing.
func (s *Store) Ingest(ctx context.Context, events []NewEvent, lim Limits) ([]IngestResult, error) {
	// Encode on the caller's goroutine: the committer is the one serial
	// stage, so it only copies prepared bytes into bbolt.
	prep := make([]preparedEvent, len(events))
	for i := range events {
		prep[i] = prepare(&events[i])
	}
	results := make([]IngestResult, len(events))
	err := s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
		for i := range events {
			r, err := ingestOne(tx, st, &events[i], &prep[i], lim)
			if err != nil {
				return err
			}
			results[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

type preparedEvent struct {
	record, timeKey []byte
	deliveries      []preparedDelivery
}

type preparedDelivery struct {
	entry     QueueEntry
	endpoint  string
	key, qkey []byte
	record    []byte
}

func prepare(ne *NewEvent) preparedEvent {
	ev := &ne.Event
	p := preparedEvent{record: encodeEvent(ev), timeKey: timeKey(ev.Created, ev.ID), deliveries: make([]preparedDelivery, len(ne.Deliveries))}
	for i, nd := range ne.Deliveries {
		d := &Delivery{EventID: ev.ID, Endpoint: nd.Endpoint, EventType: ev.Type, Created: ev.Created, Body: nd.Body, State: Pending, Due: ev.Created}
		key := d.Key()
		p.deliveries[i] = preparedDelivery{entry: QueueEntry{Key: key, Due: d.Due}, endpoint: nd.Endpoint,
			key: []byte(key), qkey: timeKey(d.Due, key), record: encodeDelivery(d)}
	}
	return p
}

func ingestOne(tx *bolt.Tx, st *txState, ne *NewEvent, p *preparedEvent, lim Limits) (IngestResult, error) {
	ev := &ne.Event
	key := ne.DedupKey
	dedup := tx.Bucket(bktDedup)
	if v := dedup.Get([]byte(key)); key != "" && len(v) >= 8 {
		if exp := int64(binary.BigEndian.Uint64(v)); exp > ev.Created.UnixNano() {
			return IngestResult{ID: string(v[8:]), Duplicate: true}, nil
		}
		// Expired but not yet purged: drop its expiry index entry.
		if err := tx.Bucket(bktDedupExpiry).Delete(append(append([]byte(nil), v[:8]...), key...)); err != nil {
			return IngestResult{}, err
		}
	}
	events := tx.Bucket(bktEvents)
	// An id still stored cannot be reused: it names the stored event and
	// its deliveries.
	if events.Get([]byte(ev.ID)) != nil {
		return IngestResult{ID: ev.ID, Duplicate: true}, nil
	}
	if lim.MaxPending > 0 && st.pending()+int64(len(ne.Deliveries)) > lim.MaxPending {
		return IngestResult{ID: ev.ID, Err: ErrTooManyPending}, nil
	}

	events.FillPercent = appendFill
	if err := events.Put([]byte(ev.ID), p.record); err != nil {
		return IngestResult{}, fmt.Errorf("put event: %w", err)
	}
	etime := tx.Bucket(bktEventTime)
	etime.FillPercent = appendFill
	if err := etime.Put(p.timeKey, nil); err != nil {
		return IngestResult{}, err
	}
	if key != "" && lim.DedupWindow > 0 {
		exp := ev.Created.Add(lim.DedupWindow)
		v := append(putU64(uint64(exp.UnixNano())), ev.ID...)
		if err := dedup.Put([]byte(key), v); err != nil {
			return IngestResult{}, err
		}
		if err := tx.Bucket(bktDedupExpiry).Put(timeKey(exp, key), nil); err != nil {
			return IngestResult{}, err
		}
	}
	deliveries, queue := tx.Bucket(bktDeliveries), tx.Bucket(bktQueue)
	deliveries.FillPercent = appendFill
	for i := range p.deliveries {
		pd := &p.deliveries[i]
		if err := deliveries.Put(pd.key, pd.record); err != nil {
			return IngestResult{}, fmt.Errorf("put delivery: %w", err)
		}
		if err := queue.Put(pd.qkey, nil); err != nil {
			return IngestResult{}, fmt.Errorf("put queue: %w", err)
		}
		st.queued = append(st.queued, pd.entry)
		st.pend(pd.endpoint, 1)
	}
	return IngestResult{ID: ev.ID, Deliveries: len(ne.Deliveries)}, nil
}

// appendFill is the page fill factor for buckets whose keys mostly arrive
// in order (generated ids are ULIDs, time prefixes grow): bbolt's default
// of one half would leave every page half empty.
const appendFill = 0.9

// enqueue writes d as pending and puts it on the due queue at d.Due.
func enqueue(tx *bolt.Tx, st *txState, d *Delivery) error {
	key := d.Key()
	b := tx.Bucket(bktDeliveries)
	b.FillPercent = appendFill
	if err := b.Put([]byte(key), encodeDelivery(d)); err != nil {
		return fmt.Errorf("put delivery: %w", err)
	}
	if err := tx.Bucket(bktQueue).Put(timeKey(d.Due, key), nil); err != nil {
		return fmt.Errorf("put queue: %w", err)
	}
	st.queued = append(st.queued, QueueEntry{Key: key, Due: d.Due})
	return nil
}
