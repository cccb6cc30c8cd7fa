package delivery

import (
	"encoding/json"
	"testing"
	"time"

	"hookd/store"
)

func TestEnvelopes(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	data := []byte(`{"x":[1,2]}`)
	seny := EnvelopeConfig{ID: "id", Type: "event", Time: "created_at", Data: "data", TimeFormat: "rfc3339",
		Static: map[string]json.RawMessage{"widget_id": json.RawMessage(`"wgt_1"`)}}
	cases := []struct {
		name string
		cfg  EnvelopeConfig
		want string
	}{
		{"standard", StandardEnvelope, `{"id":"e\"1","type":"t.x","timestamp":"2026-03-04T05:06:07.891Z","data":{"x":[1,2]}}`},
		{"seny", seny, `{"id":"e\"1","event":"t.x","widget_id":"wgt_1","created_at":"2026-03-04T05:06:07Z","data":{"x":[1,2]}}`},
		{"sensei", EnvelopeConfig{Type: "event", Time: "timestamp", Data: "data", TimeFormat: "rfc3339ms"}, `{"event":"t.x","timestamp":"2026-03-04T05:06:07.891Z","data":{"x":[1,2]}}`},
		{"unix", EnvelopeConfig{ID: "id", Time: "ts", Data: "payload", TimeFormat: "unix"}, `{"id":"e\"1","ts":1772600767,"payload":{"x":[1,2]}}`},
		{"empty", EnvelopeConfig{}, `{}`},
	}
	for _, c := range cases {
		e, err := NewEnvelope(c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := e.Render(nil, `e"1`, "t.x", "", at, data)
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: invalid JSON", c.name)
		}
	}
}

func TestEnvelopeRejectsDuplicateField(t *testing.T) {
	if _, err := NewEnvelope(EnvelopeConfig{ID: "id", Type: "id"}); err == nil {
		t.Fatal("accepted a field used twice")
	}
	if _, err := NewEnvelope(EnvelopeConfig{ID: "id", TimeFormat: "iso"}); err == nil {
		t.Fatal("accepted time_format iso")
	}
}

func TestPayloadIsVerbatim(t *testing.T) {
	e, _ := NewEndpoint(EndpointConfig{Name: "x", Envelope: &StandardEnvelope, Signing: &SigningConfig{Scheme: "none"}})
	p := []byte("{ \"kept\" :  [1, 2] }")
	if got := e.Render(&store.Event{ID: "id", Type: "t", Created: time.Now(), Raw: p, Payload: true}); string(got) != string(p) {
		t.Fatalf("payload changed: %s", got)
	}
}

func TestMatches(t *testing.T) {
	e := &Endpoint{EndpointConfig: EndpointConfig{Events: []string{"conversation.*", "form.submitted"}}}
	for typ, want := range map[string]bool{"conversation.ended": true, "conversation.": true, "form.submitted": true, "form.submittedx": false, "lead.created": false} {
		if e.Matches(typ) != want {
			t.Errorf("%s: want %v", typ, want)
		}
	}
}

func BenchmarkEnvelope(b *testing.B) {
	e, _ := NewEnvelope(StandardEnvelope)
	data := make([]byte, 256)
	for i := range data {
		data[i] = 'a'
	}
	data[0], data[255] = '"', '"'
	buf := make([]byte, 0, 512)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf = e.Render(buf[:0], "evt_01HZXABCDEF", "conversation.ended", "", now, data)
	}
}

func TestEnvelopeTenant(t *testing.T) {
	env := StandardEnvelope
	env.Tenant = "widget_id"
	e, err := NewEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	if got := string(e.Render(nil, "e1", "t", "wgt_1", at, []byte("1"))); got != `{"id":"e1","type":"t","widget_id":"wgt_1","timestamp":"2026-11-25T08:00:00.000Z","data":1}` {
		t.Fatalf("with a tenant: %s", got)
	}
	if got := string(e.Render(nil, "e1", "t", "", at, []byte("1"))); got != `{"id":"e1","type":"t","timestamp":"2026-11-25T08:00:00.000Z","data":1}` {
		t.Fatalf("without a tenant: %s", got)
	}
	env.Static = map[string]json.RawMessage{"widget_id": json.RawMessage(`"w"`)}
	if _, err := NewEnvelope(env); err == nil {
		t.Fatal("static and tenant naming one field accepted")
	}
}
