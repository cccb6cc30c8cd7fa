package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func onlyF(endpoint string) bool { return endpoint == "f" }

// headIDs pops the heads of endpoint f one by one (delivering each) and
// returns their event ids.
func headIDs(t *testing.T, s *Store) []string {
	t.Helper()
	var ids []string
	for {
		h, ok, err := s.OrderedHead("f")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ids
		}
		id, _ := SplitKey(h.Key)
		ids = append(ids, id)
		mustComplete(t, s, Outcome{Key: h.Key, Due: h.Due, Seq: h.Seq, Ordered: true, Attempt: &Attempt{At: time.Now(), Status: 200}, Delivered: true})
	}
}

func mustComplete(t *testing.T, s *Store, o Outcome) {
	t.Helper()
	done := make(chan error)
	s.Complete(&o, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// An ordered endpoint's deliveries leave the due queue for its ordered
// index, in acknowledgement order, before and after they are applied; a
// retried head keeps its place with a later due time; a redelivery joins
// the tail.
func TestOrderedIndex(t *testing.T) {
	s := mustOpen(t, Options{Ordered: onlyF})
	ctx := context.Background()
	for _, batch := range [][]NewEvent{{newEvent("a", "f", "u")}, {newEvent("b", "f", "u"), newEvent("c", "f")}} {
		if _, err := s.Ingest(ctx, batch, lim); err != nil {
			t.Fatal(err)
		}
	}
	h, ok, err := s.OrderedHead("f") // a is in the log, maybe not yet in bbolt
	if err != nil || !ok || h.Key != DeliveryKey("a", "f") || !h.Ordered {
		t.Fatalf("head before apply: %+v %v %v", h, ok, err)
	}
	s.Flush()
	var due []string
	s.ScanDue(time.Now().Add(time.Hour), 100, nil, func(e QueueEntry) { due = append(due, e.Key) })
	if want := []string{DeliveryKey("a", "u"), DeliveryKey("b", "u")}; !slices.Equal(due, want) {
		t.Fatalf("due queue %q, want only the unordered endpoint's %q", due, want)
	}
	if p := s.PendingByEndpoint(); p["f"] != 3 || p["u"] != 2 {
		t.Fatalf("pending %v", p)
	}
	var seqs []uint64
	for _, id := range []string{"a", "b", "c"} {
		d, err := s.Delivery(DeliveryKey(id, "f"))
		if err != nil || !d.Ordered {
			t.Fatalf("%s: %+v %v", id, d, err)
		}
		seqs = append(seqs, d.Seq)
	}
	if !slices.IsSorted(seqs) || seqs[0] == 0 || seqs[1] == seqs[2] {
		t.Fatalf("sequence numbers %v: want increasing in acknowledgement order", seqs)
	}

	first := time.Now().UTC()
	next := first.Add(time.Hour)
	h, _, _ = s.OrderedHead("f")
	mustComplete(t, s, Outcome{Key: h.Key, Due: h.Due, Seq: h.Seq, Ordered: true, Attempt: &Attempt{At: first, Status: 500}, Next: next})
	h2, _, _ := s.OrderedHead("f")
	if h2.Key != h.Key || !h2.Due.Equal(next) || !h2.FailingSince.Equal(first) {
		t.Fatalf("after a failed attempt the head is %+v, want %s due %v failing since %v", h2, h.Key, next, first)
	}
	// An outcome for another sequence number is stale.
	mustComplete(t, s, Outcome{Key: h.Key, Due: next, Seq: h.Seq + 100, Ordered: true, Attempt: &Attempt{At: first, Status: 500}, Reason: "x"})
	if d, _ := s.Delivery(h.Key); d.State != Pending {
		t.Fatalf("a stale outcome parked the head: %+v", d)
	}

	if n, err := s.Redeliver(ctx, "a", func(e string) bool { return e == "f" }, nil); err != nil || len(n) != 1 {
		t.Fatalf("redeliver: %v %v", n, err)
	}
	if got, want := headIDs(t, s), []string{"b", "c", "a"}; !slices.Equal(got, want) {
		t.Fatalf("heads %v, want %v", got, want)
	}
	if eps, _ := s.OrderedEndpoints(); len(eps) != 0 {
		t.Fatalf("ordered endpoints %v after all were delivered", eps)
	}
}

// Parking an ordered endpoint empties its index; redelivering what was
// parked queues it again in acknowledgement order.
func TestOrderedParkAndRedeliver(t *testing.T) {
	s := mustOpen(t, Options{Ordered: onlyF})
	ctx := context.Background()
	var evs []NewEvent
	for _, id := range []string{"z", "y", "x", "w"} { // ids sort against acknowledgement order
		evs = append(evs, newEvent(id, "f"))
	}
	if _, err := s.Ingest(ctx, evs, lim); err != nil {
		t.Fatal(err)
	}
	if eps, err := s.OrderedEndpoints(); err != nil || !slices.Equal(eps, []string{"f"}) {
		t.Fatalf("ordered endpoints %v %v", eps, err)
	}
	if n, err := s.ParkEndpoint(ctx, "f", "endpoint disabled"); err != nil || n != 4 {
		t.Fatalf("parked %d %v", n, err)
	}
	if _, ok, _ := s.OrderedHead("f"); ok || s.Pending() != 0 {
		t.Fatalf("a head left after parking; pending %d", s.Pending())
	}
	if n, err := s.RedeliverUndeliverable(ctx, func(e string) bool { return e == "f" }, time.Time{}, time.Time{}); err != nil || n != 4 {
		t.Fatalf("redelivered %d %v", n, err)
	}
	if got, want := headIDs(t, s), []string{"z", "y", "x", "w"}; !slices.Equal(got, want) {
		t.Fatalf("heads %v, want %v", got, want)
	}
}

// After kill -9 the log replays ordered deliveries into the index with the
// sequence numbers they were acknowledged with, and the counter goes on
// above them.
func TestOrderedReplay(t *testing.T) {
	path, w := closedDatabase(t)
	var payloads [][]byte
	for i, id := range []string{"n", "m"} {
		ne := newEvent(id, "f", "u")
		ne.Deliveries[0].Ordered = true
		p := prepare(&ne, lim)
		p.setSeq(uint64(41 + i))
		payloads = append(payloads, p.wal)
	}
	if _, err := w.write(payloads, nil, 0); err != nil {
		t.Fatal(err)
	}
	w.close()

	// No Options.Ordered: the log, not the configuration, says where a
	// logged delivery belongs.
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Replayed() != 2 {
		t.Fatalf("replayed %d", s.Replayed())
	}
	h, ok, err := s.OrderedHead("f")
	if err != nil || !ok || h.Key != DeliveryKey("n", "f") || h.Seq != 41 {
		t.Fatalf("head %+v %v %v", h, ok, err)
	}
	if ev, _ := s.Event("m"); ev.Seq != 42 {
		t.Fatalf("event m has sequence number %d, want 42", ev.Seq)
	}
	if _, err := s.Ingest(context.Background(), []NewEvent{newEvent("later", "u")}, lim); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Delivery(DeliveryKey("later", "u")); d.Seq <= 42 || d.Ordered {
		t.Fatalf("a new event after the replay: %+v", d)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// Each endpoint's pending count is not stored: Open counts it from the due
// queue and the ordered index, and drops the counters older builds kept
// in meta.
func TestPendingCountsAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := Open(path, Options{Ordered: onlyF})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Ingest(ctx, []NewEvent{newEvent("a", "f", "u"), newEvent("b", "f", "u"), newEvent("c", "f")}, lim); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktMeta).Put(append(bytes.Clone(prefixEpPending), "gone"...), putU64(7))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(path, Options{Ordered: onlyF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p := s.PendingByEndpoint(); len(p) != 2 || p["f"] != 3 || p["u"] != 2 {
		t.Fatalf("pending after reopen %v, want f:3 u:2", p)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bktMeta).Cursor().Seek(prefixEpPending); bytes.HasPrefix(k, prefixEpPending) {
			return fmt.Errorf("old counter %q left in meta", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
