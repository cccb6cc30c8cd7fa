package daemon

// Strict decoding of the event JSON an emitter posts. This is the ingest
// hot path: the body is validated once by json.Valid and then split into
// its members by a small scanner that relies on that validity; FuzzIngest
// checks it against encoding/json.

import (
	"bytes"
	"encoding/json"
	"slices"
	"unicode/utf8"

	"hookd/api"
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
		end := api.ValueEnd(b, i)
		key := api.JSONString(b[i:end])
		i = skipWS(b, skipWS(b, end)+1) // past the colon
		end = api.ValueEnd(b, i)
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
			v := api.JSONString(raw)
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
		if err := api.CheckNested(raw); err != nil {
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
		return badRequest("body is not valid JSON: %s", api.BodyProblem(err))
	}
	return badRequest("body has trailing data after the event object")
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
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
