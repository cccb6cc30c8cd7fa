// Package seal protects secrets that hookd keeps in its database (the
// signing secrets of managed endpoints, the portal's HMAC key) with the
// operator's secrets key ([storage] secrets_key_file).
//
// A stored secret is a blob whose first byte says what it is:
//
//	0x00 | plaintext                               clear: no key was set
//	0x01 | key id (8) | nonce (12) | ciphertext+tag  sealed: AES-256-GCM
//
// Both forms go through the same calls: a nil *Key seals to a clear blob
// and opens clear blobs, so code that stores secrets does not branch on
// whether the operator configured a key. The key id lets Open tell "sealed
// with another key" (ErrWrongKey) from "damaged, or opened with other
// associated data" (ErrCorrupt), which GCM alone cannot.
//
// The AES key and the key id are derived from the file's 32 bytes with
// HKDF-SHA256 under different labels, so the id reveals nothing about the
// AES key. Nonces are random: AES-GCM stays safe for about 2^32 seals under
// one key, far beyond what secret creation and rotation produce.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the length of a secrets key before base64.
const KeySize = 32

const (
	formatClear  byte = 0x00
	formatSealed byte = 0x01

	idSize    = 8
	nonceSize = 12
	tagSize   = 16
	// header is the part of a sealed blob before the nonce; it is
	// authenticated with the caller's associated data, so a blob cannot be
	// relabelled.
	headerSize = 1 + idSize
	sealedMin  = headerSize + nonceSize + tagSize
)

// Sentinel errors of Open and LoadKey.
var (
	// ErrWrongKey: the blob was sealed with a different key.
	ErrWrongKey = errors.New("sealed with a different secrets key")
	// ErrCorrupt: the blob is malformed, was altered, or is opened with
	// associated data other than it was sealed with.
	ErrCorrupt = errors.New("sealed secret is damaged or does not belong here")
	// ErrNoKey: the blob is sealed and no key was given.
	ErrNoKey = errors.New("secret is sealed and no secrets key is set")
	// ErrNotSealed: a key is set but the blob is in clear. Once a key is in
	// use every stored secret is sealed, so a clear one was written around
	// it; reading it anyway would hide that.
	ErrNotSealed = errors.New("secret is stored in clear although a secrets key is set")
	// ErrBadKey: the key file does not hold 32 bytes in base64.
	ErrBadKey = errors.New("secrets key must be 32 bytes in base64 (see hookd gen-secret -key)")
)

// Key seals and opens secrets. A nil *Key is valid and means "no key":
// secrets are stored in clear.
type Key struct {
	aead cipher.AEAD
	id   [idSize]byte
}

// NewKey returns a new secrets key as its file holds it: 32 random bytes
// in base64.
func NewKey() string {
	b := make([]byte, KeySize)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// LoadKey reads a secrets key file. Errors name the file, never its
// content.
func LoadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The *PathError already names the file.
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return ParseKey(b, path)
}

// ParseKey reads a secrets key from the contents b of the file path, and
// clears b. Errors name the file, never its content.
func ParseKey(b []byte, path string) (*Key, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	clear(b)
	if err != nil || len(raw) != KeySize {
		clear(raw)
		return nil, fmt.Errorf("secrets key file %s: %w", path, ErrBadKey)
	}
	k, err := newKey(raw)
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("secrets key file %s: %w", path, err)
	}
	return k, nil
}

// FromBytes makes a key from its 32 raw bytes (tests, and callers that
// hold the key elsewhere than in a file).
func FromBytes(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, ErrBadKey
	}
	return newKey(raw)
}

func newKey(raw []byte) (*Key, error) {
	aesKey, err := hkdf.Expand(sha256.New, raw, "hookd secrets aes-256-gcm v1", 32)
	if err != nil {
		return nil, err
	}
	id, err := hkdf.Expand(sha256.New, raw, "hookd secrets key id v1", idSize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(aesKey)
	clear(aesKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &Key{aead: aead}
	copy(k.id[:], id)
	return k, nil
}

// String keeps the key's material out of logs and error messages that
// print it by accident.
// Same reports whether k and o are the same key (both nil too).
func (k *Key) Same(o *Key) bool {
	return k == o || k != nil && o != nil && k.id == o.id
}

func (k *Key) String() string {
	if k == nil {
		return "seal.Key(none)"
	}
	return "seal.Key(set)"
}

// GoString is String for %#v, which would otherwise print the fields.
func (k *Key) GoString() string { return k.String() }

// Seal returns plaintext sealed with ad as associated data (the same ad is
// needed to open it), or, for a nil key, a clear blob (ad unused). The
// result never aliases plaintext.
func (k *Key) Seal(ad, plaintext []byte) []byte {
	if k == nil {
		return append([]byte{formatClear}, plaintext...)
	}
	out := make([]byte, sealedMin-tagSize, sealedMin+len(plaintext))
	out[0] = formatSealed
	copy(out[1:headerSize], k.id[:])
	rand.Read(out[headerSize : headerSize+nonceSize])
	return k.aead.Seal(out, out[headerSize:headerSize+nonceSize], plaintext, k.adFor(out[:headerSize], ad))
}

// Open returns the plaintext of blob. A nil key opens clear blobs only
// (ErrNoKey for sealed ones); a key opens sealed blobs only (ErrNotSealed
// for clear ones).
func (k *Key) Open(ad, blob []byte) ([]byte, error) {
	if len(blob) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	switch blob[0] {
	case formatClear:
		if k != nil {
			return nil, ErrNotSealed
		}
		return bytes.Clone(blob[1:]), nil
	case formatSealed:
		if k == nil {
			return nil, ErrNoKey
		}
		if len(blob) < sealedMin {
			return nil, fmt.Errorf("%w: truncated", ErrCorrupt)
		}
		if subtle.ConstantTimeCompare(blob[1:headerSize], k.id[:]) != 1 {
			return nil, ErrWrongKey
		}
		nonce := blob[headerSize : headerSize+nonceSize]
		pt, err := k.aead.Open(nil, nonce, blob[headerSize+nonceSize:], k.adFor(blob[:headerSize], ad))
		if err != nil {
			return nil, ErrCorrupt
		}
		if pt == nil {
			pt = []byte{}
		}
		return pt, nil
	default:
		return nil, fmt.Errorf("%w: unknown format %#02x", ErrCorrupt, blob[0])
	}
}

// adFor binds the header to the caller's associated data. The header has a
// fixed length, so concatenating is unambiguous.
func (k *Key) adFor(header, ad []byte) []byte {
	return append(append(make([]byte, 0, len(header)+len(ad)), header...), ad...)
}

// IsSealed reports whether blob is a sealed blob (of any key).
func IsSealed(blob []byte) bool { return len(blob) > 0 && blob[0] == formatSealed }

// IsClear reports whether blob is a clear blob, as a nil key writes.
func IsClear(blob []byte) bool { return len(blob) > 0 && blob[0] == formatClear }
