package api

// The JSON hygiene every API body gets (the admin API's, the portal's and
// ingest's own scanner): one value, valid UTF-8, no key twice, bounded
// nesting, and keys matched exactly. A proxy in front of hookd and hookd
// must never read one body two ways.

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ValueEnd returns the index just past the JSON value starting at b[i].
// b must be valid JSON.
func ValueEnd(b []byte, i int) int {
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
				i = ValueEnd(b, i) - 1
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

// JSONString decodes a valid JSON string literal.
func JSONString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s)
	return s
}

// maxDepth bounds nesting in data and payload: many receivers' parsers
// recurse and would fail on what hookd accepted.
const maxDepth = 128

// CheckNested walks valid JSON once and refuses nesting deeper than
// maxDepth and objects that repeat a key: receivers' parsers disagree on
// which of two equal keys wins (first, last, error), so a signed body with
// both could mean different things to the signer's and the reader's code.
func CheckNested(b []byte) error {
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
			end := ValueEnd(b, i)
			if bytes.IndexByte(b[i:end], '\\') >= 0 && loneSurrogate(b[i:end]) {
				return errors.New(`a string escapes half of a UTF-16 surrogate pair (\ud800-\udfff without its other half): receivers' parsers disagree on what it is`)
			}
			if expectKey {
				key := b[i+1 : end-1]
				if bytes.IndexByte(key, '\\') >= 0 {
					key = []byte(JSONString(b[i:end])) // compare what the key means
				}
				f := &stack[len(stack)-1]
				if duplicateKey(&f.keys, &f.set, key) {
					return fmt.Errorf("duplicate key %.64q", JSONString(b[i:end]))
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

// loneSurrogate says whether the JSON string literal s escapes half of a
// UTF-16 surrogate pair without the other: encoding/json reads it as
// U+FFFD, other parsers fail or keep it.
func loneSurrogate(s []byte) bool {
	for i := 0; i+5 < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if s[i+1] != 'u' {
			i++ // an escape such as \\: the next byte is not one
			continue
		}
		switch r := hex4(s[i+2 : i+6]); {
		case r >= 0xd800 && r < 0xdc00:
			if i+11 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
				if lo := hex4(s[i+8 : i+12]); lo >= 0xdc00 && lo < 0xe000 {
					i += 11
					continue
				}
			}
			return true
		case r >= 0xdc00 && r < 0xe000:
			return true
		}
		i += 5
	}
	return false
}

// hex4 is the value of four hex digits (valid JSON has them after \u).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		}
	}
	return r
}

// CheckJSON is CheckNested for a body not known to be valid JSON (one
// value, nothing after it): CheckNested itself trusts its input.
func CheckJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("must be UTF-8") // the decoder would replace what is not
	}
	if !json.Valid(b) {
		var v json.RawMessage
		err := json.Unmarshal(b, &v)
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return fmt.Errorf("must be one JSON value with nothing after it: %s (at byte %d)", se, se.Offset)
		}
		return errors.New("must be one JSON value with nothing after it")
	}
	return CheckNested(b)
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

// exactKeys refuses an object key that names a field of t only when case
// is ignored: encoding/json takes "Tenant" for tenant, and the last of
// {"tenant":"A","Tenant":"B"} wins where a proxy in front reads the first.
// body is valid JSON (decoded already); maps' keys are free.
func exactKeys(body []byte, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil // its own decoder matches its keys
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return nil // not an object: the decoder said what is wrong
	}
	fields := map[string]reflect.Type{}
	jsonFields(t, fields)
	for _, k := range slices.Sorted(maps.Keys(obj)) { // one answer for one body, whichever keys are wrong
		raw := obj[k]
		ft, ok := fields[k]
		if !ok {
			for name := range fields {
				if strings.EqualFold(name, k) {
					return &fieldProblem{k, "unknown field (names are case-sensitive: " + name + ")"}
				}
			}
			return &fieldProblem{k, "unknown field"}
		}
		if err := exactKeys(raw, ft); err != nil {
			fp := err.(*fieldProblem)
			return &fieldProblem{k + "." + fp.field, fp.msg}
		}
	}
	return nil
}

// jsonFields collects t's JSON field names and types, embedded structs'
// included.
func jsonFields(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			jsonFields(f.Type, into)
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			jsonFields(f.Type.Elem(), into) // promoted as encoding/json promotes them
		case name == "":
			into[f.Name] = f.Type
		default:
			into[name] = f.Type
		}
	}
}

// Decode decodes one JSON object into v strictly: unknown fields, data
// after it, and what CheckJSON or exactKeys refuse are errors.
func Decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// The decoder names the field (events), not the element
			// (events[1], headers.X-Key): find it by where it ended.
			if p := pathAt(body, te.Offset); strings.HasPrefix(p, jsonPath(te.Field)) {
				return &fieldProblem{p, typeProblem(te)}
			}
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") && json.Valid(body) {
			// The decoder names the field but not where: exactKeys gives
			// its path (signing.shceme).
			if fp := exactKeys(body, reflect.TypeOf(v)); fp != nil {
				return fp
			}
		}
		return err
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		// Not dec.More(), which is false before a stray ']' or '}'.
		return errors.New("trailing data after the JSON object")
	}
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		// null decodes into a struct as if it were {}: a disable or a
		// rotation sent null was made as if asked with no options.
		return errors.New("a JSON object is required")
	}
	if err := CheckJSON(body); err != nil {
		return err
	}
	return exactKeys(body, reflect.TypeOf(v))
}

// pathAt is the path of the value of body that ends at offset off
// (signing.scheme, events[1], headers.X-Key), "" if none does.
func pathAt(body []byte, off int64) string {
	type level struct {
		array bool
		index int    // of the array's next value
		key   string // the object's current key
		inKey bool   // the object's next token is a key
	}
	var stack []level
	path := func() string {
		var b strings.Builder
		for _, l := range stack {
			if l.array {
				fmt.Fprintf(&b, "[%d]", l.index)
			} else {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(l.key)
			}
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		n := len(stack)
		if n > 0 && !stack[n-1].array && stack[n-1].inKey {
			if key, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].inKey = key, false
				continue
			}
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			if dec.InputOffset() >= off {
				return path() // a container where a scalar belongs
			}
			stack = append(stack, level{array: tok == json.Delim('['), inKey: tok == json.Delim('{')})
			continue
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:n-1]
		default:
			if dec.InputOffset() >= off {
				return path()
			}
		}
		// A value ended: the container moves to its next one.
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].inKey = true
			}
		}
	}
}

// RedeliverNamed refuses "endpoint", "since" or "until" given as "" or
// null in a redeliver body: left out, each means no filter (every
// endpoint, no bound), and a blank one must not widen the request to
// everything parked.
func RedeliverNamed(body []byte) error {
	return nonEmpty(body, blank{"endpoint", "every endpoint"}, blank{"since", "no lower bound"}, blank{"until", "no upper bound"})
}

// NonEmpty refuses key given as "" or null in a JSON object body, which
// decoding cannot tell from the key left out, when leaving it out means
// something else (what means, in the message): a tenant sent from an
// empty variable would make a platform endpoint, which every tenant's
// events reach.
func NonEmpty(body []byte, key, means string) error { return nonEmpty(body, blank{key, means}) }

// blank is a key that must not be blank, and what leaving it out means.
type blank struct{ key, means string }

// nonEmpty is NonEmpty for several keys, reading the body once.
func nonEmpty(body []byte, keys ...blank) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil // not an object: Decode said so
	}
	for _, k := range keys {
		if v, ok := m[k.key]; ok {
			if s := string(bytes.TrimSpace(v)); s == "null" || s == `""` {
				return &fieldProblem{k.key, "must not be empty or null (leave the key out for " + k.means + ")"}
			}
		}
	}
	return nil
}

// fieldProblem is what is wrong with a body, in one field.
type fieldProblem struct{ field, msg string }

func (e *fieldProblem) Error() string { return e.field + ": " + e.msg }

// JSONProblem says what is wrong with a body Decode refused, in the API's
// words rather than Go's, and in which field when the decoder knows
// ("stop_on_4xx", "must be true or false, not string").
func JSONProblem(err error) (field, problem string) {
	var fp *fieldProblem
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &fp):
		return fp.field, fp.msg
	case errors.As(err, &te) && te.Field != "":
		return jsonPath(te.Field), typeProblem(te)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return f, "unknown field"
	case errors.As(err, &pe):
		return "", fmt.Sprintf("%q: must be an RFC 3339 time such as 2026-01-02T15:04:05Z", pe.Value)
	case errors.Is(err, io.EOF):
		return "", "empty: a JSON object is required"
	}
	return "", strings.TrimPrefix(err.Error(), "json: ")
}

// DecodeObject is Decode for a JSON object body whose error names the
// field when it can ("since: …", else "body: …"): a value's own check (a
// time, a duration, a size) does not know which field it is in, so each
// field is decoded alone to find the one that fails the same way.
func DecodeObject(body []byte, v any) error {
	err := Decode(body, v)
	if err == nil {
		return nil
	}
	field, problem := JSONProblem(err)
	if field == "" {
		var fields map[string]json.RawMessage
		if json.Unmarshal(body, &fields) == nil {
			for _, k := range slices.Sorted(maps.Keys(fields)) {
				one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
				if e := Decode(one, reflect.New(reflect.TypeOf(v).Elem()).Interface()); e != nil && e.Error() == err.Error() {
					field = k
					break
				}
			}
		}
	}
	if field == "" {
		field = "body"
	}
	return &fieldProblem{field, problem}
}

// BodyProblem is JSONProblem as one message: "field: problem", or
// "body: problem" when no field is known.
func BodyProblem(err error) string {
	field, problem := JSONProblem(err)
	if field == "" {
		field = "body"
	}
	return field + ": " + problem
}

// typeProblem says what is wrong with a value of the wrong type.
func typeProblem(te *json.UnmarshalTypeError) string {
	return fmt.Sprintf("must be %s, not %s", jsonKind(te.Type), te.Value)
}

// jsonPath is the decoder's path to a field without the Go names of the
// structs it went through (EndpointSettings.timeout is timeout): the API's
// own names are lower case.
func jsonPath(p string) string {
	parts := strings.Split(p, ".")
	for len(parts) > 1 && parts[0] != "" && unicode.IsUpper(rune(parts[0][0])) {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return "a string" // a duration ("5s") is an int64 decoded from text
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a number"
}
