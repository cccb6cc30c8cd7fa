package delivery

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func headers(hs []Header) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.Name] = h.Value
	}
	return m
}

// The Standard Webhooks specification's published test vector.
func TestStandardVector(t *testing.T) {
	s, err := NewSigner(SigningConfig{Scheme: "standard", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	if err != nil {
		t.Fatal(err)
	}
	h := headers(s.Sign(nil, &Message{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: time.Unix(1614265330, 0), Body: []byte(`{"test": 2432232314}`)}))
	if got, want := h["webhook-signature"], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	if h["webhook-id"] != "msg_p5jXN8AQM9LWM0D4loKWxJek" || h["webhook-timestamp"] != "1614265330" {
		t.Fatalf("headers %v", h)
	}
}

// A built endpoint keeps its secrets in its signer only: printing it, or
// reading its config, shows the scheme and no secret.
func TestEndpointKeepsNoSecret(t *testing.T) {
	const secret, previous = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldC1rZXk="
	e, err := NewEndpoint(EndpointConfig{Name: "x", Envelope: &StandardEnvelope,
		Signing: &SigningConfig{Scheme: "standard", Secret: secret, PreviousSecrets: []string{previous}}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*e.Signing, SigningConfig{Scheme: "standard"}) {
		t.Fatalf("built endpoint's signing config %+v", *e.Signing)
	}
	m := &Message{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: time.Unix(1614265330, 0), Body: []byte(`{"test": 2432232314}`)}
	if sig := headers(e.Sign(m))["webhook-signature"]; !strings.HasPrefix(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,") {
		t.Fatalf("signature %q", sig)
	}
	for _, s := range []string{secret, previous, strings.TrimPrefix(secret, "whsec_")} {
		if strings.Contains(fmt.Sprintf("%+v %#v", e, e), s) {
			t.Fatal("a built endpoint prints a secret")
		}
	}
}

func TestStandardRotationSignsWithEveryKey(t *testing.T) {
	s, err := NewSigner(SigningConfig{Scheme: "standard", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", PreviousSecrets: []string{"whsec_" + "c2Vjb25kLXNlY3JldC1rZXk="}})
	if err != nil {
		t.Fatal(err)
	}
	sig := headers(s.Sign(nil, &Message{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: time.Unix(1614265330, 0), Body: []byte(`{"test": 2432232314}`)}))["webhook-signature"]
	parts := strings.Split(sig, " ")
	if len(parts) != 2 || parts[0] != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("rotation signature %q", sig)
	}
}

func TestStandardRejectsBadSecret(t *testing.T) {
	for _, s := range []string{"", "whsec_not*base64", "whsec_"} {
		if _, err := NewSigner(SigningConfig{Scheme: "standard", Secret: s}); err == nil {
			t.Errorf("secret %q accepted", s)
		} else if strings.Contains(err.Error(), "not*base64") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func TestHMACSchemes(t *testing.T) {
	body := []byte(`{"a":1}`)
	ts := time.Unix(1700000000, 0)
	mac := func(content string) string {
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write([]byte(content))
		return hex.EncodeToString(m.Sum(nil))
	}
	cases := []struct {
		name string
		cfg  SigningConfig
		want map[string]string
	}{
		{"defaults", SigningConfig{Scheme: "hmac-sha256", Secret: "s3cret", Header: "X-Webhook-Signature", Prefix: "sha256=", Encoding: "hex", Content: "{body}"},
			map[string]string{"X-Webhook-Signature": "sha256=" + mac(string(body))}},
		{"seny", SigningConfig{Scheme: "hmac-sha256", Secret: "s3cret", Header: "X-Seny-Signature", Prefix: "sha256=", Encoding: "hex", Content: "{body}"},
			map[string]string{"X-Seny-Signature": "sha256=" + mac(string(body))}},
		{"hume", SigningConfig{Scheme: "hmac-sha256", Secret: "s3cret", Header: "X-Hume-AI-Webhook-Signature", Encoding: "hex", Content: "{body}.{timestamp}", TimestampHeader: "X-Hume-AI-Webhook-Timestamp"},
			map[string]string{"X-Hume-AI-Webhook-Signature": mac(string(body) + ".1700000000"), "X-Hume-AI-Webhook-Timestamp": "1700000000"}},
		{"template", SigningConfig{Scheme: "hmac-sha256", Secret: "s3cret", Header: "X-Webhook-Signature", Encoding: "hex", Content: "{id}:{type}:{timestamp}:{body}"},
			map[string]string{"X-Webhook-Signature": mac("e1:t.x:1700000000:" + string(body))}},
	}
	for _, c := range cases {
		s, err := NewSigner(c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := headers(s.Sign(nil, &Message{ID: "e1", Type: "t.x", Timestamp: ts, Body: body}))
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", c.name, k, got[k], v)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: headers %v", c.name, got)
		}
	}
}

func TestNoneSignsNothing(t *testing.T) {
	s, _ := NewSigner(SigningConfig{Scheme: "none"})
	if h := s.Sign(nil, &Message{}); len(h) != 0 {
		t.Fatal(h)
	}
}

func TestUnknownPlaceholder(t *testing.T) {
	if _, err := NewSigner(SigningConfig{Scheme: "hmac-sha256", Secret: "x", Header: "X-S", Encoding: "hex", Content: "{body}.{nonce}"}); err == nil {
		t.Fatal("accepted {nonce}")
	}
}

func BenchmarkStandardSign(b *testing.B) {
	s, _ := NewSigner(SigningConfig{Scheme: "standard", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	m := &Message{ID: "evt_01HZX", Timestamp: time.Now(), Body: make([]byte, 256)}
	var dst [4]Header
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(dst[:0], m)
	}
}

// The precomputed pad states give crypto/hmac's answer for every key
// length: shorter than, equal to and longer than SHA-256's block.
func TestHMACKeyMatchesCryptoHMAC(t *testing.T) {
	msg := []byte("msg_1.1700000000.{\"a\":1}")
	for _, n := range []int{0, 1, 32, 63, 64, 65, 100, 200} {
		key := bytes.Repeat([]byte{byte(n + 1)}, n)
		want := hmac.New(sha256.New, key)
		want.Write(msg[:6])
		want.Write(msg[6:])
		k := newHMACKey(key)
		got := k.sum(nil, msg[:6], msg[6:])
		if !bytes.Equal(got, want.Sum(nil)) {
			t.Fatalf("key of %d bytes: got %x, want %x", n, got, want.Sum(nil))
		}
	}
}

// pack copies endpoints into shared arrays: each copy must be the same
// endpoint, signing the same way, whatever its signer.
func TestPackKeepsEveryEndpoint(t *testing.T) {
	var eps []*Endpoint
	for i, sc := range []SigningConfig{
		{Scheme: "standard", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{Scheme: "standard", Secret: "whsec_" + strings.Repeat("QUJD", 30)}, // a key over 64 bytes is hashed
		{Scheme: "standard", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", PreviousSecrets: []string{"whsec_c2Vjb25kLXNlY3JldC1rZXk="}},
		{Scheme: "hmac-sha256", Secret: "raw", Header: "X-Sig", Content: "{body}", Encoding: "hex"},
		{Scheme: "none"},
	} {
		e, err := NewEndpoint(EndpointConfig{ID: fmt.Sprintf("m:%d", i), Name: fmt.Sprintf("ep%d", i), Tenant: "t", Description: "d",
			URL: "http://127.0.0.1:1/hook", TestEventType: "x.y", Filter: `type == "x"`, Envelope: &StandardEnvelope, Signing: &sc})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e)
	}
	m := &Message{ID: "msg_1", Timestamp: time.Unix(1614265330, 0), Body: []byte(`{"a":1}`)}
	for i, p := range pack(eps) {
		if p == eps[i] || !reflect.DeepEqual(p.EndpointConfig, eps[i].EndpointConfig) {
			t.Fatalf("%d: packed %+v, built %+v", i, p.EndpointConfig, eps[i].EndpointConfig)
		}
		if oneKeySigner(eps[i].signer) != nil && p.signer == eps[i].signer {
			t.Fatalf("%d: one-key signer not packed", i)
		}
		if got, want := p.Sign(m), eps[i].Sign(m); !reflect.DeepEqual(got, want) {
			t.Fatalf("%d: packed signs %v, built %v", i, got, want)
		}
	}
}

// Strings copied into blocks keep their values when later ones start a
// new block.
func TestStringBlocks(t *testing.T) {
	var a stringBlocks
	var got, want []string
	for i := range 5000 {
		s := fmt.Sprintf("m:%026d", i)
		got, want = append(got, a.copy(s)), append(want, s)
	}
	got, want = append(got, a.copy(strings.Repeat("x", 20<<10))), append(want, strings.Repeat("x", 20<<10))
	if !slices.Equal(got, want) {
		t.Fatal("a copied string changed")
	}
}
