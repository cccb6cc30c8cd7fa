package delivery

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzEnvelope: for any id, type, field names and valid JSON data, the
// rendered envelope is valid JSON that carries the data unchanged.
func FuzzEnvelope(f *testing.F) {
	f.Add("evt_1", "lead.created", "event", `{"a":[1,null,"x"]}`, int64(1700000000))
	f.Add("id\"with\\quotes", "t", "", `"\u2028"`, int64(0))
	f.Add("\xff", "type", "ü", `1e400`, int64(-1))
	f.Fuzz(func(t *testing.T, id, typ, typeField, data string, unix int64) {
		if !json.Valid([]byte(data)) {
			return
		}
		e, err := NewEnvelope(EnvelopeConfig{ID: "id", Type: typeField, Time: "ts", Data: "data", TimeFormat: "rfc3339ms"})
		if err != nil {
			return // e.g. typeField collides with another field
		}
		out := e.Render(nil, id, typ, "", time.Unix(unix%(1<<35), 0), []byte(data))
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		// Compare compacted: the envelope keeps data's bytes, the decoder
		// here drops surrounding whitespace.
		var want, have bytes.Buffer
		json.Compact(&want, []byte(data))
		json.Compact(&have, got["data"])
		if want.String() != have.String() {
			t.Fatalf("data changed: %q -> %q", data, got["data"])
		}
	})
}
