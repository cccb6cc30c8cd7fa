package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"hookd/config"
	"hookd/delivery"
)

func fuzzTable(t testing.TB) *delivery.Table {
	std, err := delivery.NewEndpoint(delivery.EndpointConfig{Name: "std", Events: []string{"*"}, Envelope: &delivery.StandardEnvelope, Signing: &delivery.SigningConfig{Scheme: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	env := delivery.EnvelopeConfig{ID: "", Type: "event", Time: "created_at", Data: "payload", TimeFormat: "unix",
		Static: map[string]json.RawMessage{"widget_id": json.RawMessage(`"w"`)}}
	tbl, err := delivery.NewEndpoint(delivery.EndpointConfig{Name: "tbl", Events: []string{"lead.*"}, Envelope: &env, Signing: &delivery.SigningConfig{Scheme: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	return delivery.NewTable([]*delivery.Endpoint{std, tbl}, nil)
}

// FuzzIngest: whatever the body, parseEvent either refuses it with a 400
// or accepts it and renders valid JSON for every endpoint (or the payload
// byte for byte).
func FuzzIngest(f *testing.F) {
	for _, s := range []string{
		`{"type":"lead.created","data":{"phone":null}}`,
		`{"id":"evt_1","type":"chat_ended","payload":{"a":[1,2.5e400,"\u00e9"]}}`,
		`{"type":"t","data":1,"endpoints":["tbl"]}`,
		`{"type":"a","type":"b","data":1}`,
		"{\"type\":\"t\",\"data\":\"\xff\"}",
		`{"type":"t","data":[[[[[[]]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	table := fuzzTable(f)
	now := time.Unix(1700000000, 0).UTC()
	f.Fuzz(func(t *testing.T, body []byte) {
		ne, err := parseEvent(body, "", table, now)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Message == "" {
				t.Fatalf("refusal is not a 400 with a message: %v", err)
			}
			return
		}
		if !config.IsID(ne.Event.Type) || !config.ValidID(ne.Event.ID) {
			t.Fatalf("accepted bad type/id: %q %q", ne.Event.Type, ne.Event.ID)
		}
		// The hand-written member scanner agrees with encoding/json.
		var ref struct {
			ID   *string         `json:"id"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
			Pay  json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		raw := ref.Data
		if ne.Event.Payload {
			raw = ref.Pay
		}
		if ref.Type != ne.Event.Type || (ref.ID != nil && *ref.ID != ne.Event.ID) || !bytes.Equal(raw, ne.Event.Raw) {
			t.Fatalf("scanner disagrees with encoding/json: %q %q %q vs %+v", ref.Type, raw, ne.Event.Raw, ne.Event)
		}
		for _, d := range ne.Deliveries {
			if ne.Event.Payload {
				if !bytes.Equal(d.Body, ne.Event.Raw) {
					t.Fatalf("payload changed: %q -> %q", ne.Event.Raw, d.Body)
				}
			} else if !json.Valid(d.Body) {
				t.Fatalf("invalid JSON rendered for %s: %q", d.Endpoint, d.Body)
			}
		}
	})
}
