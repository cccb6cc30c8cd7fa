package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// What kill -9 leaves behind: events logged (and acknowledged) that bbolt
// never got, followed by a torn record. Open applies exactly the intact
// ones, once.
func TestWALReplay(t *testing.T) {
	path, w := closedDatabase(t)
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

// A segment whose start is neither a header nor empty (here written over,
// as a backup's -out into the log directory did before it was refused) is
// reported by Open, not skipped in silence; an empty one is not reported.
func TestUnreadableSegmentReported(t *testing.T) {
	path, w := closedDatabase(t)
	ne := newEvent("a", "x")
	if _, err := w.write([][]byte{prepare(&ne, lim).wal}, nil, 0); err != nil {
		t.Fatal(err)
	}
	seg := w.pos.seg
	w.close()
	if err := os.WriteFile(segmentPath(path+".wal", seg), []byte("SQLite format 3\x00 and so on, not a log"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segmentPath(path+".wal", seg+1), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.UnreadableSegments(); s.Replayed() != 0 || len(got) != 1 || got[0] != segmentPath(path+".wal", seg) {
		t.Fatalf("replayed %d, unreadable %q", s.Replayed(), got)
	}
}

// A record damaged on disk, with intact records after it, does not end the
// replay: those were acknowledged, and were dropped in silence (black-box
// testing). The damaged stretch is reported, with Inspect's count. A torn
// last record has nothing intact after it and is no damage.
func TestDamagedRecordSkipped(t *testing.T) {
	path, w := closedDatabase(t)
	var recs [][]byte
	for _, id := range []string{"a", "b", "c"} {
		ne := newEvent(id, "x")
		recs = append(recs, prepare(&ne, lim).wal)
	}
	if _, err := w.write(recs[:2], nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.write(recs[2:], nil, 0); err != nil {
		t.Fatal(err)
	}
	seg := segmentPath(path+".wal", w.pos.seg)
	w.close()
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	second := int64(walHeaderBytes + 8 + len(recs[0]))
	// A bit of b's payload flipped, and a torn tail.
	b[second+8+3] ^= 1
	if err := os.WriteFile(seg, append(b, 0xff, 0x01), 0o600); err != nil {
		t.Fatal(err)
	}
	if counts, err := Inspect(path); err != nil || counts["wal_unapplied"] != 2 || counts["wal_damaged_stretches"] != 1 {
		t.Fatalf("inspect: %v %v", counts, err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []WALGap{{Segment: seg, Offset: second, Bytes: int64(8 + len(recs[1]))}}
	if got := s.DamagedLog(); s.Replayed() != 2 || !slices.Equal(got, want) {
		t.Fatalf("replayed %d, damaged %+v, want %+v", s.Replayed(), got, want)
	}
	for id, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, err := s.Event(id); (err == nil) != want {
			t.Errorf("event %s: %v", id, err)
		}
	}
}

// A recycled segment still holds the records of its previous life beyond
// the new ones; the sequence number in their CRC ends replay there.
func TestWALRecycledSegment(t *testing.T) {
	dir := t.TempDir()
	id := []byte("0123456789abcdef")
	w := &wal{dir: dir, id: id, spareP: true} // the raw sync path, as under hookd's GOMAXPROCS
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
	last, dmg, err := replayWAL(dir, id, walPos{}, func(p []byte, _ walPos) error {
		got = append(got, string(p))
		return nil
	})
	if err != nil || last != 2 || len(got) != 1 || got[0] != "new" || len(dmg.gaps) != 0 {
		t.Fatalf("replayed %q (last segment %d, damaged %+v, %v)", got, last, dmg.gaps, err)
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
	// Once the database takes the event, readiness probes the log before
	// it says ready: pages bbolt freed in its own file say nothing of room
	// for the log on a disk still full (CI's TestDiskFullTmpfs).
	waitFor(t, "the stuck event applied", func() bool { return !s.applyFailing.Load() })
	if !s.walFailing.Load() {
		t.Fatal("recovered without marking the log to be probed")
	}
	if err := s.Writable(ctx); err != nil || s.walFailing.Load() {
		t.Fatalf("readiness after the probe: %v (still marked: %v)", err, s.walFailing.Load())
	}
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

// A log next to a database it was not written for (here: another
// database's) is refused at Open, and nothing of it is applied.
func TestForeignWALRefused(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a.db"), filepath.Join(t.TempDir(), "b.db")
	sa, err := Open(a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.Ingest(context.Background(), []NewEvent{newEvent("from-a", "x")}, lim); err != nil {
		t.Fatal(err)
	}
	sa.Close()
	sb, err := Open(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sb.Close()
	moveWAL(t, a, b)

	_, err = Open(b, Options{})
	if !errors.Is(err, ErrForeignWAL) || !strings.Contains(err.Error(), b+".wal") || !strings.Contains(err.Error(), "move") {
		t.Fatalf("open next to a's log: %v", err)
	}
	if _, err := Inspect(b); !errors.Is(err, ErrForeignWAL) {
		t.Fatalf("inspect next to a's log: %v", err)
	}
	// Moved back where it belongs, the log is a's again.
	moveWAL(t, b, a)
	for path, events := range map[string]int{a: 1, b: 0} {
		if counts, err := Inspect(path); err != nil || counts["events"] != events {
			t.Fatalf("%s: %v %v", path, counts, err)
		}
	}
}

func moveWAL(t *testing.T, from, to string) {
	t.Helper()
	if err := os.RemoveAll(to + ".wal"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(from+".wal", to+".wal"); err != nil {
		t.Fatal(err)
	}
}

// A database and log from the build before ids (no id in the database, no
// segment headers): Open replays the log once and gives the database an
// id. A log without headers found later next to it is not its own.
func TestWALFromBeforeIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Delete(keyDBID) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.RemoveAll(path + ".wal")
	writeLegacySegment(t, path+".wal", 1, newEvent("a", "x"), newEvent("b", "x"))

	var id []byte
	for round, want := range []int{2, 0} {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if s.Replayed() != want || s.Pending() != 2 || s.wal.id == nil || (id != nil && !bytes.Equal(id, s.wal.id)) {
			t.Fatalf("round %d: replayed %d, pending %d, id %x (was %x)", round, s.Replayed(), s.Pending(), s.wal.id, id)
		}
		id = s.wal.id
		if _, err := s.Event("b"); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}

	writeLegacySegment(t, path+".wal", 1000, newEvent("c", "x"))
	if _, err := Open(path, Options{}); !errors.Is(err, ErrForeignWAL) {
		t.Fatalf("a log without headers next to a database with an id: %v", err)
	}
}

// writeLegacySegment writes events as the build before segment headers
// did: records from offset 0.
func writeLegacySegment(t *testing.T, dir string, seq uint64, evs ...NewEvent) {
	t.Helper()
	var b []byte
	for i := range evs {
		p := prepare(&evs[i], lim).wal
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = binary.LittleEndian.AppendUint32(b, recordCRC(seq, p))
		b = append(b, p...)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segmentPath(dir, seq), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// closedDatabase makes a database and closes it, and returns its path and
// a writer of its log, to write records the database has not applied (as a
// crash leaves them).
func closedDatabase(t *testing.T) (string, *wal) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.wal.id
	s.Close()
	return path, &wal{dir: path + ".wal", id: id}
}
