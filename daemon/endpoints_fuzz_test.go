package daemon

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"hookd/config"
)

// FuzzEndpointJSON: whatever the create or patch body, decoding and
// validation answer a 400 naming a field or build an endpoint; never a
// panic, never an error of another kind.
func FuzzEndpointJSON(f *testing.F) {
	for _, s := range []string{
		`{"url":"http://127.0.0.1:9/","events":["*"]}`,
		`{"name":"a","url":"https://x.example/h","events":["lead.*"],"tenant":"t1","timeout":"2s","max_response_bytes":"1KiB","signing":{"scheme":"hmac-sha256","header":"X-S"}}`,
		`{"url":"http://x/","events":["*"],"envelope":{"id":"","tenant":"w","static":{"k":1}}}`,
		`{"url":"http://x/","events":["*"],"schedule":[],"metadata":{"k":"v"},"disabled":true}`,
		`{"url":"http://x/","events":["*"],"max_response_bytes":1.5}`,
		`{"url":null}`, `[]`, `{"signing":{"secret_file":"/etc/passwd"}}`,
	} {
		f.Add([]byte(s), []byte(`{"timeout":null,"signing":{"scheme":"none"}}`))
	}
	cfg, err := config.Parse("fuzz.toml", []byte("[defaults]\ntimeout = \"3s\"\n"))
	if err != nil {
		f.Fatal(err)
	}
	if err := cfg.Resolve(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, patch []byte) {
		check := func(b []byte) {
			var s config.APISettings
			if err := decodeStrict(b, &s); err != nil {
				var ae *apiError
				if !errors.As(err, &ae) || ae.Status != 400 {
					t.Fatalf("decode error is not a 400: %v", err)
				}
				return
			}
			if s.Name == "" {
				s.Name = "ep_x"
			}
			_, err := cfg.BuildManaged("m:x", &s, config.SecretSet{Secret: config.GenerateSecret(s.Scheme())}, time.Now())
			var ce *config.ConfigError
			if err != nil && (!errors.As(err, &ce) || ce.Key == "") {
				t.Fatalf("validation error names no field: %v", err)
			}
		}
		check(body)
		var doc, p map[string]json.RawMessage
		if json.Unmarshal(body, &doc) == nil && json.Unmarshal(patch, &p) == nil && doc != nil && p != nil {
			merged, err := json.Marshal(mergePatch(doc, p))
			if err != nil {
				t.Fatal(err)
			}
			check(merged)
		}
	})
}
