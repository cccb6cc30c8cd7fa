package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Events acknowledged a moment ago are still only in the write-ahead log
// (the committer applies them every 50 ms); a backup taken now has them.
func TestBackupHasAcknowledgedEvents(t *testing.T) {
	s := mustOpen(t, Options{})
	const n = 100
	evs := make([]NewEvent, n)
	for i := range evs {
		evs[i] = newEvent(fmt.Sprintf("e%d", i), "x")
	}
	if _, err := s.Ingest(context.Background(), evs, lim); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	written, err := s.Backup(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, _ := os.Stat(backup); fi.Size() != written {
		t.Fatalf("wrote %d bytes, file has %d", written, fi.Size())
	}
	counts, err := Inspect(backup)
	if err != nil || counts["events"] != n || counts["deliveries"] != n || counts["queue"] != n {
		t.Fatalf("backup: %v %v", counts, err)
	}

	r, err := Open(backup, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Pending() != n || !bytes.Equal(r.wal.id, s.wal.id) {
		t.Fatalf("restored: pending %d, id %x (original %x)", r.Pending(), r.wal.id, s.wal.id)
	}
	if _, err := r.Event("e99"); err != nil {
		t.Fatal(err)
	}
}

// A copy restored from a backup never hands out a number its original gave
// after the backup: a managed endpoint's id is made from one, and a platform
// may hold the ids of the endpoints the restore dropped.
func TestRestoredCopyGivesNewNumbers(t *testing.T) {
	s := mustOpen(t, Options{})
	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	n := s.NextNumber()
	if err := s.PutManaged(context.Background(), Managed{ID: fmt.Sprint("m:", n), Name: "after", Number: n, Settings: []byte("{}")}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(context.Background(), []NewEvent{newEvent("e1", "x")}, lim); err != nil {
		t.Fatal(err)
	}
	restored, err := Open(backup, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if again := restored.NextNumber(); again <= n {
		t.Fatalf("the restored copy gave %d; its original gave %d after the backup", again, n)
	}
}
