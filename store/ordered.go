package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ordered delivery (ordering = "fifo").
//
// Every event gets a sequence number from the log writer, in log order,
// which is acknowledgement order: a batch is acknowledged only after the
// batch before it. Its deliveries carry it (Delivery.Seq); a redelivery
// takes a new, higher number from the same counter, so it joins the tail.
// The last number committed is kept in the meta bucket, and logged events
// carry theirs, so after a restart the counter goes on above both.
//
// A pending delivery of an ordered endpoint is not on the due queue but in
// the ordered bucket, under endpoint\0seq: the bucket's first key with an
// endpoint's prefix is that endpoint's head. The due queue is ordered by
// due time, which is not acknowledgement order (a retried head is due
// after the deliveries behind it), and a blocked endpoint's backlog there
// would be walked by every scan of the queue. A head's retry time is kept
// in its record only: the scheduler asks for heads (OrderedHead) and
// holds one per endpoint.
//
// Whether a delivery is ordered is decided when it is queued (created or
// redelivered), from Options.Ordered, and kept in its record and in the
// write-ahead log; changing an endpoint's ordering affects the
// deliveries queued from then on.

// orderKey is endpoint\0seq, seq big-endian: an endpoint's deliveries
// sort together and in acknowledgement order.
func orderKey(endpoint string, seq uint64) []byte {
	b := make([]byte, 0, len(endpoint)+9)
	b = append(append(b, endpoint...), 0)
	return append(b, putU64(seq)...)
}

func orderPrefix(endpoint string) []byte { return append([]byte(endpoint), 0) }

func putOrdered(tx *bolt.Tx, d *Delivery) error {
	if err := tx.Bucket(bktOrdered).Put(orderKey(d.Endpoint, d.Seq), []byte(d.EventID)); err != nil {
		return fmt.Errorf("put ordered: %w", err)
	}
	return nil
}

// unqueue takes a pending delivery off the due queue or its ordered index.
func unqueue(tx *bolt.Tx, d *Delivery) error {
	if d.Ordered {
		return tx.Bucket(bktOrdered).Delete(orderKey(d.Endpoint, d.Seq))
	}
	return tx.Bucket(bktQueue).Delete(timeKey(d.Due, d.Key()))
}

// orderedKeys lists the delivery keys in endpoint's ordered index, in order.
func orderedKeys(tx *bolt.Tx, endpoint string) []string {
	var out []string
	prefix := orderPrefix(endpoint)
	c := tx.Bucket(bktOrdered).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		out = append(out, DeliveryKey(string(v), endpoint))
	}
	return out
}

// nextSeq hands out a sequence number for a delivery queued in tx.
func (s *Store) nextSeq(st *txState) uint64 {
	n := s.seq.Add(1)
	st.seq = max(st.seq, n)
	return n
}

func (s *Store) ordered(endpoint string) bool {
	return s.opts.Ordered != nil && s.opts.Ordered(endpoint)
}

// Head is an ordered endpoint's first pending delivery.
type Head struct {
	QueueEntry
	// FailingSince is when the first attempt of its current retry cycle
	// failed; zero while it has not been attempted.
	FailingSince time.Time
}

// OrderedHead returns endpoint's pending ordered delivery with the lowest
// sequence number, among the logged events not yet applied as well as the
// database; ok is false when there is none. Unapplied events are read
// first: one applied meanwhile is then found in the database.
func (s *Store) OrderedHead(endpoint string) (h Head, ok bool, err error) {
	s.umu.Lock()
	if l := s.u.ordered[endpoint]; len(l) > 0 {
		d := l[0]
		h, ok = Head{QueueEntry: QueueEntry{Key: d.Key(), Due: d.Due, Seq: d.Seq, Ordered: true}}, true
	}
	s.umu.Unlock()
	err = s.db.View(func(tx *bolt.Tx) error {
		prefix := orderPrefix(endpoint)
		k, v := tx.Bucket(bktOrdered).Cursor().Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) || (ok && h.Seq <= getU64(k[len(prefix):])) {
			return nil
		}
		key := DeliveryKey(string(v), endpoint)
		rec := tx.Bucket(bktDeliveries).Get([]byte(key))
		if rec == nil {
			return fmt.Errorf("ordered index of %s names %s, which has no record: %w", endpoint, v, errCorrupt)
		}
		d, err := decodeDeliveryFrom(decoder{b: rec, view: true})
		if err != nil {
			return err
		}
		h, ok = Head{QueueEntry: QueueEntry{Key: key, Due: d.Due, Seq: d.Seq, Ordered: true}}, true
		if d.Attempts > d.Cycle {
			if a := tx.Bucket(bktAttempts).Get(attemptKey(key, d.Cycle+1)); a != nil {
				at, err := decodeAttempt(a)
				if err != nil {
					return err
				}
				h.FailingSince = at.At
			}
		}
		return nil
	})
	return h, ok, err
}

// OrderedEndpoints lists the endpoints with pending ordered deliveries,
// for the scheduler to look up their heads after a start. It reads one
// key per endpoint, not the backlog.
func (s *Store) OrderedEndpoints() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(ep string) {
		if !seen[ep] {
			seen[ep] = true
			out = append(out, ep)
		}
	}
	s.umu.Lock()
	for ep := range s.u.ordered {
		add(ep)
	}
	s.umu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktOrdered).Cursor()
		for k, _ := c.First(); k != nil; {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return fmt.Errorf("ordered index key %q: %w", k, errCorrupt)
			}
			add(string(k[:i]))
			k, _ = c.Seek(append(append([]byte(nil), k[:i]...), 1)) // past this endpoint's keys
		}
		return nil
	})
	return out, err
}
