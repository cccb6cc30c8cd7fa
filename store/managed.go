package store

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Managed endpoints are created, changed and deleted through the admin
// API. Each has three records: its settings (managed_endpoints, by internal
// id), its name (managed_names: name → id, so names stay unique) and its
// signing secrets (managed_secrets, by id), a seal blob whose associated
// data is the id. Writes go through the committer like everything else:
// a create is committed and synced before the API answers 201, so it
// survives a crash like an acknowledged event.
var (
	bktManaged        = []byte("managed_endpoints")
	bktManagedNames   = []byte("managed_names")
	bktManagedSecrets = []byte("managed_secrets")
	// bktManagedKeys: a create's Idempotency-Key → its endpoint's id,
	// request hash and creation time (encodeKeyEntry), for as long as the
	// endpoint exists.
	bktManagedKeys = []byte("managed_idempotency_keys")
)

// IdempotencyWindow is how long a create's Idempotency-Key answers for
// the endpoint it created, as Stripe's and Svix's do; past it the key is
// free for a new create.
const IdempotencyWindow = 24 * time.Hour

func init() {
	allBuckets = append(allBuckets, bktManaged, bktManagedNames, bktManagedSecrets, bktManagedKeys)
	sealedPlaces = append(sealedPlaces, sealedPlace{bucket: bktManagedSecrets, ad: func(k []byte) []byte { return k }})
}

// Managed is a managed endpoint as stored. Settings is the API's JSON
// object of endpoint settings (without secrets), which PATCH merges into;
// Secrets is the plain JSON of its signing secrets (sealed at rest).
type Managed struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Tenant   string          `json:"tenant,omitempty"`
	Settings json.RawMessage `json:"settings"`
	Created  time.Time       `json:"created_at"`
	Updated  time.Time       `json:"updated_at"`
	Secrets  []byte          `json:"-"`
	// Number is the NextNumber a new endpoint's id was made from: its
	// create records it as used, so no later one gets it again.
	Number uint64 `json:"-"`
	// IdempotencyKey, if set on a create, is recorded with RequestHash
	// (what the request asked for, to tell a retry from another request
	// under the same key) in the same transaction as the endpoint.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	RequestHash    string `json:"-"`
	// State, if set, changes the endpoint's state (a create's starts as
	// first seen at Created) in the same transaction as the record, so a
	// change and the disabled flag sent with it are stored together or not
	// at all. Its error aborts the write.
	State func(*EndpointState) error `json:"-"`
}

// NextNumber hands out a number never handed out before, from the sequence
// that numbers events: managed endpoints' ids are made from them (a create
// records its number as used; one whose create failed may come again,
// harmlessly). Numbers are increasing, not dense. Each is at least the
// current time in microseconds, which the sequence outruns only past a
// million events a second: a database restored from a backup does not give
// again the numbers its original gave after the backup, to endpoints the
// restore has dropped, whose ids a platform may still hold (as long as the
// two machines' clocks agree).
func (s *Store) NextNumber() uint64 {
	floor := uint64(time.Now().UnixMicro())
	for {
		cur := s.seq.Load()
		if next := max(cur+1, floor); s.seq.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// ManagedEndpoints reads every managed endpoint with its secrets opened.
// The records are decoded on every CPU, inside the read transaction (the
// bytes point into the mmap until it ends): with 100,000 endpoints,
// decoding them one after the other was a fifth of the start.
func (s *Store) ManagedEndpoints() ([]Managed, error) {
	var out []Managed
	err := s.db.View(func(tx *bolt.Tx) error {
		secrets := tx.Bucket(bktManagedSecrets)
		var keys, recs, blobs [][]byte
		if err := tx.Bucket(bktManaged).ForEach(func(k, v []byte) error {
			keys, recs, blobs = append(keys, k), append(recs, v), append(blobs, secrets.Get(k))
			return nil
		}); err != nil {
			return err
		}
		out = make([]Managed, len(keys))
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		workers := min(runtime.GOMAXPROCS(0), len(keys)/256+1)
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(keys); i += workers {
					out[i], errs[i] = s.decodeManaged(keys[i], recs[i], blobs[i])
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err // the first, as a walk would have stopped there
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ManagedEndpoint reads the managed endpoint with internal id id, its
// secrets opened (ErrNotFound without one).
func (s *Store) ManagedEndpoint(id string) (Managed, error) {
	var m Managed
	err := s.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bktManaged).Get([]byte(id))
		if rec == nil {
			return ErrNotFound
		}
		var err error
		m, err = s.decodeManaged([]byte(id), rec, tx.Bucket(bktManagedSecrets).Get([]byte(id)))
		return err
	})
	return m, err
}

// decodeManaged decodes a stored record and opens its secrets' blob. The
// result holds no reference to rec or blob, which may point into the mmap.
func (s *Store) decodeManaged(key, rec, blob []byte) (Managed, error) {
	var m Managed
	if err := json.Unmarshal(rec, &m); err != nil {
		return m, fmt.Errorf("managed endpoint %s: %w", key, err)
	}
	if blob != nil {
		plain, err := s.opts.SealKey.Open(key, blob)
		if err != nil {
			return m, fmt.Errorf("managed endpoint %s: secrets: %w", m.Name, err)
		}
		m.Secrets = plain
	}
	return m, nil
}

// PutManaged stores m. With create, its name must be free (ErrExists),
// and its state records it as first seen at m.Created, in the same commit;
// otherwise it replaces the record of the same id, whose name stays.
func (s *Store) PutManaged(ctx context.Context, m Managed, create bool) error {
	rec, err := json.Marshal(m)
	if err != nil {
		return err
	}
	blob := s.opts.SealKey.Seal([]byte(m.ID), m.Secrets)
	return s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
		names := tx.Bucket(bktManagedNames)
		// Ids are made from increasing numbers (ULIDs before): creates
		// arrive nearly in key order, so pages are filled before they
		// split, not left half empty (100,000 endpoints took twice the
		// pages, all of which a start reads).
		byID, secrets, states := tx.Bucket(bktManaged), tx.Bucket(bktManagedSecrets), tx.Bucket(bktEndpoints)
		byID.FillPercent, secrets.FillPercent, states.FillPercent = appendFill, appendFill, appendFill
		// Every refusal before the first write (see refuse).
		keys := tx.Bucket(bktManagedKeys)
		var es EndpointState
		if create {
			if names.Get([]byte(m.Name)) != nil {
				return refuse(ErrExists)
			}
			if m.IdempotencyKey != "" {
				if e, ok := decodeKeyEntry(keys.Get([]byte(m.IdempotencyKey))); ok && e.live(m.Created) {
					return refuse(ErrKeyUsed)
				}
			}
			es.FirstSeen = m.Created
		} else if byID.Get([]byte(m.ID)) == nil {
			return refuse(ErrNotFound)
		} else if m.State != nil {
			var err error
			if es, err = decodeEndpointState(states.Get([]byte(m.ID))); err != nil {
				return err
			}
		}
		if m.State != nil {
			if err := m.State(&es); err != nil {
				return refuse(err)
			}
		}
		if create {
			if err := names.Put([]byte(m.Name), []byte(m.ID)); err != nil {
				return err
			}
			st.seq = max(st.seq, m.Number)
			if m.IdempotencyKey != "" {
				if err := keys.Put([]byte(m.IdempotencyKey), encodeKeyEntry(KeyEntry{ID: m.ID, Hash: m.RequestHash, Created: m.Created})); err != nil {
					return err
				}
			}
		}
		if create || m.State != nil {
			if err := states.Put([]byte(m.ID), encodeEndpointState(es)); err != nil {
				return err
			}
		}
		if err := byID.Put([]byte(m.ID), rec); err != nil {
			return err
		}
		return secrets.Put([]byte(m.ID), blob)
	})
}

// DeleteManaged removes a managed endpoint's records and state. Its
// pending deliveries are parked by the caller (ParkEndpoint), which keeps
// them, and their history, under the id no other endpoint will get.
// check, if set, is given its state and may refuse the delete.
func (s *Store) DeleteManaged(ctx context.Context, id, name string, check func(EndpointState) error) error {
	return s.submit(ctx, func(tx *bolt.Tx, _ *txState) error {
		rec := tx.Bucket(bktManaged).Get([]byte(id))
		if rec == nil {
			return refuse(ErrNotFound)
		}
		if check != nil {
			es, err := decodeEndpointState(tx.Bucket(bktEndpoints).Get([]byte(id)))
			if err != nil {
				return err
			}
			if err := check(es); err != nil {
				return refuse(err)
			}
		}
		// Its create's key goes with it: a retry after the delete creates
		// anew rather than answering for an endpoint that is gone.
		var m struct {
			Key string `json:"idempotency_key"`
		}
		if json.Unmarshal(rec, &m) == nil && m.Key != "" {
			keys := tx.Bucket(bktManagedKeys)
			if e, ok := decodeKeyEntry(keys.Get([]byte(m.Key))); ok && e.ID == id {
				if err := keys.Delete([]byte(m.Key)); err != nil {
					return err
				}
			}
		}
		for _, del := range []struct {
			bkt []byte
			key string
		}{{bktManaged, id}, {bktManagedSecrets, id}, {bktManagedNames, name}, {bktEndpoints, id}} {
			if err := tx.Bucket(del.bkt).Delete([]byte(del.key)); err != nil {
				return err
			}
		}
		return nil
	})
}

// KeyEntry is what a create's Idempotency-Key recorded.
type KeyEntry struct {
	ID      string // the endpoint it created
	Hash    string // of the request, as the daemon computed it
	Created time.Time
}

// IdempotencyKey reads what key recorded, if a create within
// IdempotencyWindow of now recorded it and its endpoint still exists.
func (s *Store) IdempotencyKey(key string, now time.Time) (KeyEntry, bool, error) {
	var e KeyEntry
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		e, ok = decodeKeyEntry(tx.Bucket(bktManagedKeys).Get([]byte(key)))
		ok = ok && e.live(now)
		return nil
	})
	return e, ok, err
}

// live says whether the key still answers for its endpoint at now.
func (e KeyEntry) live(now time.Time) bool { return now.Sub(e.Created) < IdempotencyWindow }

func encodeKeyEntry(e KeyEntry) []byte {
	var enc encoder
	enc.str(e.ID)
	enc.str(e.Hash)
	enc.i64(e.Created.UnixNano())
	return enc.b
}

func decodeKeyEntry(b []byte) (KeyEntry, bool) {
	if b == nil {
		return KeyEntry{}, false
	}
	d := decoder{b: b}
	e := KeyEntry{ID: d.str(), Hash: d.str(), Created: time.Unix(0, d.i64()).UTC()}
	return e, d.err == nil
}
