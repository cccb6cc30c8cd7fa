package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A query over the last hour visits the same number of index keys on a
// small database and on one with many more older deliveries: its cost
// follows the range, not the database.
func TestDeliveryLogCostFollowsTheRange(t *testing.T) {
	visited := func(old int) (int, int) {
		s := mustOpen(t, Options{})
		now := time.Now().UTC()
		var evs []NewEvent
		for i := range old {
			ne := newEvent(fmt.Sprintf("old-%d", i), "a")
			ne.Event.Created = now.Add(-48 * time.Hour).Add(time.Duration(i) * time.Millisecond)
			evs = append(evs, ne)
		}
		for i := range 30 {
			ne := newEvent(fmt.Sprintf("new-%d", i), "a", "b")
			ne.Event.Tenant = []string{"A", "B"}[i%2]
			evs = append(evs, ne)
		}
		for len(evs) > 0 {
			n := min(len(evs), 1000)
			if _, err := s.Ingest(context.Background(), evs[:n], Limits{}); err != nil {
				t.Fatal(err)
			}
			evs = evs[n:]
		}
		got, _, v, err := s.DeliveryLog(DeliveryQuery{Since: now.Add(-time.Hour), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(got), v
	}
	n1, v1 := visited(100)
	n2, v2 := visited(5000)
	if n1 != 60 || n2 != 60 || v1 != v2 {
		t.Fatalf("small db: %d items, %d keys visited; big db: %d items, %d keys visited", n1, v1, n2, v2)
	}
}

// Filters, tenants, newest first, and paging by cursor.
func TestDeliveryLogQueries(t *testing.T) {
	s := mustOpen(t, Options{})
	base := time.Now().UTC().Add(-time.Minute)
	for i := range 10 {
		ne := newEvent(fmt.Sprintf("e%d", i), "a", "b")
		ne.Event.Created = base.Add(time.Duration(i) * time.Second)
		ne.Event.Tenant = []string{"A", "B"}[i%2]
		if _, err := s.Ingest(context.Background(), []NewEvent{ne}, Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	page, next, _, err := s.DeliveryLog(DeliveryQuery{Tenant: "A", Endpoint: "a", Limit: 2})
	if err != nil || len(page) != 2 || page[0].EventID != "e8" || page[1].EventID != "e6" || next == "" {
		t.Fatalf("page 1: %v %q %v", page, next, err)
	}
	var all []string
	for q := (DeliveryQuery{Tenant: "A", Limit: 3}); ; {
		page, next, _, err := s.DeliveryLog(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			all = append(all, e.EventID+"/"+e.Endpoint)
		}
		if q.Cursor = next; next == "" {
			break
		}
	}
	if fmt.Sprint(all) != "[e8/b e8/a e6/b e6/a e4/b e4/a e2/b e2/a e0/b e0/a]" {
		t.Fatalf("tenant A, paged: %v", all)
	}
	st := Delivered
	if page, _, _, _ := s.DeliveryLog(DeliveryQuery{State: &st, Limit: 10}); len(page) != 0 {
		t.Fatalf("delivered: %v", page)
	}
	if page, _, _, _ := s.DeliveryLog(DeliveryQuery{Until: base.Add(2500 * time.Millisecond), Since: base.Add(time.Second), Limit: 10}); len(page) != 4 {
		t.Fatalf("time range: %d", len(page))
	}
}

// Queries by endpoint and tenant merge the deliveries still waiting in
// log_unindexed with the indexed ones: the same pages, in the same order,
// before, during and after indexLog moves them, even between two pages of
// one query. The overall index (never deferred) is the oracle.
func TestDeliveryLogMergesUnindexed(t *testing.T) {
	s := mustOpen(t, Options{})
	ctx := context.Background()
	base := time.Now().UTC().Add(-time.Hour)
	ingest := func(from, to int) {
		for i := from; i < to; i++ {
			ne := newEvent(fmt.Sprintf("e%02d", i), "a", "b")
			// Out of ingest order, and some at the same instant.
			ne.Event.Created = base.Add(time.Duration((i*7)%23) * time.Second)
			ne.Event.Tenant = []string{"A", "B", ""}[i%3]
			if _, err := s.Ingest(ctx, []NewEvent{ne}, Limits{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// index moves n into a run, and merges runs as the committer does.
	index := func(n int) {
		if err := s.submit(ctx, func(tx *bolt.Tx, st *txState) error { return indexAndMerge(tx, st, n) }); err != nil {
			t.Fatal(err)
		}
	}
	// legacy moves n into log_by_endpoint and log_by_tenant, as builds
	// before runs did.
	legacy := func(n int) {
		if err := s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
			c := tx.Bucket(bktLogUnindexed).Cursor()
			for k, v := c.First(); k != nil && n > 0; k, v = c.First() {
				_, key := splitTimeKey(k)
				_, endpoint, _ := strings.Cut(key, "\x00")
				if err := tx.Bucket(bktLogEndpoint).Put(endpointLogKey(k, endpoint), nil); err != nil {
					return err
				}
				if len(v) > 0 {
					if err := tx.Bucket(bktLogTenant).Put(tenantLogKey(string(v), k), nil); err != nil {
						return err
					}
				}
				if err := c.Delete(); err != nil {
					return err
				}
				st.unindexed--
				n--
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	runs := func() int {
		n := 0
		s.db.View(func(tx *bolt.Tx) error { n = len(listRuns(tx)); return nil })
		return n
	}
	oracle := func(q DeliveryQuery) []string {
		all, _, _, err := s.DeliveryLog(DeliveryQuery{Since: q.Since, Until: q.Until, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range all {
			if (q.Endpoint == "" || e.Endpoint == q.Endpoint) && (q.Tenant == "" || e.Tenant == q.Tenant) {
				out = append(out, e.EventID+"/"+e.Endpoint)
			}
		}
		return out
	}
	// paged runs q page by page; between the first two pages it calls mid.
	paged := func(q DeliveryQuery, mid func()) []string {
		var out []string
		for first := true; ; first = false {
			page, next, _, err := s.DeliveryLog(q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				out = append(out, e.EventID+"/"+e.Endpoint)
			}
			if first && mid != nil {
				mid()
			}
			if q.Cursor = next; next == "" {
				return out
			}
		}
	}
	queries := []DeliveryQuery{{Endpoint: "a"}, {Endpoint: "b"}, {Tenant: "A"}, {Tenant: "B"},
		{Tenant: "A", Since: base.Add(5 * time.Second), Until: base.Add(15 * time.Second)},
		{Endpoint: "b", Since: base.Add(3 * time.Second)}}
	check := func(stage string, mid func()) {
		t.Helper()
		for _, q := range queries {
			for _, limit := range []int{1, 3, 7, 100} {
				q.Limit = limit
				want := oracle(q)
				if got := paged(q, mid); fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
					t.Fatalf("%s: %+v: got %v, want %v", stage, q, got, want)
				}
				mid = nil // once is enough: the rest are already moved
			}
		}
	}
	ingest(0, 30)
	check("none indexed", nil)
	index(25)
	ingest(30, 45)
	check("partly indexed", func() { index(10) })
	index(1000)
	check("all indexed", nil)
	// Many small runs, merged as they come, and between pages.
	ingest(45, 120)
	for range 20 {
		index(3)
	}
	if n := runs(); n >= 20 || n < 2 {
		t.Fatalf("%d runs after 22 batches: merged none or all", n)
	}
	check("merged runs", func() { index(3) })
	// Deliveries indexed by a build before runs are read with the rest.
	ingest(120, 140)
	legacy(12)
	check("legacy index", func() { legacy(3) })
	index(1000)
	check("legacy index and runs", nil)
	// A cursor is the client's: one too short, made up or of another query
	// (another tenant's, an endpoint's) is an error, never a panic or a
	// page that is not the next one.
	_, other, _, err := s.DeliveryLog(DeliveryQuery{Tenant: "B", Limit: 1})
	if err != nil || other == "" {
		t.Fatalf("tenant B's first page: %q, %v", other, err)
	}
	_, all, _, err := s.DeliveryLog(DeliveryQuery{Limit: 1})
	if err != nil || all == "" {
		t.Fatalf("the overall first page: %q, %v", all, err)
	}
	for _, cur := range []string{"00", "41", "4100", "ff", "4200000000", "ffffffffffffffffff", "0000000000000000", other, all} {
		for _, q := range []DeliveryQuery{{Tenant: "A", Cursor: cur, Limit: 5}, {Endpoint: "a", Cursor: cur, Limit: 5}, {Cursor: cur, Limit: 5}} {
			if q.Tenant == "" && q.Endpoint == "" && cur == all {
				continue // its own
			}
			if _, _, _, err := s.DeliveryLog(q); err == nil || !strings.Contains(err.Error(), "bad cursor") {
				t.Fatalf("%+v: %v", q, err)
			}
		}
	}
	if n := s.unindexed.Load(); n != 0 {
		t.Fatalf("%d counted as waiting after everything was indexed", n)
	}
}

// A purge deletes its deliveries from the runs holding them and drops a
// run it empties; the runs of deliveries it keeps stay.
func TestPurgeEmptiesLogRuns(t *testing.T) {
	s := mustOpen(t, Options{})
	ctx := context.Background()
	deliver := func(from, to int) {
		for i := from; i < to; i++ {
			ne := newEvent(fmt.Sprintf("e%03d", i), "a", "b")
			ne.Event.Tenant = []string{"A", "B"}[i%2]
			if _, err := s.Ingest(ctx, []NewEvent{ne}, lim); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 2*(to-from))
		for i := from; i < to; i++ {
			for _, ep := range []string{"a", "b"} {
				key := DeliveryKey(fmt.Sprintf("e%03d", i), ep)
				d, _ := s.Delivery(key)
				s.Complete(&Outcome{Key: key, Due: d.Due, Attempt: &Attempt{At: time.Now(), Status: 200}, Delivered: true}, func(err error) { done <- err })
			}
		}
		for range 2 * (to - from) {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if err := s.submit(ctx, func(tx *bolt.Tx, st *txState) error { return indexLog(tx, st, 1000) }); err != nil {
			t.Fatal(err)
		}
	}
	deliver(0, 20)
	deliver(20, 40)
	time.Sleep(10 * time.Millisecond)
	cut := time.Now()
	time.Sleep(10 * time.Millisecond)
	deliver(40, 50)
	// count counts the runs' keys and the runs holding only deliveries
	// from before cut (the committer may have indexed some batches on its
	// own: how many runs there are is not fixed).
	count := func() (old, keys int) {
		s.db.View(func(tx *bolt.Tx) error {
			for _, r := range listRuns(tx) {
				if bytes.Compare(r.max, timeKey(cut, "")) < 0 {
					old++
				}
				keys += tx.Bucket(bktLogRuns).Bucket(r.name).Stats().KeyN
			}
			return nil
		})
		return old, keys
	}
	if old, k := count(); old == 0 || k != 50*2*2 {
		t.Fatalf("before the purge: %d runs before the cut, %d keys", old, k)
	}
	// Everything before cut is past retention.
	n, err := s.Purge(ctx, cut.Add(time.Hour), Retention{Delivered: time.Hour, Undeliverable: time.Hour})
	if err != nil || n != 40 {
		t.Fatalf("purged %d, %v", n, err)
	}
	if old, k := count(); old != 0 || k != 10*2*2 {
		t.Fatalf("after the purge: %d runs before the cut, %d keys", old, k)
	}
	page, _, _, err := s.DeliveryLog(DeliveryQuery{Tenant: "A", Limit: 100})
	if err != nil || len(page) != 10 {
		t.Fatalf("tenant A after the purge: %d, %v", len(page), err)
	}
}

// A purge deletes a delivery's keys from each run whose created bounds
// include it, whatever their overlaps, and only from those; the runs one
// transaction read stay right as it drops the ones it empties.
func TestDeleteFromOverlappingRuns(t *testing.T) {
	s := mustOpen(t, Options{})
	at := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	e := func(k string) []byte { return runKey(runEndpoint, []byte(k)) }
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range []struct {
			min, max uint64
			keys     [][]byte
		}{
			{10, 100, [][]byte{e("1"), e("2")}}, // wide, as a merge makes
			{20, 30, [][]byte{e("1")}},
			{40, 50, [][]byte{e("3")}},
			{200, 300, [][]byte{e("1")}}, // newer: not one of them
		} {
			if err := writeRun(tx, r.keys, at(r.min), at(r.max)); err != nil {
				return err
			}
		}
		st := &txState{}
		for _, d := range []struct {
			created uint64
			key     string
		}{{25, "1"}, {45, "3"}, {60, "2"}, {5, "1"}, {400, "1"}} {
			if err := deleteFromRuns(tx, st, at(d.created), []byte(d.key), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		runs := listRuns(tx)
		if len(runs) != 1 || binary.BigEndian.Uint64(runs[0].min) != 200 || tx.Bucket(bktLogRuns).Bucket(runs[0].name).Get(e("1")) == nil {
			t.Errorf("runs left: %d, want only [200, 300] holding its key", len(runs))
		}
		return nil
	})
}

// Runs are merged only when mergeRunsAt of one size tier exist, smallest
// first, into at most mergeKeys keys; full runs never.
func TestPickMerge(t *testing.T) {
	runs := func(keys ...uint64) []runInfo {
		var out []runInfo
		for _, k := range keys {
			out = append(out, runInfo{keys: k})
		}
		return out
	}
	for _, c := range []struct {
		keys []uint64
		want string
	}{
		{[]uint64{1, 1, 1}, "[]"},
		{[]uint64{1, 1, 1, 1}, "[0 1 2 3]"},
		{[]uint64{fullRunKeys, fullRunKeys, fullRunKeys, fullRunKeys}, "[]"},
		{[]uint64{5, 6, 7, 1, 1, 1}, "[]"},
		{[]uint64{5, 6, 7, 1, 1, 1, 4}, "[6 0 1 2]"},
		{[]uint64{5, 6, 7, 1, 1, 1, 4, 1}, "[3 4 5 7]"}, // the lowest tier first
		{[]uint64{20000, 20000, 20000, 20000, 90000}, "[0 1 2]"},
	} {
		if got := fmt.Sprint(pickMerge(runs(c.keys...))); got != c.want {
			t.Errorf("%v: picked %s, want %s", c.keys, got, c.want)
		}
	}
	// Under a trickle (four keys a batch) each key is rewritten once a
	// tier, not in every merge.
	var sim []runInfo
	written := uint64(0)
	for range 100_000 {
		sim = append(sim, runInfo{keys: 4})
		written += 4
		if pick := pickMerge(sim); len(pick) > 0 {
			merged := runInfo{}
			for _, i := range pick {
				merged.keys += sim[i].keys
			}
			written += merged.keys
			picked := map[int]bool{}
			for _, i := range pick {
				picked[i] = true
			}
			rest := []runInfo{merged}
			for i, r := range sim {
				if !picked[i] {
					rest = append(rest, r)
				}
			}
			sim = rest
		}
	}
	small := 0
	for _, r := range sim {
		if r.keys < fullRunKeys {
			small++
		}
	}
	if amp := float64(written) / 400_000; amp > 9 || small > 3*8+1 {
		t.Errorf("under a trickle: write amplification %.1f, %d runs not full", amp, small)
	}
	t.Logf("under a trickle: write amplification %.1f, %d runs not full, %d in all", float64(written)/400_000, small, len(sim))
}
