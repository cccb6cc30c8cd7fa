package store

// Secrets at rest. Secrets are stored as seal blobs: sealed with
// Options.SealKey, or in clear (still a blob) when there is none. The
// database remembers the key that first sealed it with a check value in
// the meta bucket, written in the same transaction that seals the secrets
// stored in clear before, so "has a check value" and "every secret is
// sealed" are the same fact, even after a crash. From then on Open refuses
// to start without that key (ErrSealKeyMissing) or with another
// (ErrSealKeyWrong): a secret that cannot be opened is not silently
// replaced or re-sealed.

import (
	"crypto/rand"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"hookd/seal"
)

var (
	keySealCheck = []byte("seal_check")
	// keyCompact marks a database whose clear secrets were sealed and
	// whose file still has their freed pages: Open compacts it (compact).
	keyCompact = []byte("compact_pending")
	// adSealCheck differs from every secret's associated data, so the
	// check value cannot be swapped for a secret or the other way round.
	adSealCheck = []byte("hookd key check")
)

// sealedPlace is where secrets are stored: one sealed blob per value.
type sealedPlace struct {
	bucket []byte
	// key names the one value in bucket that is a secret; nil means every
	// value of bucket is one (nested buckets are skipped).
	key []byte
	// ad is the associated data of the value stored under key k (an
	// endpoint's internal id, or a fixed label), so a blob moved to
	// another key does not open.
	ad func(k []byte) []byte
}

// sealedPlaces lists every place that holds secrets. A place that is
// missing here keeps its clear secrets when a key is added, and reading
// them with the key then fails with seal.ErrNotSealed.
var sealedPlaces []sealedPlace

// SealKey is the key secrets are sealed with; nil means they are stored in
// clear. Seal and open every stored secret with it.
func (s *Store) SealKey() *seal.Key { return s.opts.SealKey }

// Resealed is the number of secrets stored in clear that Open sealed
// because a key was used on this database for the first time.
func (s *Store) Resealed() int { return s.resealed }

// CompactError is why Open could not compact the file after sealing its
// secrets (their clear copies stay in free pages until reused), or nil.
// It is tried again at the next Open.
func (s *Store) CompactError() error { return s.compactErr }

// initSeal compares the key with the one the database was sealed with and,
// on a key's first use, seals the clear secrets and records the key. It
// runs in Open's first transaction, before anything reads a secret.
func (s *Store) initSeal(tx *bolt.Tx) error {
	meta := tx.Bucket(bktMeta)
	check, key := meta.Get(keySealCheck), s.opts.SealKey
	switch {
	case check == nil && key == nil:
		return nil
	case check == nil:
		n, err := resealPlaces(tx, key, sealedPlaces)
		if err != nil {
			return err
		}
		s.resealed = n
		if err := meta.Put(keyCompact, []byte{1}); err != nil {
			return err
		}
		// A random plaintext: the check value proves the key, and says
		// nothing that any other blob does not.
		random := make([]byte, 32)
		rand.Read(random)
		return meta.Put(keySealCheck, key.Seal(adSealCheck, random))
	case key == nil:
		return ErrSealKeyMissing
	}
	if _, err := key.Open(adSealCheck, check); err != nil {
		if errors.Is(err, seal.ErrWrongKey) {
			return ErrSealKeyWrong
		}
		return fmt.Errorf("secrets key check value in the database: %w", err)
	}
	return nil
}

// resealPlaces seals with key every clear secret in places and returns how
// many it sealed. A secret already sealed must open with key: sealed
// blobs and a missing check value mean the database was altered, and
// recording a new key over them would hide it.
func resealPlaces(tx *bolt.Tx, key *seal.Key, places []sealedPlace) (int, error) {
	n := 0
	for _, p := range places {
		b := tx.Bucket(p.bucket)
		if b == nil {
			continue
		}
		type put struct{ k, v []byte }
		var puts []put
		visit := func(k, v []byte) error {
			if v == nil {
				return nil
			}
			ad := p.ad(k)
			if seal.IsSealed(v) {
				if _, err := key.Open(ad, v); err != nil {
					return fmt.Errorf("sealed secret %s/%q: %w", p.bucket, k, err)
				}
				return nil
			}
			pt, err := (*seal.Key)(nil).Open(nil, v)
			if err != nil {
				return fmt.Errorf("secret %s/%q: %w", p.bucket, k, err)
			}
			// bbolt's keys point into the mmap, valid only until the
			// first write: copy before writing.
			puts = append(puts, put{append([]byte(nil), k...), key.Seal(ad, pt)})
			clear(pt)
			return nil
		}
		var err error
		if p.key != nil {
			if v := b.Get(p.key); v != nil {
				err = visit(p.key, v)
			}
		} else {
			// Writes invalidate a cursor, hence collect first.
			err = b.ForEach(visit)
		}
		if err != nil {
			return 0, err
		}
		for _, w := range puts {
			if err := b.Put(w.k, w.v); err != nil {
				return 0, err
			}
		}
		n += len(puts)
	}
	return n, nil
}
