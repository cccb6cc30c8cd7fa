package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"hookd/seal"
)

func TestPortalLoginIsSingleUse(t *testing.T) {
	s := mustOpen(t, Options{})
	ctx := context.Background()
	now := time.Now()
	sess := PortalSession{Tenant: "t1", Caps: 3, CSRF: "c", Created: now, LastSeen: now, IdleExpires: now.Add(time.Hour), Expires: now.Add(2 * time.Hour)}
	if err := s.PortalLogin(ctx, []byte("tok1"), now, now.Add(time.Minute), []byte("h1"), sess); err != nil {
		t.Fatal(err)
	}
	if err := s.PortalLogin(ctx, []byte("tok1"), now, now.Add(time.Minute), []byte("h2"), sess); !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("second login with the same token: %v, want ErrTokenUsed", err)
	}
	if _, err := s.PortalSession([]byte("h2")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused login stored a session: %v", err)
	}
	got, err := s.PortalSession([]byte("h1"))
	if err != nil || got.Tenant != "t1" || got.CSRF != "c" || !got.Live(now) {
		t.Fatalf("session %+v, %v", got, err)
	}
	s.TouchPortalSession([]byte("h1"), now.Add(time.Minute), now.Add(90*time.Minute))
	s.Flush()
	if got, _ := s.PortalSession([]byte("h1")); !got.IdleExpires.Equal(now.Add(90 * time.Minute)) {
		t.Fatalf("touch: idle expiry %v", got.IdleExpires)
	}
}

func TestPortalRevokeAndPurge(t *testing.T) {
	s := mustOpen(t, Options{})
	ctx := context.Background()
	now := time.Now()
	live := PortalSession{Tenant: "a", Created: now, LastSeen: now, IdleExpires: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	for _, h := range []string{"a1", "a2"} {
		if err := s.PutPortalSession(ctx, []byte(h), live); err != nil {
			t.Fatal(err)
		}
	}
	other := live
	other.Tenant = "ab" // a prefix of another tenant's id must not match
	s.PutPortalSession(ctx, []byte("b1"), other)
	op := live
	op.Tenant, op.All = "", true
	s.PutPortalSession(ctx, []byte("op"), op)
	if n, err := s.DeleteTenantSessions(ctx, "a", now, now.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("revoke a: %d, %v", n, err)
	}
	// Links of a issued until the revocation are refused; later ones and
	// other tenants' work.
	for _, c := range []struct {
		tenant string
		issued time.Time
		want   error
	}{{"a", now, ErrTokenRevoked}, {"a", now.Add(-time.Minute), ErrTokenRevoked}, {"a", now.Add(time.Millisecond), nil}, {"ab", now, nil}} {
		sess := live
		sess.Tenant = c.tenant
		id := []byte(c.tenant + c.issued.String())
		if err := s.PortalLogin(ctx, id, c.issued, now.Add(time.Minute), id, sess); !errors.Is(err, c.want) {
			t.Errorf("login of %s issued %s: %v, want %v", c.tenant, c.issued.Sub(now), err, c.want)
		}
	}
	for h, want := range map[string]bool{"a1": false, "a2": false, "b1": true, "op": true} {
		if _, err := s.PortalSession([]byte(h)); (err == nil) != want {
			t.Errorf("session %s after revoking tenant a: %v", h, err)
		}
	}

	// Purge: expired sessions (idle or absolute) and used token ids go.
	idle := live
	idle.Tenant, idle.IdleExpires = "c", now.Add(-time.Second)
	s.PutPortalSession(ctx, []byte("c1"), idle)
	s.PortalLogin(ctx, []byte("old"), now.Add(time.Second), now.Add(-time.Second), []byte("c2"), live)
	s.PortalLogin(ctx, []byte("new"), now.Add(time.Second), now.Add(time.Hour), []byte("c3"), live)
	n, err := s.PurgePortal(ctx, now)
	if err != nil || n != 2 {
		t.Fatalf("purge: %d, %v; want 2 (one session, one token)", n, err)
	}
	if _, err := s.PortalSession([]byte("c1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("idle session survived the purge: %v", err)
	}
	if err := s.PortalLogin(ctx, []byte("new"), now.Add(time.Second), now.Add(time.Hour), []byte("c4"), live); !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("an unexpired used token was purged: %v", err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bktPortalTenants).Cursor().Seek([]byte("c\x00c1")); bytes.Equal(k, []byte("c\x00c1")) {
			t.Error("the purged session's tenant index entry is left")
		}
		return nil
	})
}

// The generated key is kept across restarts and sealed with the secrets
// key once one is set.
func TestPortalKeyKeptAndSealed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k1, err := s.PortalKey(ctx, 32)
	if err != nil || len(k1) != 32 {
		t.Fatalf("key %d bytes, %v", len(k1), err)
	}
	s.Close()
	raw := make([]byte, seal.KeySize)
	rand.Read(raw)
	key, err := seal.FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Resealed() != 1 {
		t.Errorf("resealed %d secrets, want 1 (the portal key)", s.Resealed())
	}
	k2, err := s.PortalKey(ctx, 32)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("key after restart differs (%v)", err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if !seal.IsSealed(tx.Bucket(bktMeta).Get(keyPortalKey)) {
			t.Error("portal key stored in clear with a secrets key set")
		}
		return nil
	})
}
