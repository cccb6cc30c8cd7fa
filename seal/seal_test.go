package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t *testing.T) *Key {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	k, err := FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := mustKey(t)
	ad := []byte("ep_01")
	for _, pt := range [][]byte{[]byte("whsec_c2VjcmV0"), {}, bytes.Repeat([]byte{0}, 1000)} {
		blob := k.Seal(ad, pt)
		if !IsSealed(blob) || IsClear(blob) {
			t.Fatalf("blob %x not sealed", blob)
		}
		if len(pt) > 4 && bytes.Contains(blob, pt) {
			t.Fatal("blob contains the plaintext")
		}
		got, err := k.Open(ad, blob)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("open = %q, %v; want %q", got, err, pt)
		}
	}
	a, b := k.Seal(ad, []byte("x")), k.Seal(ad, []byte("x"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same value are equal: nonce reused")
	}
}

func TestSealDoesNotAlias(t *testing.T) {
	pt := []byte("secret")
	for _, k := range []*Key{nil, mustKey(t)} {
		blob := k.Seal(nil, pt)
		got, _ := k.Open(nil, blob)
		got[0] = 'X'
		blob[len(blob)-1] ^= 1
		if string(pt) != "secret" {
			t.Fatalf("%v: plaintext changed", k)
		}
	}
}

func TestOpenFailures(t *testing.T) {
	k, other := mustKey(t), mustKey(t)
	blob := k.Seal([]byte("ep_01"), []byte("whsec_c2VjcmV0"))

	if _, err := other.Open([]byte("ep_01"), blob); !errors.Is(err, ErrWrongKey) {
		t.Errorf("other key: %v", err)
	}
	if _, err := k.Open([]byte("ep_02"), blob); !errors.Is(err, ErrCorrupt) {
		t.Errorf("other associated data: %v", err)
	}
	if _, err := k.Open(nil, blob); !errors.Is(err, ErrCorrupt) {
		t.Errorf("no associated data: %v", err)
	}
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x40
		_, err := k.Open([]byte("ep_01"), bad)
		if err == nil {
			t.Fatalf("byte %d altered: opened", i)
		}
		// An altered key id reads as another key's blob; anything else
		// as damage.
		want := ErrCorrupt
		if i >= 1 && i < headerSize {
			want = ErrWrongKey
		}
		if !errors.Is(err, want) {
			t.Errorf("byte %d altered: %v, want %v", i, err, want)
		}
	}
	for _, bad := range [][]byte{nil, {}, {0x01}, blob[:sealedMin-1], {0x7f, 1, 2}} {
		if _, err := k.Open(nil, bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("open %x: %v", bad, err)
		}
	}
	if _, err := (*Key)(nil).Open([]byte("ep_01"), blob); !errors.Is(err, ErrNoKey) {
		t.Errorf("nil key on sealed: %v", err)
	}
}

func TestClearAndSealed(t *testing.T) {
	var none *Key
	k := mustKey(t)
	clearBlob := none.Seal([]byte("ep_01"), []byte("whsec_c2VjcmV0"))
	if !IsClear(clearBlob) || IsSealed(clearBlob) {
		t.Fatalf("nil key wrote %x", clearBlob)
	}
	pt, err := none.Open([]byte("anything"), clearBlob)
	if err != nil || string(pt) != "whsec_c2VjcmV0" {
		t.Fatalf("nil key open = %q, %v", pt, err)
	}
	if _, err := k.Open([]byte("ep_01"), clearBlob); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("key on clear: %v", err)
	}
	// Sealing a clear secret when a key is added: read it without a key,
	// seal it with one.
	sealed := k.Seal([]byte("ep_01"), pt)
	if got, err := k.Open([]byte("ep_01"), sealed); err != nil || string(got) != "whsec_c2VjcmV0" {
		t.Fatalf("resealed open = %q, %v", got, err)
	}
	if IsSealed(nil) || IsClear(nil) {
		t.Fatal("empty blob classified")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := NewKey()
	good := write("good", "  "+text+"\n\n")
	k1, err := LoadKey(good)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := LoadKey(write("same", text))
	if got, err := k2.Open([]byte("a"), k1.Seal([]byte("a"), []byte("s"))); err != nil || string(got) != "s" {
		t.Fatalf("same key from two files: %q, %v", got, err)
	}

	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 31))
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 33))
	for name, content := range map[string]string{
		"empty":    "",
		"short":    short,
		"long":     long,
		"notb64":   "not base64 at all: " + text[:20],
		"whsec":    "whsec_" + text,
		"twolines": text + "\n" + text,
	} {
		p := write(name, content)
		_, err := LoadKey(p)
		if !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
		if content != "" && strings.Contains(err.Error(), content[:min(len(content), 12)]) ||
			strings.Contains(err.Error(), text[:12]) {
			t.Errorf("%s: error %q shows the key", name, err)
		}
	}
	missing := filepath.Join(dir, "missing")
	if _, err := LoadKey(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
}

func TestNewKey(t *testing.T) {
	a, b := NewKey(), NewKey()
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != KeySize || len(a) != 44 {
		t.Fatalf("key %q: %d bytes, %v", a, len(raw), err)
	}
	if a == b {
		t.Fatal("two keys are equal")
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k := mustKey(t)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, "aead") || strings.Contains(s, "0x") || len(s) > 60 {
			t.Errorf("printed key: %s", s)
		}
	}
}
