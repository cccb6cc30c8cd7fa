package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// What kill -9 leaves behind: events logged (and acknowledged) that bbolt
// never got, followed by a torn record. Open applies exactly the intact
// ones, once.
func TestWALReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	w := &wal{dir: path + ".wal"}
	keyed := newEvent("c", "x")
	keyed.DedupKey = "idem-1"
	var payloads [][]byte
	for _, ne := range []NewEvent{newEvent("a", "x", "y"), newEvent("b", "x"), keyed} {
		p := prepare(&ne, lim)
		payloads = append(payloads, p.wal)
	}
	if _, err := w.write(payloads[:2], nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.write(payloads[2:], nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.f.WriteAt([]byte{200, 0, 0, 0, 1, 2, 3}, w.pos.off); err != nil {
		t.Fatal(err)
	}
	w.close()
	if counts, err := Inspect(path); err != nil || counts["wal_unapplied"] != 3 || counts["events"] != 0 {
		t.Fatalf("inspect before replay: %v %v", counts, err)
	}

	for round, want := range []int{3, 0} { // the second Open finds nothing left to apply
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Replayed() != want || s.Pending() != 4 {
			t.Fatalf("round %d: replayed %d, pending %d", round, s.Replayed(), s.Pending())
		}
		for _, id := range []string{"a", "b", "c"} {
			if _, err := s.Event(id); err != nil {
				t.Fatalf("round %d: event %s: %v", round, id, err)
			}
		}
		again := newEvent("other", "x")
		again.DedupKey = "idem-1"
		res, err := s.Ingest(context.Background(), []NewEvent{newEvent("a", "x"), again}, lim)
		if err != nil || !res[0].Duplicate || !res[1].Duplicate || res[1].ID != "c" {
			t.Fatalf("round %d: replayed events not seen as duplicates: %+v %v", round, res, err)
		}
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

// A recycled segment still holds the records of its previous life beyond
// the new ones; the sequence number in their CRC ends replay there.
func TestWALRecycledSegment(t *testing.T) {
	dir := t.TempDir()
	w := &wal{dir: dir, spareP: true} // the raw sync path, as under hookd's GOMAXPROCS
	old := [][]byte{[]byte("old-1"), []byte("old-2"), []byte("old-3")}
	if _, err := w.write(old, nil, 0); err != nil {
		t.Fatal(err)
	}
	w.pos.off = walSegmentBytes // force a rotation that may recycle segment 1
	if _, err := w.write([][]byte{[]byte("new")}, nil, 2); err != nil {
		t.Fatal(err)
	}
	w.close()
	if _, err := os.Stat(segmentPath(dir, 1)); !os.IsNotExist(err) {
		t.Fatal("segment 1 was not recycled")
	}
	var got []string
	last, err := replayWAL(dir, walPos{}, func(p []byte, _ walPos) error {
		got = append(got, string(p))
		return nil
	})
	if err != nil || last != 2 || len(got) != 1 || got[0] != "new" {
		t.Fatalf("replayed %q (last segment %d, %v)", got, last, err)
	}
}

// When bbolt cannot take logged events (disk full after the log's write
// succeeded), they stay logged and in memory, new events are refused, and
// both recover by themselves once commits succeed again.
func TestStuckApplyRecovers(t *testing.T) {
	var calls atomic.Int32
	var broken atomic.Bool
	broken.Store(true)
	s := mustOpen(t, Options{BeforeCommit: func() error {
		if calls.Add(1) > 1 && broken.Load() { // the first call is the log's
			return errors.New("no space left on device")
		}
		return nil
	}})
	ctx := context.Background()
	if _, err := s.Ingest(ctx, []NewEvent{newEvent("a", "x")}, lim); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ingest refused while the event cannot be applied", func() bool {
		_, err := s.Ingest(ctx, []NewEvent{newEvent("b", "x")}, lim)
		return errors.Is(err, ErrStorage)
	})
	if d, err := s.Delivery(DeliveryKey("a", "x")); err != nil || d.State != Pending {
		t.Fatalf("logged delivery not readable: %v", err)
	}
	broken.Store(false)
	waitFor(t, "ingest accepted again", func() bool {
		_, err := s.Ingest(ctx, []NewEvent{newEvent("c", "x")}, lim)
		return err == nil
	})
	if _, err := s.Event("a"); err != nil || s.Pending() != 2 {
		t.Fatalf("event a: %v, pending %d", err, s.Pending())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

// A burst bigger than maxUnapplied makes the log writer wait for the committer:
// everything is accepted, and what waits in memory stays bounded.
func TestIngestBurstWaitsForCommitter(t *testing.T) {
	s := mustOpen(t, Options{})
	const per, calls = 6000, 4
	for c := range calls {
		evs := make([]NewEvent, per)
		for i := range evs {
			evs[i] = newEvent(fmt.Sprintf("e%d-%d", c, i), "x")
		}
		if _, err := s.Ingest(context.Background(), evs, lim); err != nil {
			t.Fatal(err)
		}
		s.umu.Lock()
		n := len(s.u.ids)
		s.umu.Unlock()
		if n > maxUnapplied+per {
			t.Fatalf("%d events wait for the committer", n)
		}
	}
	if s.Pending() != per*calls {
		t.Fatalf("pending %d", s.Pending())
	}
}
