package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The customer portal's records (SPEC §12). Sessions are server-side so
// they can be revoked: portal_sessions maps the SHA-256 of a session id
// (never the id itself, so a copy of the database logs no one in) to the
// session; portal_session_tenants (tenant \0 hash → nil) finds a tenant's
// sessions when the tenant is deleted. portal_tokens holds the ids of
// magic-link tokens already used, with their expiry, so each link logs in
// once; both expire and are purged. The portal's HMAC key, when no
// key_file is set, is generated once and kept in meta, sealed like the
// managed secrets.
var (
	bktPortalSessions = []byte("portal_sessions")
	bktPortalTenants  = []byte("portal_session_tenants")
	bktPortalTokens   = []byte("portal_tokens")
	// bktPortalRevoked: tenant → when its links were revoked (Unix nanos)
	// and until when that matters (the longest a link lives, Unix secs).
	bktPortalRevoked = []byte("portal_revoked")

	keyPortalKey = []byte("portal_key")
	// adPortalKey differs from every endpoint id and the seal check's
	// label, so no other blob can stand in for the key.
	adPortalKey = []byte("hookd portal key")
)

func init() {
	allBuckets = append(allBuckets, bktPortalSessions, bktPortalTenants, bktPortalTokens, bktPortalRevoked)
	sealedPlaces = append(sealedPlaces, sealedPlace{bucket: bktMeta, key: keyPortalKey, ad: func([]byte) []byte { return adPortalKey }})
}

// PortalSession is a logged-in browser as stored. All marks an operator's
// session (/ui/ on the admin listener), which has no tenant.
type PortalSession struct {
	Tenant   string    `json:"tenant,omitempty"`
	All      bool      `json:"all,omitempty"`
	Caps     uint8     `json:"caps"`
	CSRF     string    `json:"csrf"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	// IdleExpires moves with LastSeen; Expires never moves.
	IdleExpires time.Time `json:"idle_expires"`
	Expires     time.Time `json:"expires"`
	// AdminPrint: an operator session's fingerprint of the admin token it
	// was made under ("" for none), keyed by its cookie, which the database
	// does not hold: setting or changing the token ends the sessions made
	// before, and the database gives nothing to guess the token against.
	AdminPrint string `json:"admin_print,omitempty"`
}

// Live reports whether the session may still be used at now.
func (p *PortalSession) Live(now time.Time) bool {
	return now.Before(p.Expires) && now.Before(p.IdleExpires)
}

// PortalKey returns the portal's HMAC key, generating and storing a
// random one of size bytes on first use.
func (s *Store) PortalKey(ctx context.Context, size int) ([]byte, error) {
	var blob []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		blob = bytes.Clone(tx.Bucket(bktMeta).Get(keyPortalKey))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if blob == nil {
		fresh := make([]byte, size)
		rand.Read(fresh)
		sealed := s.opts.SealKey.Seal(adPortalKey, fresh)
		// Two first uses may race: the committer runs one after the
		// other, and the second keeps the first one's key.
		err := s.submit(ctx, func(tx *bolt.Tx, _ *txState) error {
			meta := tx.Bucket(bktMeta)
			if meta.Get(keyPortalKey) == nil {
				return meta.Put(keyPortalKey, sealed)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store the portal key: %w", err)
		}
		return s.PortalKey(ctx, size)
	}
	key, err := s.opts.SealKey.Open(adPortalKey, blob)
	if err != nil {
		return nil, fmt.Errorf("portal key: %w", err)
	}
	return key, nil
}

// ErrTokenUsed: the magic link's token was already used to log in.
var ErrTokenUsed = fmt.Errorf("token already used")

// ErrTokenRevoked: the magic link was minted before its tenant's links
// were revoked (the tenant was deleted).
var ErrTokenRevoked = fmt.Errorf("token revoked")

// PortalLogin records token id as used (until tokenExpires) and stores
// the new session under hash, in one commit: a token that logs in twice,
// concurrently or not, gets ErrTokenUsed the second time.
func (s *Store) PortalLogin(ctx context.Context, tokenID []byte, issued, tokenExpires time.Time, hash []byte, sess PortalSession) error {
	rec, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	id, h := bytes.Clone(tokenID), bytes.Clone(hash)
	return s.submit(ctx, func(tx *bolt.Tx, _ *txState) error {
		if v := tx.Bucket(bktPortalRevoked).Get([]byte(sess.Tenant)); len(v) == 16 && issued.UnixNano() <= int64(binary.BigEndian.Uint64(v)) {
			return refuse(ErrTokenRevoked)
		}
		used := tx.Bucket(bktPortalTokens)
		if used.Get(id) != nil {
			return refuse(ErrTokenUsed)
		}
		if err := used.Put(id, binary.BigEndian.AppendUint64(nil, uint64(tokenExpires.Unix()))); err != nil {
			return err
		}
		return putPortalSession(tx, h, rec, sess)
	})
}

// PutPortalSession stores a session (an operator's: no token is spent).
func (s *Store) PutPortalSession(ctx context.Context, hash []byte, sess PortalSession) error {
	rec, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	h := bytes.Clone(hash)
	return s.submit(ctx, func(tx *bolt.Tx, _ *txState) error { return putPortalSession(tx, h, rec, sess) })
}

func putPortalSession(tx *bolt.Tx, hash, rec []byte, sess PortalSession) error {
	if sess.Tenant != "" {
		if err := tx.Bucket(bktPortalTenants).Put(tenantSessionKey(sess.Tenant, hash), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bktPortalSessions).Put(hash, rec)
}

func tenantSessionKey(tenant string, hash []byte) []byte {
	return append(append([]byte(tenant), 0), hash...)
}

// PortalSession reads the session stored under hash; ErrNotFound when
// there is none. Expiry is the caller's to check (Live).
func (s *Store) PortalSession(hash []byte) (*PortalSession, error) {
	var sess *PortalSession
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktPortalSessions).Get(hash)
		if v == nil {
			return ErrNotFound
		}
		sess = &PortalSession{}
		return json.Unmarshal(v, sess)
	})
	return sess, err
}

// TouchPortalSession moves a session's idle expiry, without waiting for
// the commit: losing a touch only shortens the session.
func (s *Store) TouchPortalSession(hash []byte, lastSeen, idleExpires time.Time) {
	h := bytes.Clone(hash)
	s.submitAsync(func(tx *bolt.Tx, _ *txState) error {
		b := tx.Bucket(bktPortalSessions)
		v := b.Get(h)
		if v == nil {
			return nil // logged out meanwhile
		}
		var sess PortalSession
		if err := json.Unmarshal(v, &sess); err != nil {
			return err
		}
		sess.LastSeen, sess.IdleExpires = lastSeen, idleExpires
		rec, err := json.Marshal(sess)
		if err != nil {
			return err
		}
		return b.Put(h, rec)
	}, func(error) {})
}

// DeletePortalSession deletes one session (logout); a missing one is not
// an error.
func (s *Store) DeletePortalSession(ctx context.Context, hash []byte) error {
	h := bytes.Clone(hash)
	return s.submit(ctx, func(tx *bolt.Tx, _ *txState) error { return deletePortalSession(tx, h) })
}

func deletePortalSession(tx *bolt.Tx, hash []byte) error {
	b := tx.Bucket(bktPortalSessions)
	v := b.Get(hash)
	if v == nil {
		return nil
	}
	var sess PortalSession
	if err := json.Unmarshal(v, &sess); err == nil && sess.Tenant != "" {
		if err := tx.Bucket(bktPortalTenants).Delete(tenantSessionKey(sess.Tenant, hash)); err != nil {
			return err
		}
	}
	return b.Delete(hash)
}

// DeleteOperatorSessions deletes every operator session (the admin
// token changed) and returns how many there were.
func (s *Store) DeleteOperatorSessions(ctx context.Context) (int, error) {
	n := 0
	err := s.submit(ctx, func(tx *bolt.Tx, _ *txState) (err error) {
		n, err = deleteSessions(tx, func(sess *PortalSession) bool { return sess != nil && sess.All })
		return err
	})
	return n, err
}

// deleteSessions deletes the sessions gone says to (given nil for a
// record that does not decode) and returns how many.
func deleteSessions(tx *bolt.Tx, gone func(*PortalSession) bool) (int, error) {
	var dead [][]byte
	err := tx.Bucket(bktPortalSessions).ForEach(func(k, v []byte) error {
		var sess PortalSession
		p := &sess
		if json.Unmarshal(v, p) != nil {
			p = nil
		}
		if gone(p) {
			dead = append(dead, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, h := range dead {
		if err := deletePortalSession(tx, h); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}

// DeleteTenantSessions deletes every session of tenant and returns how
// many there were; links of the tenant issued up to at are refused from
// then on (until linksUntil, when the last of them has expired anyway).
func (s *Store) DeleteTenantSessions(ctx context.Context, tenant string, at, linksUntil time.Time) (int, error) {
	n := 0
	err := s.submit(ctx, func(tx *bolt.Tx, _ *txState) error {
		n = 0
		mark := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), uint64(linksUntil.Unix()))
		if err := tx.Bucket(bktPortalRevoked).Put([]byte(tenant), mark); err != nil {
			return err
		}
		prefix := append([]byte(tenant), 0)
		var hashes [][]byte
		c := tx.Bucket(bktPortalTenants).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			hashes = append(hashes, bytes.Clone(k[len(prefix):]))
		}
		for _, h := range hashes {
			if err := deletePortalSession(tx, h); err != nil {
				return err
			}
			// A dangling index entry (no session) is removed too.
			if err := tx.Bucket(bktPortalTenants).Delete(tenantSessionKey(tenant, h)); err != nil {
				return err
			}
		}
		n = len(hashes)
		return nil
	})
	return n, err
}

// PurgePortal deletes the sessions and used token ids that expired by
// now and returns how many.
func (s *Store) PurgePortal(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.submit(ctx, func(tx *bolt.Tx, _ *txState) error {
		var err error
		if n, err = deleteSessions(tx, func(sess *PortalSession) bool { return sess == nil || !sess.Live(now) }); err != nil {
			return err
		}
		used, err := purgeExpired(tx.Bucket(bktPortalTokens), func(v []byte) bool {
			return len(v) != 8 || int64(binary.BigEndian.Uint64(v)) <= now.Unix()
		})
		if err != nil {
			return err
		}
		n += used
		_, err = purgeExpired(tx.Bucket(bktPortalRevoked), func(v []byte) bool {
			return len(v) != 16 || int64(binary.BigEndian.Uint64(v[8:])) <= now.Unix()
		})
		return err
	})
	return n, err
}

// purgeExpired deletes the keys of b whose value expired says is past (or
// unreadable) and returns how many.
func purgeExpired(b *bolt.Bucket, expired func(v []byte) bool) (int, error) {
	var dead [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		if expired(v) {
			dead = append(dead, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}
