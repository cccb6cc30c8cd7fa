package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// mustOpen opens a store in a temp dir and checks its consistency on
// cleanup, like bbolt's own btesting helpers.
func mustOpen(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "hookd.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Check(); err != nil {
			tb.Errorf("consistency check: %v", err)
		}
		s.Close()
	})
	return s
}

func newEvent(id string, endpoints ...string) NewEvent {
	ne := NewEvent{Event: Event{ID: id, Type: "t", Created: time.Now().UTC(), Raw: []byte(`{}`)}}
	for _, e := range endpoints {
		ne.Deliveries = append(ne.Deliveries, NewDelivery{Endpoint: e, Body: []byte(`{"id":"` + id + `"}`)})
	}
	return ne
}

var lim = Limits{DedupWindow: time.Hour}

func TestFileModeAndLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "hookd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("db mode %v", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(path))
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", di.Mode().Perm())
	}
	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
}

func TestIngestDedupAndPending(t *testing.T) {
	var mu sync.Mutex
	var queued []QueueEntry
	s := mustOpen(t, Options{OnQueued: func(e []QueueEntry) { mu.Lock(); queued = append(queued, e...); mu.Unlock() }})
	ctx := context.Background()
	res, err := s.Ingest(ctx, []NewEvent{newEvent("a", "x", "y"), newEvent("a", "x")}, lim)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || res[0].Deliveries != 2 || !res[1].Duplicate {
		t.Fatalf("results %+v", res)
	}
	if s.Pending() != 2 || len(queued) != 2 {
		t.Fatalf("pending %d queued %d", s.Pending(), len(queued))
	}
	// Idempotency key maps to the first event's id.
	k := newEvent("b", "x")
	k.DedupKey = "key-1"
	k2 := newEvent("c", "x")
	k2.DedupKey = "key-1"
	res, _ = s.Ingest(ctx, []NewEvent{k, k2}, lim)
	if !res[1].Duplicate || res[1].ID != "b" {
		t.Fatalf("idempotency %+v", res)
	}
	// max_pending, once reached, refuses without storing.
	res, _ = s.Ingest(ctx, []NewEvent{newEvent("d", "x", "y")}, Limits{DedupWindow: time.Hour, MaxPending: s.Pending()})
	if !errors.Is(res[0].Err, ErrTooManyPending) {
		t.Fatalf("max pending: %+v", res)
	}
	if _, err := s.Event("d"); !errors.Is(err, ErrNotFound) {
		t.Fatal("refused event was stored")
	}
}

func TestCompleteRetryParkRedeliver(t *testing.T) {
	s := mustOpen(t, Options{})
	ctx := context.Background()
	if _, err := s.Ingest(ctx, []NewEvent{newEvent("e", "x")}, lim); err != nil {
		t.Fatal(err)
	}
	key := DeliveryKey("e", "x")
	d, _ := s.Delivery(key)
	complete := func(o Outcome) {
		done := make(chan error)
		s.Complete(&o, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	next := time.Now().Add(time.Hour).UTC()
	complete(Outcome{Key: key, Due: d.Due, Attempt: &Attempt{At: time.Now(), Status: 500}, Next: next})
	d, _ = s.Delivery(key)
	if d.State != Pending || !d.Due.Equal(next) || d.Attempts != 1 {
		t.Fatalf("after retry %+v", d)
	}
	// A stale outcome (wrong due) only records the attempt.
	complete(Outcome{Key: key, Due: time.Unix(1, 0), Attempt: &Attempt{At: time.Now(), Status: 500}, Reason: "x"})
	if d2, _ := s.Delivery(key); d2.State != Pending || d2.Attempts != 2 {
		t.Fatalf("stale outcome changed state %+v", d2)
	}
	// A 2xx begun before a redeliver (another due) leaves it pending for
	// the resend asked for meanwhile.
	complete(Outcome{Key: key, Due: time.Unix(1, 0), Attempt: &Attempt{At: time.Now(), Status: 200}, Delivered: true})
	if d2, _ := s.Delivery(key); d2.State != Pending || d2.Attempts != 3 || s.Pending() != 1 {
		t.Fatalf("a 2xx from before a redeliver: %+v", d2)
	}
	began := time.Now().UTC()
	complete(Outcome{Key: key, Due: next, Attempt: &Attempt{At: began, Latency: 3 * time.Second, Status: 500}, Reason: "exhausted"})
	items, _, err := s.ListUndeliverable("", 10, "")
	if err != nil || len(items) != 1 || items[0].Reason != "exhausted" || items[0].LastAttempt.N != 4 {
		t.Fatalf("undeliverable %+v %v", items, err)
	}
	if d, _ := s.Delivery(key); !d.Parked.Equal(began.Add(3 * time.Second)) {
		t.Fatalf("parked at %v, the attempt began at %v and took 3s", d.Parked, began)
	}
	if s.Pending() != 0 {
		t.Fatalf("pending %d", s.Pending())
	}
	n, err := s.RedeliverUndeliverable(ctx, func(e string) bool { return e == "x" }, time.Time{}, time.Time{})
	if err != nil || n != 1 || s.Pending() != 1 {
		t.Fatalf("redeliver %d %v pending %d", n, err, s.Pending())
	}
	d, _ = s.Delivery(key)
	if d.State != Pending || d.Cycle != 4 {
		t.Fatalf("after redeliver %+v", d)
	}
	var due []QueueEntry
	s.ScanDue(time.Now(), 10, nil, func(e QueueEntry) { due = append(due, e) })
	if len(due) != 1 || due[0].Key != key {
		t.Fatalf("due %v", due)
	}
}

func TestUndeliverablePaging(t *testing.T) {
	s := mustOpen(t, Options{})
	ctx := context.Background()
	var evs []NewEvent
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		evs = append(evs, newEvent(id, "x", "y"))
	}
	s.Ingest(ctx, evs, lim)
	if n, err := s.ParkEndpoint(ctx, "x", "endpoint removed"); err != nil || n != 5 {
		t.Fatalf("park %d %v", n, err)
	}
	var all []string
	cursor := ""
	for {
		items, next, err := s.ListUndeliverable("x", 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			all = append(all, it.EventID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != 5 {
		t.Fatalf("paged %v", all)
	}
	// A cursor is good for the query that returned it: not for another
	// endpoint's list, nor made up.
	_, next, _ := s.ListUndeliverable("x", 2, "")
	for _, c := range []struct{ endpoint, cursor string }{{"y", next}, {"", "aaaa"}, {"x", "zz"}} {
		if _, _, err := s.ListUndeliverable(c.endpoint, 2, c.cursor); !errors.Is(err, ErrBadCursor) {
			t.Errorf("list of %q from cursor %q: %v", c.endpoint, c.cursor, err)
		}
	}
	if items, _, err := s.ListUndeliverable("", 10, next); err != nil || len(items) != 3 {
		t.Errorf("the whole list from x's cursor: %d %v", len(items), err)
	}
	if s.Pending() != 5 {
		t.Fatalf("pending %d", s.Pending())
	}
	if by := s.PendingByEndpoint(); len(by) != 1 || by["y"] != 5 {
		t.Fatalf("pending by endpoint %v", by)
	}
}

func TestFailedCommitChangesNothing(t *testing.T) {
	var fail bool
	s := mustOpen(t, Options{BeforeCommit: func() error {
		if fail {
			return errors.New("no space left on device")
		}
		return nil
	}})
	fail = true
	if _, err := s.Ingest(context.Background(), []NewEvent{newEvent("a", "x")}, lim); !errors.Is(err, ErrStorage) {
		t.Fatalf("err %v", err)
	}
	if _, err := s.Event("a"); !errors.Is(err, ErrNotFound) || s.Pending() != 0 {
		t.Fatal("failed commit left data")
	}
	fail = false
	if _, err := s.Ingest(context.Background(), []NewEvent{newEvent("a", "x")}, lim); err != nil {
		t.Fatal("did not recover:", err)
	}
}

func TestPurge(t *testing.T) {
	s := mustOpen(t, Options{})
	ctx := context.Background()
	keyed := newEvent("keyed")
	keyed.DedupKey = "idem-1"
	s.Ingest(ctx, []NewEvent{newEvent("done", "x"), newEvent("waiting", "x"), keyed}, lim)
	key := DeliveryKey("done", "x")
	d, _ := s.Delivery(key)
	done := make(chan error)
	s.Complete(&Outcome{Key: key, Due: d.Due, Attempt: &Attempt{At: time.Now(), Status: 200}, Delivered: true}, func(err error) { done <- err })
	<-done
	n, err := s.Purge(ctx, time.Now().Add(2*time.Hour), Retention{Delivered: time.Hour, Undeliverable: time.Hour})
	if err != nil || n != 2 {
		t.Fatalf("purged %d %v", n, err)
	}
	if _, err := s.Event("done"); !errors.Is(err, ErrNotFound) {
		t.Fatal("delivered event kept")
	}
	if _, err := s.Event("waiting"); err != nil {
		t.Fatal("pending event purged")
	}
	if k, _ := s.PurgeDedup(ctx, time.Now().Add(2*time.Hour)); k != 1 {
		t.Fatalf("dedup purged %d", k)
	}
}

func BenchmarkIngestBatch(b *testing.B) {
	s := mustOpen(b, Options{})
	body := make([]byte, 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		evs := make([]NewEvent, 256)
		for j := range evs {
			id := time.Now().Format("150405.000000000") + string(rune('a'+j%26)) + string(rune('a'+j/26))
			evs[j] = NewEvent{Event: Event{ID: id, Type: "t", Created: time.Now(), Raw: body}, Deliveries: []NewDelivery{{Endpoint: "x", Body: body}}}
		}
		if _, err := s.Ingest(context.Background(), evs, lim); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCommitSmall is the cost of one small group commit (a quiet
// moment): what an ack waits for at the least.
func BenchmarkCommitSmall(b *testing.B) {
	s := mustOpen(b, Options{})
	body := make([]byte, 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := NewEvent{Event: Event{ID: "e" + strconv.Itoa(i), Type: "t", Created: time.Now(), Raw: body}, Deliveries: []NewDelivery{{Endpoint: "x", Body: body}}}
		if _, err := s.Ingest(context.Background(), []NewEvent{ev}, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// A version 1 file (indexes before runs) is upgraded at Open; a file from
// a newer build is refused.
func TestSchemaUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	setSchema := func(v uint64) {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Put(keySchema, putU64(v)) }); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	setSchema(1)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if got := getU64(tx.Bucket(bktMeta).Get(keySchema)); got != schemaVersion {
			t.Errorf("schema %d after Open, want %d", got, schemaVersion)
		}
		return nil
	})
	s.Close()
	setSchema(schemaVersion + 1)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchema) {
		t.Fatalf("a newer file: %v", err)
	}
}

// An empty file is not a database to inspect (bbolt failed to set one up
// on its read-only handle: "bad file descriptor"); it is left empty.
func TestInspectEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	os.WriteFile(path, nil, 0o600)
	if _, err := Inspect(path); err == nil || !strings.Contains(err.Error(), "the file is empty") {
		t.Fatalf("Inspect: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Fatalf("the file was written: %d bytes", fi.Size())
	}
}

// A database file cut short (a copy interrupted, a disk that filled) is
// refused with ErrTruncated by Open and Inspect, before bbolt reads a page
// past its end (which faults and kills the process).
func TestTruncatedFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		ne := newEvent(fmt.Sprintf("e%04d", i), "a")
		ne.Event.Raw = []byte(`"` + strings.Repeat("x", 1000) + `"`)
		if _, err := s.Ingest(context.Background(), []NewEvent{ne}, lim); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(path); err != nil {
		t.Fatalf("the whole file: %v", err)
	}
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(path); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Inspect: %v", err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Open: %v", err)
	}
	// With meta 0 torn, bbolt reads meta 1, found one page size later.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xde, 0xad}, 16+60) // in meta 0's checksum
	f.Close()
	if _, err := Inspect(path); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Inspect with meta 0 torn: %v", err)
	}
}

// The per-endpoint undeliverable counts follow every way in and out of
// the bucket (parked at ingest, parked later, redelivered, purged) and are
// counted again at Open.
func TestUndeliverableCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(s *Store, want map[string]int64) {
		t.Helper()
		got := s.UndeliverableEach([]string{"x", "y", "z"})
		for _, id := range []string{"x", "y", "z"} {
			if got[id] != want[id] {
				t.Fatalf("undeliverable counts %v, want %v", got, want)
			}
		}
	}
	parkedAtIngest := newEvent("p", "z")
	parkedAtIngest.Deliveries[0].Parked = "endpoint disabled"
	evs := []NewEvent{newEvent("a", "x", "y"), newEvent("b", "x"), newEvent("c", "x", "y"), parkedAtIngest}
	if _, err := s.Ingest(ctx, evs, lim); err != nil {
		t.Fatal(err)
	}
	s.Flush() // counts are the committed ones
	check(s, map[string]int64{"z": 1})
	if n, err := s.ParkEndpoint(ctx, "x", "endpoint removed"); err != nil || n != 3 {
		t.Fatalf("park %d %v", n, err)
	}
	check(s, map[string]int64{"x": 3, "z": 1})
	if n, err := s.RedeliverUndeliverable(ctx, func(e string) bool { return e == "z" }, time.Time{}, time.Time{}); err != nil || n != 1 {
		t.Fatalf("redeliver %d %v", n, err)
	}
	if _, err := s.Redeliver(ctx, "b", nil, nil); err != nil {
		t.Fatal(err)
	}
	check(s, map[string]int64{"x": 2})
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, map[string]int64{"x": 2})
	// Past both retentions, the events with parked deliveries go once
	// nothing of theirs is pending ("a" and "c" still are, for y).
	if _, err := s.ParkEndpoint(ctx, "y", "endpoint removed"); err != nil {
		t.Fatal(err)
	}
	check(s, map[string]int64{"x": 2, "y": 2})
	if _, err := s.Purge(ctx, time.Now().Add(time.Hour), Retention{}); err != nil {
		t.Fatal(err)
	}
	check(s, map[string]int64{})
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// An endpoint's state keeps who disabled it; a state stored before it
// did (version 1) reads it from the reason. An update whose rule refuses
// the change writes nothing.
func TestEndpointStateBy(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, Options{})
	since := time.Unix(1700000000, 0).UTC()
	if err := s.UpdateEndpointState(ctx, "e", func(es *EndpointState) error {
		es.Disabled, es.Reason, es.Since, es.By = true, "disabled by operator", since, ByOperator
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("held")
	if err := s.UpdateEndpointState(ctx, "e", func(es *EndpointState) error {
		es.Disabled = false
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("refused update: %v", err)
	}
	states, err := s.EndpointStatesOf([]string{"e"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (EndpointState{Disabled: true, Reason: "disabled by operator", Since: since, By: ByOperator}); states["e"] != want {
		t.Fatalf("state %+v, want %+v", states["e"], want)
	}
	for _, c := range []struct {
		disabled     bool
		reason, want string
	}{
		{true, "disabled by operator", ByOperator},
		{true, "disabled by the tenant in the portal", ByTenant},
		{true, "the receiver answered 410 Gone", ByHookd},
		{false, "disabled by operator", ""},
	} {
		v1 := encoder{}
		v1.byte1(1)
		v1.boolean(c.disabled)
		v1.str(c.reason)
		v1.i64(nanos(since))
		v1.i64(0)
		if es, err := decodeEndpointState(v1.b); err != nil || es.By != c.want || es.Disabled != c.disabled || es.Reason != c.reason {
			t.Fatalf("version 1 %+v: %+v %v", c, es, err)
		}
	}
}

// A refused operation (its fn refused before writing) leaves its batch
// to commit without it, in one transaction: it does not make every
// operation of the batch commit alone, each with its own sync. (The test
// calls apply itself; nothing else is submitted meanwhile.)
func TestRefusalCommitsTheRestOfItsBatch(t *testing.T) {
	var commits int
	s := mustOpen(t, Options{BeforeCommit: func() error { commits++; return nil }})
	set := func(name string, refused error) (*request, *error) {
		var got error
		return &request{fn: func(tx *bolt.Tx, _ *txState) error {
			if refused != nil {
				return refuse(refused)
			}
			return tx.Bucket(bktEndpoints).Put([]byte(name), encodeEndpointState(EndpointState{Disabled: true}))
		}, done: func(err error) { got = err }}, &got
	}
	a, aErr := set("a", nil)
	r, rErr := set("r", ErrExists)
	b, bErr := set("b", nil)
	before := commits
	s.apply([]*request{a, r, b})
	if commits-before != 1 || *aErr != nil || *bErr != nil || !errors.Is(*rErr, ErrExists) {
		t.Fatalf("commits %d, answers %v %v %v", commits-before, *aErr, *rErr, *bErr)
	}
	states, err := s.EndpointStatesOf([]string{"a", "r", "b"})
	if err != nil || !states["a"].Disabled || !states["b"].Disabled || states["r"].Disabled {
		t.Fatalf("states %v %v", states, err)
	}
	// A batch of refusals alone commits nothing: no sync for nothing.
	r1, r1Err := set("r1", ErrExists)
	r2, r2Err := set("r2", ErrKeyUsed)
	before = commits
	s.apply([]*request{r1, r2})
	if commits != before || !errors.Is(*r1Err, ErrExists) || !errors.Is(*r2Err, ErrKeyUsed) {
		t.Fatalf("refusals alone: %d commits, answers %v %v", commits-before, *r1Err, *r2Err)
	}
}

// A write handed to the committer is answered with its commit's result,
// even if its caller's context ends meanwhile (the API's request context
// ends at shutdown): "not stored" is never said of a write that was. A
// context done before is refused, and nothing is written.
func TestSubmitAnswersTheCommitNotTheContext(t *testing.T) {
	var hold atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	s := mustOpen(t, Options{BeforeCommit: func() error {
		if hold.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-release
		}
		return nil
	}})
	put := func(name string) func(*bolt.Tx, *txState) error {
		return func(tx *bolt.Tx, _ *txState) error {
			return tx.Bucket(bktEndpoints).Put([]byte(name), encodeEndpointState(EndpointState{Disabled: true}))
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	hold.Store(true)
	answer := make(chan error, 1)
	go func() { answer <- s.submit(ctx, put("kept")) }()
	<-entered
	cancel() // as a shutdown ends the request's context during the commit
	close(release)
	if err := <-answer; err != nil {
		t.Fatalf("answered %v for a write that committed", err)
	}
	if err := s.submit(ctx, put("refused")); !errors.Is(err, context.Canceled) {
		t.Fatalf("a write with its context done: %v", err)
	}
	states, err := s.EndpointStatesOf([]string{"kept", "refused"})
	if err != nil || !states["kept"].Disabled || states["refused"].Disabled {
		t.Fatalf("states %v %v", states, err)
	}
}
