package delivery

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header is one request header.
type Header struct{ Name, Value string }

// Signer adds signature headers for a message. Implementations hold
// pre-decoded keys and are safe for concurrent use.
type Signer interface {
	Sign(dst []Header, m *Message) []Header
}

// SigningConfig is the [endpoints.signing] table after secrets were read.
// Secret values are never printed: SigningConfig has no String method that
// shows them, and errors never include them.
type SigningConfig struct {
	Scheme          string // standard | hmac-sha256 | none
	Secret          string
	PreviousSecrets []string
	PreviousExpire  []time.Time // when each previous secret stops signing; zero or missing = never
	Header          string
	Prefix          string
	Encoding        string // hex | base64
	Content         string
	TimestampHeader string
}

// ErrBadSecret: a standard-scheme secret is not whsec_<base64>.
var ErrBadSecret = errors.New("secret must be whsec_ followed by base64 (see hookd gen-secret)")

// NewSigner builds the signer a SigningConfig describes.
func NewSigner(c SigningConfig) (Signer, error) {
	switch c.Scheme {
	case "none":
		return noneSigner{}, nil
	case "standard":
		if c.Secret == "" {
			return nil, errors.New("standard signing needs a secret")
		}
		var keys [][]byte
		for _, s := range append([]string{c.Secret}, c.PreviousSecrets...) {
			k, err := DecodeStandardSecret(s)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		s := &standardSigner{keys: newMACPools(keys...), expires: make([]time.Time, len(keys))}
		copy(s.expires[1:], c.PreviousExpire)
		return s, nil
	case "hmac-sha256":
		if c.Secret == "" {
			return nil, errors.New("hmac-sha256 signing needs a secret")
		}
		if len(c.PreviousSecrets) > 0 {
			return nil, errors.New("previous_secrets is only supported by the standard scheme")
		}
		// The config fills every setting (its defaults are in one table);
		// an empty header or content here is a mistake, not a default.
		if c.Header == "" || c.Content == "" {
			return nil, errors.New("hmac-sha256 signing needs a header and a content template")
		}
		s := &hmacSigner{mac: newMACPools([]byte(c.Secret))[0], header: c.Header, prefix: c.Prefix, tsHeader: c.TimestampHeader}
		switch c.Encoding {
		case "hex":
			s.hex = true
		case "base64":
		default:
			return nil, fmt.Errorf("encoding %q: must be hex or base64", c.Encoding)
		}
		var err error
		if s.content, err = parseTemplate(c.Content, "body", "timestamp", "id", "type"); err != nil {
			return nil, fmt.Errorf("content: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown scheme %q: must be standard, hmac-sha256 or none", c.Scheme)
}

// DecodeStandardSecret returns the key bytes of a whsec_ secret. Like the
// Standard Webhooks libraries, the prefix is optional.
func DecodeStandardSecret(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(k) == 0 {
		return nil, ErrBadSecret
	}
	return k, nil
}

// NewStandardSecret returns a new whsec_ secret: 32 random bytes in base64.
func NewStandardSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

type noneSigner struct{}

func (noneSigner) Sign(dst []Header, _ *Message) []Header { return dst }

// macPool reuses keyed HMAC-SHA256 states: hmac.New allocates and hashes
// the key's pads on every call, Reset restores the keyed state cheaply.
type macPool struct{ p sync.Pool }

func newMACPools(keys ...[]byte) []*macPool {
	out := make([]*macPool, len(keys))
	for i, k := range keys {
		out[i] = &macPool{p: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
	}
	return out
}

func (mp *macPool) get() hash.Hash {
	h := mp.p.Get().(hash.Hash)
	h.Reset()
	return h
}

func (mp *macPool) put(h hash.Hash) { mp.p.Put(h) }

// standardSigner implements https://www.standardwebhooks.com: HMAC-SHA256
// over "{id}.{timestamp}.{body}", one v1 signature per key for rotation.
type standardSigner struct {
	keys []*macPool
	// expires[i] is when keys[i] stops signing (zero: never); a rotated-out
	// secret signs next to the new one until its overlap ends.
	expires []time.Time
}

func (s *standardSigner) Sign(dst []Header, m *Message) []Header {
	// "{id}.{timestamp}." in one buffer: each Write through the interface
	// would move its argument to the heap.
	pre := make([]byte, 0, len(m.ID)+24)
	pre = append(append(pre, m.ID...), '.')
	pre = strconv.AppendInt(pre, m.Timestamp.Unix(), 10)
	ts := string(pre[len(m.ID)+1:])
	pre = append(pre, '.')
	sig := make([]byte, 0, len(s.keys)*48)
	var sum [sha256.Size]byte
	for i, k := range s.keys {
		if exp := s.expires[i]; !exp.IsZero() && !m.Timestamp.Before(exp) {
			continue
		}
		mac := k.get()
		mac.Write(pre)
		mac.Write(m.Body)
		digest := mac.Sum(sum[:0])
		k.put(mac)
		if len(sig) > 0 {
			sig = append(sig, ' ')
		}
		sig = append(sig, "v1,"...)
		sig = base64.StdEncoding.AppendEncode(sig, digest)
	}
	return append(dst,
		Header{"webhook-id", m.ID},
		Header{"webhook-timestamp", ts},
		Header{"webhook-signature", string(sig)})
}

// hmacSigner is the generic scheme most platforms use: HMAC-SHA256 of a
// content template with the secret as raw bytes, in one header.
type hmacSigner struct {
	mac      *macPool
	header   string
	prefix   string
	hex      bool
	content  template
	tsHeader string
}

func (s *hmacSigner) Sign(dst []Header, m *Message) []Header {
	var sum [sha256.Size]byte
	mac := s.mac.get()
	mac.Write(s.content.appendTo(make([]byte, 0, len(m.Body)+64), m))
	digest := mac.Sum(sum[:0])
	s.mac.put(mac)
	v := []byte(s.prefix)
	if s.hex {
		v = hex.AppendEncode(v, digest)
	} else {
		v = base64.StdEncoding.AppendEncode(v, digest)
	}
	dst = append(dst, Header{s.header, string(v)})
	if s.tsHeader != "" {
		dst = append(dst, Header{s.tsHeader, strconv.FormatInt(m.Timestamp.Unix(), 10)})
	}
	return dst
}
