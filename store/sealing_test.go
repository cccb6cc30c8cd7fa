package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"hookd/seal"
)

func testKey(tb testing.TB, b byte) *seal.Key {
	tb.Helper()
	k, err := seal.FromBytes(bytes.Repeat([]byte{b}, seal.KeySize))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

var (
	bktTestSecrets = []byte("test_secrets")    // internal id → sealed secret
	keyTestPortal  = []byte("test_portal_key") // in meta, among other values
	adTestPortal   = []byte("hookd portal key")
)

// withTestPlaces registers a secrets bucket and a single secret in meta
// for the duration of the test, as managed endpoints and the portal key
// will be.
func withTestPlaces(t *testing.T) {
	saved := sealedPlaces
	sealedPlaces = []sealedPlace{
		{bucket: bktTestSecrets, ad: func(k []byte) []byte { return k }},
		{bucket: bktMeta, key: keyTestPortal, ad: func([]byte) []byte { return adTestPortal }},
	}
	t.Cleanup(func() { sealedPlaces = saved })
}

func reopen(t *testing.T, path string, key *seal.Key) (*Store, error) {
	t.Helper()
	s, err := Open(path, Options{SealKey: key})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// putSecrets stores n secrets and the portal key the way the store will:
// sealed with the store's key (clear blobs without one).
func putSecrets(t *testing.T, s *Store, n int) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bktTestSecrets)
		if err != nil {
			return err
		}
		for i := range n {
			id := fmt.Appendf(nil, "ep_%03d", i)
			if err := b.Put(id, s.SealKey().Seal(id, fmt.Appendf(nil, "whsec_secret%d", i))); err != nil {
				return err
			}
		}
		return tx.Bucket(bktMeta).Put(keyTestPortal, s.SealKey().Seal(adTestPortal, []byte("portal-hmac-key")))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readSecrets opens every stored secret with the store's key and counts
// the sealed ones.
func readSecrets(t *testing.T, s *Store) (secrets map[string]string, sealed int) {
	t.Helper()
	secrets = map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		open := func(name string, ad, v []byte) error {
			pt, err := s.SealKey().Open(ad, v)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if seal.IsSealed(v) {
				sealed++
				if bytes.Contains(v, []byte("secret")) || bytes.Contains(v, []byte("portal")) {
					t.Errorf("%s: sealed blob shows the secret", name)
				}
			}
			secrets[name] = string(pt)
			return nil
		}
		if err := tx.Bucket(bktTestSecrets).ForEach(func(k, v []byte) error { return open(string(k), k, v) }); err != nil {
			return err
		}
		return open("portal", adTestPortal, tx.Bucket(bktMeta).Get(keyTestPortal))
	})
	if err != nil {
		t.Fatal(err)
	}
	return secrets, sealed
}

func TestSealKeyRecordedAndEnforced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	a, b := testKey(t, 1), testKey(t, 2)

	s, err := Open(path, Options{}) // no key: nothing recorded
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatalf("reopen without key: %v", err)
	}
	s.Close()

	if s, err = Open(path, Options{SealKey: a}); err != nil {
		t.Fatal(err)
	}
	if s.SealKey() != a || s.Resealed() != 0 {
		t.Fatalf("SealKey %v, Resealed %d", s.SealKey(), s.Resealed())
	}
	s.Close()

	_, err = Open(path, Options{})
	if !errors.Is(err, ErrSealKeyMissing) || !strings.Contains(err.Error(), "secrets_key_file") {
		t.Fatalf("without the key: %v", err)
	}
	_, err = Open(path, Options{SealKey: b})
	if !errors.Is(err, ErrSealKeyWrong) || !strings.Contains(err.Error(), "secrets_key_file") {
		t.Fatalf("with another key: %v", err)
	}
	// The refusals changed nothing: the first key still opens it.
	if s, err = Open(path, Options{SealKey: a}); err != nil {
		t.Fatalf("with the key again: %v", err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestSealKeyAddedSealsClearSecrets(t *testing.T) {
	withTestPlaces(t)
	path := filepath.Join(t.TempDir(), "hookd.db")
	a, b := testKey(t, 1), testKey(t, 2)

	s, err := reopen(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	putSecrets(t, s, 50)
	want, sealed := readSecrets(t, s)
	if sealed != 0 || len(want) != 51 || want["ep_007"] != "whsec_secret7" || want["portal"] != "portal-hmac-key" {
		t.Fatalf("without a key: %d sealed of %v", sealed, want)
	}
	s.Close()

	// Adding a key seals them all at the next start.
	if s, err = reopen(t, path, a); err != nil {
		t.Fatal(err)
	}
	if s.Resealed() != 51 {
		t.Fatalf("Resealed = %d, want 51", s.Resealed())
	}
	got, sealed := readSecrets(t, s)
	if sealed != 51 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after adding a key: %d sealed, %v", sealed, got)
	}
	// Nor are they left in clear in the file's free pages, where every
	// backup would copy them (black-box testing): the start compacts it.
	if raw, err := os.ReadFile(path); err != nil || bytes.Contains(raw, []byte("whsec_secret7")) || bytes.Contains(raw, []byte("portal-hmac-key")) {
		t.Fatalf("a secret in clear in the file (%v)", err)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("the compaction's copy is left: %v", err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bktMeta).Get(keyCompact) != nil {
			t.Error("the compaction is still marked pending") // a crash before it would leave the mark, for the next start
		}
		return nil
	})
	// Other values in meta are not secrets and stay as they were.
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bktMeta).Get(keySchema); getU64(v) != schemaVersion {
			t.Errorf("schema version now %x", v)
		}
		return nil
	})
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Once sealed, nothing is resealed again, and another key is refused
	// without touching them.
	if _, err := reopen(t, path, b); !errors.Is(err, ErrSealKeyWrong) {
		t.Fatalf("another key: %v", err)
	}
	if s, err = reopen(t, path, a); err != nil {
		t.Fatal(err)
	}
	if s.Resealed() != 0 {
		t.Fatalf("Resealed = %d on a sealed database", s.Resealed())
	}
	if got, sealed = readSecrets(t, s); sealed != 51 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reopened: %d sealed, %v", sealed, got)
	}
	s.Close()
}

// A secret written in clear past a key (a place missing from sealedPlaces
// when the key was added) is an error when read, never quietly used.
func TestClearSecretWithKeyIsRefused(t *testing.T) {
	s := mustOpen(t, Options{SealKey: testKey(t, 1)})
	blob := (*seal.Key)(nil).Seal([]byte("ep_1"), []byte("whsec_x"))
	if _, err := s.SealKey().Open([]byte("ep_1"), blob); !errors.Is(err, seal.ErrNotSealed) {
		t.Fatalf("clear secret with a key: %v", err)
	}
}

// Sealed blobs without a check value mean the database was altered:
// recording a key over them would hide that.
func TestResealRefusesForeignBlobs(t *testing.T) {
	withTestPlaces(t)
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := reopen(t, path, testKey(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	putSecrets(t, s, 3)
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Delete(keySealCheck) })
	s.Close()
	if _, err := reopen(t, path, testKey(t, 1)); !errors.Is(err, seal.ErrWrongKey) {
		t.Fatalf("foreign sealed blobs: %v", err)
	}
	// The failed Open wrote nothing: still no check value.
	if s, err = reopen(t, path, nil); err != nil {
		t.Fatalf("reopen without key: %v", err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bktMeta).Get(keySealCheck) != nil {
			t.Error("check value recorded by a failed Open")
		}
		return nil
	})
}

// A compaction that fails (no room for the copy) does not fail the start:
// the secrets are sealed, and the next start compacts. It made every
// start fail, the database then unreadable without the key too (review).
func TestCompactionAfterSealingRetried(t *testing.T) {
	withTestPlaces(t)
	path := filepath.Join(t.TempDir(), "hookd.db")
	s, err := reopen(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	putSecrets(t, s, 3)
	s.Close()
	// In the copy's way: a directory that cannot be removed.
	if err := os.MkdirAll(filepath.Join(path+".compact", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	a := testKey(t, 1)
	if s, err = reopen(t, path, a); err != nil || s.CompactError() == nil || s.Resealed() != 4 {
		t.Fatalf("open: %v, compact error %v", err, s.CompactError())
	}
	s.Close()
	os.RemoveAll(path + ".compact")
	if s, err = reopen(t, path, a); err != nil || s.CompactError() != nil {
		t.Fatalf("the next open: %v, compact error %v", err, s.CompactError())
	}
	defer s.Close()
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, []byte("whsec_secret1")) {
		t.Fatal("a secret in clear after the retried compaction")
	}
}
