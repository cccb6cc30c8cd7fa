package store

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// EndpointState is what hookd remembers about an endpoint beyond its config.
type EndpointState struct {
	Disabled bool
	Reason   string    // why it was disabled
	Since    time.Time // when it was disabled
	// By is who disabled it: ByOperator, ByTenant or ByHookd (read from
	// the reason for a state stored before hookd recorded it).
	By        string
	FirstSeen time.Time // when it first appeared in the config
}

// Who disables an endpoint (EndpointState.By).
const (
	ByOperator = "operator" // the admin API, CLI or /ui/
	ByTenant   = "tenant"   // the customer, in the portal
	ByHookd    = "hookd"    // a 410 Gone or disable_after
)

// The reasons a disable through the API stores; a state stored before By
// was (version 1) is read by them.
const (
	ReasonOperator = "disabled by operator"
	ReasonTenant   = "disabled by the tenant in the portal"
)

// EndpointStates reads every stored endpoint state.
func (s *Store) EndpointStates() (map[string]EndpointState, error) {
	out := map[string]EndpointState{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktEndpoints).ForEach(func(k, v []byte) error {
			st, err := decodeEndpointState(v)
			if err != nil {
				return err
			}
			out[string(k)] = st
			return nil
		})
	})
	return out, err
}

// EndpointStatesOf reads the states of the endpoints with these ids (the
// views of a page of endpoints: not every state in the database).
func (s *Store) EndpointStatesOf(ids []string) (map[string]EndpointState, error) {
	out := make(map[string]EndpointState, len(ids))
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktEndpoints)
		for _, id := range ids {
			if v := b.Get([]byte(id)); v != nil {
				st, err := decodeEndpointState(v)
				if err != nil {
					return err
				}
				out[id] = st
			}
		}
		return nil
	})
	return out, err
}

// UpdateEndpointState changes an endpoint's persisted state (disabled by a
// 410 or an operator, first seen) in one read-modify-write transaction;
// state is not config, so it survives reloads and restarts.
// An error from fn aborts the change and is returned (a rule the state
// must meet is checked in the transaction that writes it).
func (s *Store) UpdateEndpointState(ctx context.Context, name string, fn func(*EndpointState) error) error {
	return s.UpdateEndpointStates(ctx, []string{name}, fn)
}

// UpdateEndpointStates applies fn to several endpoints' states in one
// transaction: a start with many new endpoints waits for one commit, not
// one per endpoint.
func (s *Store) UpdateEndpointStates(ctx context.Context, names []string, fn func(*EndpointState) error) error {
	return s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
		b := tx.Bucket(bktEndpoints)
		states := make([]EndpointState, len(names))
		for i, name := range names {
			es, err := decodeEndpointState(b.Get([]byte(name)))
			if err != nil {
				return err
			}
			if err := fn(&es); err != nil {
				return refuse(err) // before any write
			}
			states[i] = es
		}
		for i, name := range names {
			if err := b.Put([]byte(name), encodeEndpointState(states[i])); err != nil {
				return err
			}
		}
		return nil
	})
}

// MoveEndpointState gives the endpoint id to the state stored under from,
// unless to has one already; from keeps none.
func (s *Store) MoveEndpointState(ctx context.Context, from, to string) error {
	return s.submit(ctx, func(tx *bolt.Tx, st *txState) error {
		b := tx.Bucket(bktEndpoints)
		v := b.Get([]byte(from))
		if v == nil || b.Get([]byte(to)) != nil {
			return nil
		}
		if err := b.Put([]byte(to), bytes.Clone(v)); err != nil {
			return err
		}
		return b.Delete([]byte(from))
	})
}

func encodeEndpointState(es EndpointState) []byte {
	enc := encoder{}
	enc.byte1(2)
	enc.boolean(es.Disabled)
	enc.str(es.Reason)
	enc.i64(nanos(es.Since))
	enc.i64(nanos(es.FirstSeen))
	enc.str(es.By) // version 2
	return enc.b
}

func decodeEndpointState(v []byte) (EndpointState, error) {
	if v == nil {
		return EndpointState{}, nil
	}
	d := decoder{b: v}
	version := d.byte1()
	es := EndpointState{Disabled: d.boolean(), Reason: d.str(), Since: fromNanos(d.i64()), FirstSeen: fromNanos(d.i64())}
	switch {
	case version >= 2:
		es.By = d.str()
	case !es.Disabled:
	case es.Reason == ReasonOperator:
		// The operator's reason, held since before hookd recorded who; a
		// customer's portal disable before 2026-11-25 was stored with
		// it too, and is taken for the operator's.
		es.By = ByOperator
	case es.Reason == ReasonTenant:
		es.By = ByTenant
	default:
		es.By = ByHookd // a 410 or disable_after
	}
	return es, d.err
}
