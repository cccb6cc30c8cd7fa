package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"

	"hookd/api"
	"hookd/config"
)

// A magic-link token is
//
//	base64url(payload) "." base64url(HMAC-SHA256(key, label | payload))
//	payload = id (16 random bytes) | issued (8, big-endian Unix nanoseconds) |
//	          expiry (8, big-endian Unix seconds) | caps (1) | tenant
//
// Everything the login needs is in it, signed, so minting writes nothing;
// the id is what the store remembers once the token is used (single use),
// and the issue time is what a tenant's deletion revokes (every link
// issued until then).
// The label keeps a token's MAC from being valid for any other use of the
// key.

const (
	tokenIDSize = 16
	tokenHead   = tokenIDSize + 8 + 8 + 1
	// MaxLinkTTL is the longest a magic link may live.
	MaxLinkTTL = 24 * time.Hour
)

var tokenLabel = []byte("hookd portal token v2\x00")

type token struct {
	id      [tokenIDSize]byte
	issued  time.Time
	expires time.Time
	caps    Caps
	tenant  string
}

func signToken(key []byte, t token) string {
	p := make([]byte, 0, tokenHead+len(t.tenant))
	p = append(p, t.id[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(t.issued.UnixNano()))
	p = binary.BigEndian.AppendUint64(p, uint64(t.expires.Unix()))
	p = append(p, byte(t.caps))
	p = append(p, t.tenant...)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(p) + "." + enc.EncodeToString(tokenMAC(key, p))
}

func tokenMAC(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(tokenLabel)
	m.Write(payload)
	return m.Sum(nil)
}

// parseToken checks s's signature first (nothing unsigned is looked at),
// then its expiry at now.
func parseToken(key []byte, s string, now time.Time) (token, error) {
	var t token
	p64, m64, ok := strings.Cut(s, ".")
	if !ok || len(s) > 512 {
		return t, errTokenInvalid
	}
	// Strict: one token has one spelling (no stray trailing bits).
	enc := base64.RawURLEncoding.Strict()
	payload, err1 := enc.DecodeString(p64)
	mac, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, tokenMAC(key, payload)) {
		return t, errTokenInvalid
	}
	// Signed, so well formed unless the key leaked; checked anyway.
	if len(payload) <= tokenHead {
		return t, errTokenInvalid
	}
	copy(t.id[:], payload)
	t.issued = time.Unix(0, int64(binary.BigEndian.Uint64(payload[tokenIDSize:])))
	t.expires = time.Unix(int64(binary.BigEndian.Uint64(payload[tokenIDSize+8:])), 0)
	t.caps = Caps(payload[tokenIDSize+16])
	t.tenant = string(payload[tokenHead:])
	if !config.ValidID(t.tenant) || !t.caps.Has(CapView) || t.caps&^AllCaps != 0 {
		return t, errTokenInvalid
	}
	if !now.Before(t.expires) {
		return t, errTokenExpired
	}
	return t, nil
}

// Mint makes a magic link that logs one browser into tenant's portal with
// caps (view is always added) until it is used or ttl has passed. It
// stores nothing: the token carries what the login needs, signed.
func (s *Server) Mint(ctx context.Context, tenant string, ttl time.Duration, caps Caps) (link, tok string, expires time.Time, err error) {
	switch {
	case s.key == nil:
		return "", "", time.Time{}, ErrPortalOff
	case !config.ValidID(tenant):
		return "", "", time.Time{}, api.BadRequest("tenant: %s", config.IDRule)
	case ttl < time.Second || ttl > MaxLinkTTL:
		return "", "", time.Time{}, api.BadRequest("ttl: must be between 1s and 24h")
	case caps&^AllCaps != 0:
		return "", "", time.Time{}, api.BadRequest("capabilities: unknown capability")
	}
	t := token{caps: caps | CapView, tenant: tenant, issued: s.now()}
	rand.Read(t.id[:])
	// Whole seconds: the token carries Unix seconds, and the answer's
	// expires_at must be the instant the token stops working. Rounded
	// up, so a link lives at least ttl.
	t.expires = s.now().Add(ttl + time.Second - 1).Truncate(time.Second)
	tok = signToken(s.key, t)
	return s.publicURL() + "/login?token=" + url.QueryEscape(tok), tok, t.expires, nil
}

// publicURL is where customers reach the portal, without a trailing slash.
func (s *Server) publicURL() string {
	if u := s.conf().Portal.PublicURL; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	return "http://" + s.addr
}

// capNames are the capabilities' names in the admin API and the tokens.
var capTable = []struct {
	c    Cap
	name string
}{{CapView, "view"}, {CapManageEndpoints, "manage_endpoints"}, {CapResend, "resend"}, {CapTest, "test"},
	{CapViewSecret, "view_secret"}, {CapRotateSecret, "rotate_secret"}}

// ParseCaps reads capability names; nil means all of them. An unknown
// name is an error naming it.
func ParseCaps(names []string) (Caps, error) {
	if names == nil {
		return AllCaps, nil
	}
	c := CapView
next:
	for _, n := range names {
		for _, x := range capTable {
			if x.name == n {
				c |= x.c
				continue next
			}
		}
		return 0, fmt.Errorf("%q is not a capability (view, manage_endpoints, resend, test, view_secret, rotate_secret)", n)
	}
	return c, nil
}

// Names lists c's capabilities by name.
func (c Cap) Names() []string {
	var out []string
	for _, x := range capTable {
		if c.Has(x.c) {
			out = append(out, x.name)
		}
	}
	return out
}

func capNames(c Cap) string { return strings.Join(c.Names(), ", ") }
