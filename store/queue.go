package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ScanDue walks the due queue in time order and calls fn for each entry due
// at or before until, skipping entries for which skip returns true, and
// stops after limit entries were passed to fn. It reads a snapshot and takes
// no write lock.
func (s *Store) ScanDue(until time.Time, limit int, skip func(key []byte) bool, fn func(QueueEntry)) error {
	end := timeKey(until, "\xff")
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktQueue).Cursor()
		n := 0
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) <= 0 && n < limit; k, _ = c.Next() {
			// skip sees the key's bytes (valid only during the call): the
			// scheduler skips every delivery it tracks, up to 100,000 a scan,
			// and a string for each was most of the scan's garbage.
			if len(k) < 8 || (skip != nil && skip(k[8:])) {
				continue
			}
			due, key := splitTimeKey(k)
			fn(QueueEntry{Key: key, Due: due})
			n++
		}
		return nil
	})
}

// Delivery reads one delivery record. A delivery of an event not yet
// applied from the log is served from memory (shared: do not modify it).
func (s *Store) Delivery(key string) (*Delivery, error) {
	s.umu.Lock()
	d := s.u.deliveries[key]
	s.umu.Unlock()
	if d != nil {
		return d, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktDeliveries).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		var err error
		d, err = decodeDelivery(v)
		return err
	})
	return d, err
}

// Outcome is the result of one attempt, decided by the retry policy.
// Exactly one of Delivered, Next (retry at) or Reason (park) applies.
// Attempt is nil when the delivery is parked without an attempt (its
// endpoint was removed or disabled before it came due).
type Outcome struct {
	Key       string
	Due       time.Time // due time of the queue entry that was attempted
	Attempt   *Attempt  // N is assigned by the store
	Delivered bool
	Next      time.Time
	Reason    string
	// Seq is the sequence number of the ordered delivery that was
	// attempted: a redelivery meanwhile gives it another, which makes the
	// outcome stale like a changed due time.
	Seq uint64
	// Ordered: its endpoint sends nothing more until this is committed, so
	// the commit is not held back for the usual interval.
	Ordered bool
	// Disabled: the attempt's answer (a 410) disables its endpoint. If a
	// disable for such an answer (this one's, or another attempt's) parked
	// this delivery with Reason before this commit, that parking is this
	// outcome's, not a change that overtook it.
	Disabled bool
	// Superseded is set by the commit when the delivery had moved on while
	// the attempt was in flight (redelivered, parked, rescheduled or
	// purged) and kept its state: the attempt is recorded, but it neither
	// delivered nor parked nor rescheduled anything, and logs, metrics and
	// notifications must not say it did.
	Superseded bool
}

// Complete records an attempt and moves the delivery on, asynchronously;
// done runs after the commit. If the delivery changed while the attempt was
// in flight (redelivered, parked), the attempt is still recorded but only a
// success changes its state, and only a parked one's: a redelivered one is
// sent again, as asked. The commit sets o.Superseded before done runs; o is
// the caller's to read again only then.
func (s *Store) Complete(o *Outcome, done func(error)) {
	s.submitAsync(func(tx *bolt.Tx, st *txState) error { return complete(tx, st, o) }, done)
	if o.Ordered {
		select {
		case s.hurry <- struct{}{}:
		default:
		}
	}
}

// Flush waits until every write submitted before it is committed and its
// done callback has run: after Flush, Complete's callbacks for the outcomes
// already reported have been called.
func (s *Store) Flush() { s.submit(context.Background(), nil) }

func complete(tx *bolt.Tx, st *txState, o *Outcome) error {
	o.Superseded = false // a retried transaction runs again from the start
	v := tx.Bucket(bktDeliveries).Get([]byte(o.Key))
	if v == nil {
		o.Superseded = true // purged meanwhile
		return nil
	}
	// The body stays a view of bbolt's page: the record is rewritten in
	// this transaction, which copies it.
	d, err := decodeDeliveryFrom(decoder{b: v, view: true})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if o.Attempt != nil {
		d.Attempts++
		o.Attempt.N = d.Attempts
		// Delivered or parked when its answer came, not when it began: a
		// slow answer parked at its start counted its retention early and
		// sorted behind lists already walked past it (black-box testing).
		now = o.Attempt.At.Add(o.Attempt.Latency)
		ab := tx.Bucket(bktAttempts)
		ab.FillPercent = appendFill
		if err := ab.Put(attemptKey(o.Key, d.Attempts), encodeAttempt(o.Attempt)); err != nil {
			return fmt.Errorf("put attempt: %w", err)
		}
	}
	current := d.State == Pending && d.Due.Equal(o.Due) && (!d.Ordered || d.Seq == o.Seq)
	redelivered := !current && d.State == Pending // nothing else moves a pending delivery but its own outcomes
	if redelivered && o.Attempt != nil {
		d.Cycle++ // the attempt is the old cycle's, not the resend's first
	}
	switch {
	case o.Delivered && redelivered:
		// The resend was asked for after this send began: it stays
		// pending for it, as after a failure.
		o.Superseded = true
	case o.Delivered:
		if err := leave(tx, st, d); err != nil {
			return err
		}
		d.State, d.Done, d.Reason = Delivered, now, ""
	case o.Disabled && d.State == Undeliverable && d.Reason == o.Reason:
		// Parked as this outcome says, by the disable its answer made.
	case !current:
		// stale: keep the state the delivery has now
		o.Superseded = true
	case !o.Next.IsZero() && d.Ordered:
		// Still its endpoint's head: the ordered index keeps its place, and
		// the scheduler reads the new due time from the record.
		d.Due = o.Next
	case !o.Next.IsZero():
		if err := tx.Bucket(bktQueue).Delete(timeKey(d.Due, o.Key)); err != nil {
			return err
		}
		d.Due = o.Next
		if err := tx.Bucket(bktQueue).Put(timeKey(d.Due, o.Key), nil); err != nil {
			return err
		}
		st.queued = append(st.queued, QueueEntry{Key: o.Key, Due: d.Due})
	default:
		return parkRecord(tx, st, d, o.Reason, now)
	}
	return putDelivery(tx, d)
}

// leave takes d out of the queue (or ordered index) or the undeliverable
// bucket, whichever it is in, keeping the pending count right.
func leave(tx *bolt.Tx, st *txState, d *Delivery) error {
	switch d.State {
	case Pending:
		st.pend(d.Endpoint, -1)
		return unqueue(tx, d)
	case Undeliverable:
		st.park(d.Endpoint, -1)
		return tx.Bucket(bktUndeliverable).Delete(timeKey(d.Parked, d.Key()))
	}
	return nil
}

// parkRecord moves a pending delivery to the undeliverable bucket.
func parkRecord(tx *bolt.Tx, st *txState, d *Delivery, reason string, at time.Time) error {
	if err := leave(tx, st, d); err != nil {
		return err
	}
	d.State, d.Reason, d.Parked = Undeliverable, reason, at
	if err := tx.Bucket(bktUndeliverable).Put(timeKey(at, d.Key()), nil); err != nil {
		return err
	}
	st.park(d.Endpoint, 1)
	return putDelivery(tx, d)
}

func getDelivery(tx *bolt.Tx, key string) (*Delivery, error) {
	v := tx.Bucket(bktDeliveries).Get([]byte(key))
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeDelivery(v)
}

func putDelivery(tx *bolt.Tx, d *Delivery) error {
	if err := tx.Bucket(bktDeliveries).Put([]byte(d.Key()), encodeDelivery(d)); err != nil {
		return fmt.Errorf("put delivery: %w", err)
	}
	return nil
}

// chunk bounds how many records one write transaction of a bulk operation
// touches, so bulk moves never hold the writer for long.
const chunk = 1000

// ParkEndpoint moves every pending delivery of endpoint to undeliverable
// with reason (endpoint removed, endpoint disabled). It scans the queue in a
// read transaction and writes in small chunks. Deliveries in flight are
// parked too; their attempt is still recorded when it finishes, and a 2xx
// still marks them delivered.
func (s *Store) ParkEndpoint(ctx context.Context, endpoint, reason string) (int, error) {
	return s.ParkEndpoints(ctx, []string{endpoint}, reason)
}

// ParkEndpoints is ParkEndpoint for several endpoints, in one scan of the
// queue.
func (s *Store) ParkEndpoints(ctx context.Context, endpoints []string, reason string) (int, error) {
	reasons := make(map[string]string, len(endpoints))
	for _, e := range endpoints {
		reasons[e] = reason
	}
	return s.ParkEndpointsFor(ctx, reasons)
}

// ParkEndpointsFor is ParkEndpoints with a reason for each endpoint (by
// id), still in one scan of the queue.
func (s *Store) ParkEndpointsFor(ctx context.Context, reasons map[string]string) (int, error) {
	s.barrier()
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktQueue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if _, key := splitTimeKey(k); reasons[endpointOf(key)] != "" {
				keys = append(keys, key)
			}
		}
		for endpoint := range reasons {
			keys = append(keys, orderedKeys(tx, endpoint)...)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	now := time.Now()
	return s.eachChunk(ctx, keys, func(tx *bolt.Tx, st *txState, d *Delivery) (bool, error) {
		if d.State != Pending {
			return false, nil
		}
		return true, parkRecord(tx, st, d, reasons[d.Endpoint], now)
	})
}

// Moved counts the write transactions that moved deliveries other than by
// their own outcomes: redelivers, and parkings of whole endpoints. A copy
// of a delivery's record taken when it returned less (QueueEntry.Delivery)
// may be out of date: a parked delivery sent from it after its endpoint
// was enabled again, or a pending one sent twice after a redeliver, once
// for the old due time and once for the new (black-box testing).
func (s *Store) Moved() uint64 { return s.moved.Load() }

// eachChunk applies fn to the records of keys, chunk by chunk, and counts
// how many fn reported as changed.
func (s *Store) eachChunk(ctx context.Context, keys []string, fn func(*bolt.Tx, *txState, *Delivery) (bool, error)) (int, error) {
	total := 0
	for len(keys) > 0 {
		part := keys[:min(chunk, len(keys))]
		keys = keys[len(part):]
		n := 0
		err := s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
			s.moved.Add(1)
			n = 0
			for _, key := range part {
				d, err := getDelivery(tx, key)
				if err == ErrNotFound {
					continue
				} else if err != nil {
					return err
				}
				changed, err := fn(tx, st, d)
				if err != nil {
					return err
				}
				if changed {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func endpointOf(key string) string {
	_, ep := SplitKey(key)
	return ep
}

// requeue makes d pending again, due at now, starting a new retry cycle.
// A delivery already pending is simply moved to the front, or, for an
// ordered endpoint, to the tail: seq is its new place.
func (s *Store) requeue(tx *bolt.Tx, st *txState, d *Delivery, now time.Time) error {
	if d.State == Pending {
		if err := unqueue(tx, d); err != nil {
			return err
		}
	} else {
		if err := leave(tx, st, d); err != nil {
			return err
		}
		st.pend(d.Endpoint, 1)
	}
	d.State, d.Due, d.Cycle, d.Reason, d.Parked, d.Done = Pending, now, d.Attempts, "", time.Time{}, time.Time{}
	d.Seq, d.Ordered = s.nextSeq(st), s.ordered(d.Endpoint)
	return putPending(tx, st, d)
}

// Redeliver resends an event now, delivered or not: every delivery it has
// to an endpoint keep accepts (nil: every one). When create is given and
// the event has none for create.Endpoint yet (the endpoint was added
// later), one is created with that body. It returns the endpoints queued.
func (s *Store) Redeliver(ctx context.Context, eventID string, keep func(endpoint string) bool, create *NewDelivery) ([]string, error) {
	var queued []string
	err := s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
		s.moved.Add(1)
		queued = queued[:0]
		evb := tx.Bucket(bktEvents).Get([]byte(eventID))
		if evb == nil {
			return nil
		}
		now := time.Now().UTC()
		prefix := []byte(eventID + "\x00")
		var ds []*Delivery
		c := tx.Bucket(bktDeliveries).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			d, err := decodeDelivery(v)
			if err != nil {
				return err
			}
			if keep == nil || keep(d.Endpoint) {
				ds = append(ds, d)
			}
		}
		for _, d := range ds {
			if err := s.requeue(tx, st, d, now); err != nil {
				return err
			}
			queued = append(queued, d.Endpoint)
		}
		if len(ds) == 0 && create != nil {
			ev, err := decodeEvent(evb)
			if err != nil {
				return err
			}
			d := &Delivery{EventID: eventID, Endpoint: create.Endpoint, EventType: ev.Type, Created: ev.Created,
				Body: create.Body, State: Pending, Due: now, Seq: s.nextSeq(st), Ordered: s.ordered(create.Endpoint)}
			if err := putPending(tx, st, d); err != nil {
				return err
			}
			if err := indexDelivery(tx, st, ev.Created, eventID, d.Endpoint, ev.Tenant); err != nil {
				return err
			}
			st.pend(d.Endpoint, 1)
			queued = append(queued, d.Endpoint)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if queued == nil {
		if _, err := s.Event(eventID); err != nil {
			return nil, err
		}
	}
	return queued, nil
}

// RedeliverUndeliverable requeues parked deliveries, optionally only the
// endpoints' that keep accepts (nil: every one's) and only those parked
// within [since, until] (zero = open), in one walk of the bucket.
func (s *Store) RedeliverUndeliverable(ctx context.Context, keep func(endpoint string) bool, since, until time.Time) (int, error) {
	var keys []string
	seqs := map[string]uint64{}
	s.barrier() // what an event acknowledged before parked (a disabled endpoint's) is resent too
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktUndeliverable).Cursor()
		deliveries := tx.Bucket(bktDeliveries)
		for k, _ := c.Seek(timeKey(since, "")); k != nil; k, _ = c.Next() {
			at, key := splitTimeKey(k)
			if !until.IsZero() && at.After(until) {
				break
			}
			if keep == nil || keep(endpointOf(key)) {
				keys = append(keys, key)
				seqs[key] = recordSeq(deliveries.Get([]byte(key)))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Deliveries parked together (an endpoint disabled at once) share a
	// parked time; requeue them in the order they were first queued, so an
	// ordered endpoint gets them back in acknowledgement order.
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(seqs[a], seqs[b]) })
	now := time.Now().UTC()
	return s.eachChunk(ctx, keys, func(tx *bolt.Tx, st *txState, d *Delivery) (bool, error) {
		if d.State != Undeliverable {
			return false, nil
		}
		return true, s.requeue(tx, st, d, now)
	})
}
