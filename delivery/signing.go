package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	case "", "standard":
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
		return &standardSigner{keys: keys}, nil
	case "hmac-sha256":
		if c.Secret == "" {
			return nil, errors.New("hmac-sha256 signing needs a secret")
		}
		if len(c.PreviousSecrets) > 0 {
			return nil, errors.New("previous_secrets is only supported by the standard scheme")
		}
		s := &hmacSigner{secret: []byte(c.Secret), header: c.Header, prefix: c.Prefix, tsHeader: c.TimestampHeader}
		if s.header == "" {
			s.header = "X-Webhook-Signature"
		}
		switch c.Encoding {
		case "", "hex":
			s.hex = true
		case "base64":
		default:
			return nil, fmt.Errorf("encoding %q: must be hex or base64", c.Encoding)
		}
		content := c.Content
		if content == "" {
			content = "{body}"
		}
		var err error
		if s.content, err = parseTemplate(content, "body", "timestamp", "id", "type"); err != nil {
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

type noneSigner struct{}

func (noneSigner) Sign(dst []Header, _ *Message) []Header { return dst }

// standardSigner implements https://www.standardwebhooks.com: HMAC-SHA256
// over "{id}.{timestamp}.{body}", one v1 signature per key for rotation.
type standardSigner struct{ keys [][]byte }

func (s *standardSigner) Sign(dst []Header, m *Message) []Header {
	ts := strconv.FormatInt(m.Timestamp.Unix(), 10)
	var sig []byte
	var sum [sha256.Size]byte
	for i, k := range s.keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(m.ID))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(m.Body)
		if i > 0 {
			sig = append(sig, ' ')
		}
		sig = append(sig, "v1,"...)
		sig = base64.StdEncoding.AppendEncode(sig, mac.Sum(sum[:0]))
	}
	return append(dst,
		Header{"webhook-id", m.ID},
		Header{"webhook-timestamp", ts},
		Header{"webhook-signature", string(sig)})
}

// hmacSigner is the generic scheme most platforms use: HMAC-SHA256 of a
// content template with the secret as raw bytes, in one header.
type hmacSigner struct {
	secret   []byte
	header   string
	prefix   string
	hex      bool
	content  template
	tsHeader string
}

func (s *hmacSigner) Sign(dst []Header, m *Message) []Header {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write(s.content.appendTo(make([]byte, 0, len(m.Body)+64), m))
	var sum [sha256.Size]byte
	digest := mac.Sum(sum[:0])
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
