package store

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a consistent, read-only view of the whole database, for an
// online backup: written out, it is a complete bbolt file that Open (or
// Inspect) takes as it is. It keeps the database's id, so a restored copy
// accepts the log of the database it was taken from (the same history)
// and refuses any other.
//
// A snapshot is a bbolt read transaction. Writers go on meanwhile, but the
// pages they free cannot be reused while it is open, so the file grows by
// what they write; and if a commit must enlarge bbolt's memory map (the
// file outgrowing a power of two up to 1 GiB, then each further GiB), that
// commit and every read after it wait until the snapshot is closed. Close
// it promptly, and before closing the store (bbolt's Close waits for it).
type Snapshot struct {
	tx   *bolt.Tx
	once sync.Once
}

// Snapshot waits until every event acknowledged before the call is applied
// to bbolt (until then it is only in the write-ahead log), then opens the
// read transaction. It fails with ErrStorage when acknowledged events
// cannot be applied (disk full): a copy without them would not be the
// whole state.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	// The committer takes requests in order, and an event is handed to it
	// before its acknowledgement: once this empty request is done, so are
	// theirs.
	if err := s.submit(ctx, nil); err != nil {
		return nil, fmt.Errorf("snapshot: wait for acknowledged events to be applied: %w", err)
	}
	if s.applyFailing.Load() {
		return nil, fmt.Errorf("%w: snapshot: acknowledged events cannot be applied to the database", ErrStorage)
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: begin read transaction: %w", err)
	}
	return &Snapshot{tx: tx}, nil
}

// CommitRunning is how long the bbolt transaction in progress has been
// running, or 0. A long one while a snapshot is open is most likely waiting
// for it (see Snapshot): the snapshot's holder should give way.
func (s *Store) CommitRunning() time.Duration {
	if t := s.committing.Load(); t != 0 {
		return time.Since(time.Unix(0, t))
	}
	return 0
}

// Size is how many bytes WriteTo writes.
func (sn *Snapshot) Size() int64 { return sn.tx.Size() }

// WriteTo writes the database as of the snapshot to w. It must not run
// concurrently with Close.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := sn.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("write snapshot: %w", err)
	}
	return n, nil
}

// Close ends the read transaction; later calls do nothing.
func (sn *Snapshot) Close() {
	sn.once.Do(func() { sn.tx.Rollback() })
}

// Backup writes a snapshot of the database to w (see Snapshot) and returns
// the bytes written.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	sn, err := s.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	defer sn.Close()
	return sn.WriteTo(w)
}
