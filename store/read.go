package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Event reads one event.
func (s *Store) Event(id string) (*Event, error) {
	s.barrier()
	var ev *Event
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktEvents).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		var err error
		ev, err = decodeEvent(v)
		return err
	})
	return ev, err
}

// barrier waits until the events acknowledged before it are applied to
// bbolt, so that a read after an ingest sees the event. A failed commit
// does not fail the read: it then shows what the database has. With no
// event waiting to be applied there is nothing to wait for (an event is
// acknowledged only once it is in the unapplied set, and leaves it only
// after its commit), which spares reads the committer's 50 ms pace.
func (s *Store) barrier() {
	s.umu.Lock()
	waiting := len(s.u.ids) > 0
	s.umu.Unlock()
	if waiting {
		s.submit(context.Background(), nil)
	}
}

// DeliveryDetail is a delivery with its recorded attempts, oldest first.
type DeliveryDetail struct {
	*Delivery
	Attempts []*Attempt
}

// EventDetail reads an event with every delivery and attempt.
func (s *Store) EventDetail(id string) (*Event, []DeliveryDetail, error) {
	var (
		ev  *Event
		out []DeliveryDetail
	)
	s.barrier()
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktEvents).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		var err error
		if ev, err = decodeEvent(v); err != nil {
			return err
		}
		prefix := []byte(id + "\x00")
		c := tx.Bucket(bktDeliveries).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			d, err := decodeDelivery(v)
			if err != nil {
				return err
			}
			as, err := attempts(tx, string(k), 0)
			if err != nil {
				return err
			}
			out = append(out, DeliveryDetail{Delivery: d, Attempts: as})
		}
		return nil
	})
	return ev, out, err
}

// attempts reads a delivery's attempts; last > 0 keeps only the last ones.
func attempts(tx *bolt.Tx, dkey string, last int) ([]*Attempt, error) {
	prefix := append([]byte(dkey), 0)
	c := tx.Bucket(bktAttempts).Cursor()
	var out []*Attempt
	if last > 0 {
		// Seek past the prefix and walk back.
		k, _ := c.Seek(append(append([]byte(nil), prefix...), 0xff, 0xff, 0xff, 0xff, 0xff))
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < last; k, v = c.Prev() {
			a, err := decodeAttempt(v)
			if err != nil {
				return nil, err
			}
			out = append([]*Attempt{a}, out...)
		}
		return out, nil
	}
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		a, err := decodeAttempt(v)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Parked is an undeliverable delivery with its last attempt (nil if it was
// parked without one, e.g. its endpoint was removed first).
type Parked struct {
	*Delivery
	LastAttempt *Attempt
}

// ListUndeliverable pages through the undeliverable bucket oldest first.
// cursor is the opaque value returned by the previous page ("" to start);
// the returned cursor is "" after the last page.
func (s *Store) ListUndeliverable(endpoint string, limit int, cursor string) ([]Parked, string, error) {
	start, err := hex.DecodeString(cursor)
	if err != nil || !parkedCursor(start, endpoint) {
		return nil, "", ErrBadCursor
	}
	var (
		out  []Parked
		next string
	)
	s.barrier() // a list after a 202 sees what the event parked (a disabled endpoint's)
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktUndeliverable).Cursor()
		k, _ := c.Seek(start)
		if k != nil && cursor != "" && bytes.Equal(k, start) {
			k, _ = c.Next()
		}
		for ; k != nil; k, _ = c.Next() {
			_, key := splitTimeKey(k)
			if endpoint != "" && endpointOf(key) != endpoint {
				continue
			}
			if len(out) == limit {
				next = hex.EncodeToString(prevKey(out[len(out)-1].Delivery))
				break
			}
			d, err := getDelivery(tx, key)
			if err != nil {
				return err
			}
			as, err := attempts(tx, key, 1)
			if err != nil {
				return err
			}
			p := Parked{Delivery: d}
			if len(as) == 1 {
				p.LastAttempt = as[0]
			}
			out = append(out, p)
		}
		return nil
	})
	return out, next, err
}

func prevKey(d *Delivery) []byte { return timeKey(d.Parked, d.Key()) }

// parkedCursor reports whether start (a decoded cursor; empty for the
// first page) can be one ListUndeliverable returned for endpoint: a parked
// time and a delivery key, of that endpoint when the list is filtered by
// one. Another filter's cursor, or a made-up one, gave a page starting
// somewhere else, with a 200 (black-box testing).
func parkedCursor(start []byte, endpoint string) bool {
	if len(start) == 0 {
		return true
	}
	_, key := splitTimeKey(start)
	id, ep := SplitKey(key)
	return id != "" && ep != "" && (endpoint == "" || ep == endpoint)
}

// Counts reports how many records each bucket holds, for check-db.
func (s *Store) Counts() (map[string]int, error) {
	out := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if b := tx.Bucket(name); b != nil { // an older file may lack newer buckets
				out[string(name)] = b.Stats().KeyN
			}
		}
		return nil
	})
	return out, err
}

// Inspect opens a database read-only (it must not be in use by a running
// daemon), runs bbolt's consistency check and counts each bucket's keys,
// and ("wal_unapplied") the logged events the next Open will apply.
func Inspect(path string) (map[string]int, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	} else if fi.Size() == 0 {
		// bbolt would set up a new database in it, and fail to on a
		// read-only handle ("bad file descriptor").
		return nil, fmt.Errorf("inspect %s: the file is empty: not a database", path)
	}
	if err := checkFileSize(path); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			err = ErrLocked
		}
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer db.Close()
	if err := db.View(check); err != nil { // read-only: nothing else writes
		return nil, fmt.Errorf("inspect %s: consistency check: %w", path, err)
	}
	counts, err := (&Store{db: db, path: path}).Counts()
	if err != nil {
		return nil, err
	}
	// After a crash the newest events may be only in the log; Open applies
	// them. Count them without applying anything.
	var (
		applied walPos
		id      []byte
	)
	db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		applied = parseWALPos(meta.Get(keyWALApplied))
		id = bytes.Clone(meta.Get(keyDBID))
		return nil
	})
	n := 0
	_, dmg, err := replayWAL(path+".wal", id, applied, func([]byte, walPos) error { n++; return nil })
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("inspect %s: write-ahead log: %w", path, err)
	}
	counts["wal_unapplied"] = n
	// Only when there is any: a log damaged on disk (hookd run logs each).
	if len(dmg.gaps) > 0 {
		counts["wal_damaged_stretches"] = len(dmg.gaps)
	}
	if len(dmg.unknown) > 0 {
		counts["wal_unreadable_segments"] = len(dmg.unknown)
	}
	return counts, nil
}

// UndeliverableEach is how many deliveries of each of the endpoints ids
// (internal ids) are undeliverable, as committed: counts kept in memory,
// so a page of tenants costs its own endpoints, not a walk of what is
// parked.
func (s *Store) UndeliverableEach(ids []string) map[string]int64 {
	s.epMu.Lock()
	defer s.epMu.Unlock()
	out := make(map[string]int64, len(ids))
	for _, id := range ids {
		out[id] = s.epParked[id]
	}
	return out
}
