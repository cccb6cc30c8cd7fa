package api

import "testing"

type inner struct {
	Scheme string `json:"scheme"`
}

type Embedded struct {
	Timeout string `json:"timeout"`
}

type body struct {
	*Embedded
	Signing *inner `json:"signing"`
}

// Decode names a refused key with its path, and takes the fields of an
// embedded struct (through a pointer too) as encoding/json does.
func TestDecodeNamesKeysWithTheirPath(t *testing.T) {
	for in, want := range map[string]string{
		`{"timeout":"5s","signing":{"scheme":"none"}}`: "",
		`{"signing":{"shceme":"none"}}`:                "signing.shceme: unknown field",
		`{"signing":{"Scheme":"none"}}`:                "signing.Scheme: unknown field (names are case-sensitive: scheme)",
		`{"Timeout":"5s"}`:                             "Timeout: unknown field (names are case-sensitive: timeout)",
		`{"timeout":"5s","timeout":"6s"}`:              `body: duplicate key "timeout"`,
	} {
		got := ""
		if err := Decode([]byte(in), &body{}); err != nil {
			got = BodyProblem(err)
		}
		if got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
