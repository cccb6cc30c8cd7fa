package store

import (
	"context"
	"encoding/json"
	"fmt"
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
)

func init() {
	allBuckets = append(allBuckets, bktManaged, bktManagedNames, bktManagedSecrets)
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
}

// ManagedEndpoints reads every managed endpoint with its secrets opened.
func (s *Store) ManagedEndpoints() ([]Managed, error) {
	var out []Managed
	err := s.db.View(func(tx *bolt.Tx) error {
		secrets := tx.Bucket(bktManagedSecrets)
		return tx.Bucket(bktManaged).ForEach(func(k, v []byte) error {
			var m Managed
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("managed endpoint %s: %w", k, err)
			}
			if blob := secrets.Get(k); blob != nil {
				plain, err := s.opts.SealKey.Open(k, blob)
				if err != nil {
					return fmt.Errorf("managed endpoint %s: secrets: %w", m.Name, err)
				}
				m.Secrets = plain
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
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
	return s.submit(ctx, func(tx *bolt.Tx, _ *txState) error {
		names := tx.Bucket(bktManagedNames)
		if create {
			if names.Get([]byte(m.Name)) != nil {
				return ErrExists
			}
			if err := names.Put([]byte(m.Name), []byte(m.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bktEndpoints).Put([]byte(m.ID), encodeEndpointState(EndpointState{FirstSeen: m.Created})); err != nil {
				return err
			}
		} else if tx.Bucket(bktManaged).Get([]byte(m.ID)) == nil {
			return ErrNotFound
		}
		if err := tx.Bucket(bktManaged).Put([]byte(m.ID), rec); err != nil {
			return err
		}
		return tx.Bucket(bktManagedSecrets).Put([]byte(m.ID), blob)
	})
}

// DeleteManaged removes a managed endpoint's records and state. Its
// pending deliveries are parked by the caller (ParkEndpoint), which keeps
// them, and their history, under the id no other endpoint will get.
func (s *Store) DeleteManaged(ctx context.Context, id, name string) error {
	return s.submit(ctx, func(tx *bolt.Tx, _ *txState) error {
		if tx.Bucket(bktManaged).Get([]byte(id)) == nil {
			return ErrNotFound
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
