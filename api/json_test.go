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
		" null ":                                       "body: a JSON object is required", // decoded as {} before
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

type listBody struct {
	URL     string            `json:"url"`
	Events  []string          `json:"events"`
	Headers map[string]string `json:"headers"`
	Signing *inner            `json:"signing"`
	Nested  [][]int           `json:"nested"`
}

// A value of the wrong type is named down to its element: the index in an
// array, the key in a map.
func TestDecodeNamesTheWrongElement(t *testing.T) {
	for in, want := range map[string]string{
		`{"url":1}`:                                     "url: must be a string, not number",
		`{"url":["x"]}`:                                 "url: must be a string, not array",
		`{"events":["a",1]}`:                            "events[1]: must be a string, not number",
		`{"events":["a","b",{"x":[1]}]}`:                "events[2]: must be a string, not object",
		`{"url":"u","headers":{"A":"1","X-Key":2}}`:     "headers.X-Key: must be a string, not number",
		`{"events":[],"signing":{"scheme":true}}`:       "signing.scheme: must be a string, not bool",
		`{"nested":[[1],[2,"x"]],"events":["a"]}`:       "nested[1][1]: must be an integer, not string",
		`{"nested":[[1.5]]}`:                            "nested[0][0]: must be an integer, not number 1.5",
		`{"headers":{"a":"b"},"events":["x","y",null]}`: "",
	} {
		got := ""
		if err := Decode([]byte(in), &listBody{}); err != nil {
			got = BodyProblem(err)
		}
		if got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// Half of a surrogate pair is refused wherever it is escaped; a whole pair
// and other escapes are not.
func TestLoneSurrogate(t *testing.T) {
	for in, bad := range map[string]bool{
		`{"a":"\ud800"}`:                 true,
		`{"a":"x\udc00y"}`:               true,
		`{"\ud83d":1}`:                   true,
		`{"a":"\ud83d\u0041"}`:           true,
		`{"a":"\ud83d\ude00"}`:           false,
		`{"a":"\\ud800"}`:                false, // a backslash, then text
		`{"a":"\u00e9\n\"\ud83d\uDE00"}`: false,
		`{"a":["\uD800"]}`:               true,
	} {
		if err := CheckJSON([]byte(in)); (err != nil) != bad {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                         true,
		"Application/JSON; charset=UTF-8":          true,
		`application/json; charset="utf8"`:         true,
		"application/cloudevents+json":             true,
		"application/json; foo=bar; charset=utf-8": true,
		"application/json; charset=utf-16":         false,
		"application/json;charset=iso-8859-1":      false,
		"application/+json":                        false,
		"text/json":                                false,
		"application/jsonx":                        false,
		"":                                         false,
	} {
		if got := IsJSON([]byte(ct)); got != want {
			t.Errorf("IsJSON(%q) = %v", ct, got)
		}
	}
}
