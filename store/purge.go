package store

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention says how long finished work is kept.
type Retention struct {
	Delivered     time.Duration // events whose deliveries all succeeded
	Undeliverable time.Duration // events with a parked delivery
}

// Purge deletes events (with their deliveries and attempts) that are past
// retention and expired dedup keys. It reads candidates in a read
// transaction and deletes them in small write transactions, so ingest is
// never blocked for long. Events that still have pending deliveries, or
// parked ones younger than the undeliverable retention, are re-indexed to be
// looked at again one retention period later rather than rescanned on every
// pass. It returns the number of events deleted.
func (s *Store) Purge(ctx context.Context, now time.Time, r Retention) (int, error) {
	total := 0
	for ctx.Err() == nil {
		var keys [][]byte
		err := s.db.View(func(tx *bolt.Tx) error {
			end := timeKey(now.Add(-r.Delivered), "")
			c := tx.Bucket(bktEventTime).Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0 && len(keys) < chunk; k, _ = c.Next() {
				keys = append(keys, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return total, err
		}
		n := 0
		err = s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
			n = 0
			for _, k := range keys {
				deleted, err := purgeEvent(tx, st, k, now, r)
				if err != nil {
					return err
				}
				if deleted {
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
	return total, ctx.Err()
}

func purgeEvent(tx *bolt.Tx, st *txState, indexKey []byte, now time.Time, r Retention) (bool, error) {
	idx := tx.Bucket(bktEventTime)
	if !exists(idx, indexKey) {
		return false, nil
	}
	_, id := splitTimeKey(indexKey)
	prefix := []byte(id + "\x00")
	deliveries := tx.Bucket(bktDeliveries)
	var keys [][]byte
	keep := false
	c := deliveries.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		d, err := decodeDelivery(v)
		if err != nil {
			return false, err
		}
		if d.State == Pending || (d.State == Undeliverable && now.Sub(d.Parked) < r.Undeliverable) {
			keep = true
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	if err := idx.Delete(indexKey); err != nil {
		return false, err
	}
	if keep {
		return false, idx.Put(timeKey(now, id), nil)
	}
	tenant := eventTenant(tx, id)
	attempts := tx.Bucket(bktAttempts)
	for _, k := range keys {
		d, err := getDelivery(tx, string(k))
		if err != nil {
			return false, err
		}
		if err := unindexDelivery(tx, st, d.Created, d.EventID, d.Endpoint, tenant); err != nil {
			return false, err
		}
		if d.State == Undeliverable {
			if err := tx.Bucket(bktUndeliverable).Delete(timeKey(d.Parked, string(k))); err != nil {
				return false, err
			}
			st.park(d.Endpoint, -1)
		}
		ap := append(append([]byte(nil), k...), 0)
		ac := attempts.Cursor()
		for ak, _ := ac.Seek(ap); ak != nil && bytes.HasPrefix(ak, ap); ak, _ = ac.Seek(ap) {
			if err := ac.Delete(); err != nil {
				return false, err
			}
		}
		if err := deliveries.Delete(k); err != nil {
			return false, err
		}
	}
	return true, tx.Bucket(bktEvents).Delete([]byte(id))
}

// exists tells a present key with a nil value from an absent one.
func exists(b *bolt.Bucket, k []byte) bool {
	got, _ := b.Cursor().Seek(k)
	return bytes.Equal(got, k)
}

// PurgeDedup deletes dedup keys whose window has passed. It returns how
// many were deleted.
func (s *Store) PurgeDedup(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for ctx.Err() == nil {
		var keys [][]byte
		err := s.db.View(func(tx *bolt.Tx) error {
			end := timeKey(now, "")
			c := tx.Bucket(bktDedupExpiry).Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0 && len(keys) < chunk; k, _ = c.Next() {
				keys = append(keys, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return total, err
		}
		err = s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
			dedup := tx.Bucket(bktDedup)
			for _, k := range keys {
				_, key := splitTimeKey(k)
				// Only delete the key if it still carries this expiry: it may
				// have been reused after expiring.
				if v := dedup.Get([]byte(key)); len(v) >= 8 && bytes.Equal(v[:8], k[:8]) {
					if err := dedup.Delete([]byte(key)); err != nil {
						return err
					}
				}
				if err := tx.Bucket(bktDedupExpiry).Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += len(keys)
	}
	return total, ctx.Err()
}
