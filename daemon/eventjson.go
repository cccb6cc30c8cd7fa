package daemon

// Strict decoding of the event JSON an emitter posts. This is the ingest
// hot path: the body is validated once by json.Valid and then split into
// its members by a small scanner that relies on that validity; FuzzIngest
// checks it against encoding/json.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// eventIn is the JSON an emitter posts.
type eventIn struct {
	ID        *string
	Type      *string
	Tenant    *string
	Data      json.RawMessage
	Payload   json.RawMessage
	Endpoints []string
}

// decodeEvent reads one event object strictly: valid UTF-8, valid JSON, a
// single object, known fields only, each at most once (a duplicated "type"
// would otherwise silently mean the last one). data and payload are kept
// as the emitter's raw JSON (slices of body).
func decodeEvent(body []byte) (eventIn, error) {
	var in eventIn
	if !utf8.Valid(body) {
		return in, badRequest("body is not valid UTF-8")
	}
	if !json.Valid(body) {
		return in, describeInvalid(body)
	}
	b := bytes.TrimLeft(body, " \t\r\n")
	if b[0] != '{' {
		return in, badRequest("body must be a JSON object")
	}
	var seen [6]bool
	for i := skipWS(b, 1); b[i] != '}'; {
		end := valueEnd(b, i)
		key := jsonString(b[i:end])
		i = skipWS(b, skipWS(b, end)+1) // past the colon
		end = valueEnd(b, i)
		raw := b[i:end]
		i = skipWS(b, end)
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
		field := slices.Index(eventFields, key)
		if field < 0 {
			return in, badRequest("unknown field %q (known: type, data, payload, id, tenant, endpoints)", key)
		}
		if seen[field] {
			return in, badRequest("%s: given twice", key)
		}
		seen[field] = true
		switch key {
		case "id", "type", "tenant":
			if raw[0] != '"' {
				return in, badRequest("%s: must be a string, not %s", key, jsonKindOf(raw))
			}
			v := jsonString(raw)
			switch key {
			case "id":
				in.ID = &v
			case "type":
				in.Type = &v
			default:
				in.Tenant = &v
			}
		case "data":
			in.Data = raw
		case "payload":
			in.Payload = raw
		case "endpoints":
			if err := json.Unmarshal(raw, &in.Endpoints); err != nil {
				return in, badRequest("endpoints: must be an array of strings")
			}
		}
	}
	if seen[4] && len(in.Endpoints) == 0 {
		// An empty list must not mean "everyone": omit the field for that.
		return in, badRequest("endpoints: must name at least one endpoint (omit it to reach every subscribed endpoint)")
	}
	for name, raw := range map[string][]byte{"data": in.Data, "payload": in.Payload} {
		if err := checkNested(raw); err != nil {
			return in, badRequest("%s: %v", name, err)
		}
	}
	return in, nil
}

var eventFields = []string{"id", "type", "data", "payload", "endpoints", "tenant"}

// describeInvalid explains why body is not one JSON value.
func describeInvalid(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return badRequest("body is not valid JSON: %s", jsonError(err))
	}
	return badRequest("body has trailing data after the event object")
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at b[i].
// b must be valid JSON.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		return i + 1
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = valueEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

// jsonString decodes a valid JSON string literal.
func jsonString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s)
	return s
}

func jsonKindOf(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '"':
		return "a string"
	}
	return "a number"
}

// maxDepth bounds nesting in data and payload: many receivers' parsers
// recurse and would fail on what hookd accepted.
const maxDepth = 128

// checkNested walks valid JSON once and refuses nesting deeper than
// maxDepth and objects that repeat a key: receivers' parsers disagree on
// which of two equal keys wins (first, last, error), so a signed body with
// both could mean different things to the signer's and the reader's code.
func checkNested(b []byte) error {
	type frame struct {
		object bool
		keys   [][]byte            // keys seen, while few
		set    map[string]struct{} // keys seen, once many
	}
	var stack []frame
	expectKey := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			end := valueEnd(b, i)
			if expectKey {
				key := b[i+1 : end-1]
				if bytes.IndexByte(key, '\\') >= 0 {
					key = []byte(jsonString(b[i:end])) // compare what the key means
				}
				f := &stack[len(stack)-1]
				if duplicateKey(&f.keys, &f.set, key) {
					return fmt.Errorf("duplicate key %.64q", jsonString(b[i:end]))
				}
				expectKey = false
			}
			i = end - 1
		case '{', '[':
			if len(stack) == maxDepth {
				return fmt.Errorf("nested deeper than %d levels", maxDepth)
			}
			stack = append(stack, frame{object: c == '{'})
			expectKey = c == '{'
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			expectKey = stack[len(stack)-1].object
		}
	}
	return nil
}

// checkJSON is checkNested for a body not known to be valid JSON (one
// value, nothing after it): checkNested itself trusts its input.
func checkJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("must be UTF-8") // the decoder would replace what is not
	}
	if !json.Valid(b) {
		return errors.New("must be one JSON value with nothing after it")
	}
	return checkNested(b)
}

// duplicateKey records key and reports whether it was seen before. Few
// keys are compared in place (no allocation on the hot path); many go to
// a map so a huge object cannot cost quadratic time.
func duplicateKey(keys *[][]byte, set *map[string]struct{}, key []byte) bool {
	if *set == nil {
		for _, k := range *keys {
			if bytes.Equal(k, key) {
				return true
			}
		}
		if *keys = append(*keys, key); len(*keys) <= 16 {
			return false
		}
		*set = make(map[string]struct{}, 2*len(*keys))
		for _, k := range *keys {
			(*set)[string(k)] = struct{}{}
		}
		*keys = nil
		return false
	}
	if _, ok := (*set)[string(key)]; ok {
		return true
	}
	(*set)[string(key)] = struct{}{}
	return false
}

// jsonError turns a decoder error into a message that names the field.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "ptr", "string":
		return "a string"
	case "slice":
		return "an array of strings"
	}
	return k
}
