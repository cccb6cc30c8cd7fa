package config

import (
	"errors"
	"testing"
)

// FuzzConfig: any file either loads or fails with ErrConfig; never panics.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"[storage]\npath = \"x.db\"\n",
		"[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nenvelope = { id = \"\", static = { a = 1 } }\n  [endpoints.signing]\n  scheme = \"hmac-sha256\"\n  secret = \"s\"\n  content = \"{body}.{timestamp}\"\n",
		"[defaults]\nschedule = []\nmax_response_bytes = \"4KiB\"\n",
		"[[endpoints]]\nname = \"a\"\n[[endpoints]]\nname = \"a\"\n",
		"[notify]\nurl = \"http://127.0.0.1/\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.toml", b)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error is not ErrConfig: %v", err)
			}
			return
		}
		if err := c.Resolve(); err != nil && !errors.Is(err, ErrConfig) {
			t.Fatalf("resolve error is not ErrConfig: %v", err)
		}
	})
}
