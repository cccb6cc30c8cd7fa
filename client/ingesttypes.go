package client

// The ingest API's request and response bodies. The daemon answers
// batches with ItemResult; its single-event answer and event parser are
// hand-written for speed, and tests hold them to Ack and NewEvent.

import (
	"bytes"
	"encoding/json"
	"errors"
)

// NewEvent is an event to send: the body of POST /v1/events, or one item
// of POST /v1/events/batch. Give exactly one of Data and Payload.
type NewEvent struct {
	// ID deduplicates: the same id within the daemon's dedup_window is
	// stored once. Send and SendBatch fill in a new one (NewEventID) when
	// it is empty, and retry with it.
	ID   string `json:"id,omitempty"`
	Type string `json:"type"` // 1-128 characters of [A-Za-z0-9._:-]
	// Data is any value encoding/json can marshal (json.RawMessage for
	// JSON you already have); each endpoint gets it in its envelope.
	Data any `json:"data,omitempty"`
	// Payload is sent byte for byte as the request body, with no envelope.
	Payload any `json:"payload,omitempty"`
	// Tenant routes the event to that tenant's endpoints as well as the
	// platform's (same grammar as Type); empty: platform endpoints only.
	Tenant string `json:"tenant,omitempty"`
	// Endpoints restricts fan-out to these endpoint names, among those the
	// event's tenant reaches. nil: every matching endpoint; an empty list
	// is sent as given, and refused (400), not widened to every endpoint.
	Endpoints []string `json:"endpoints,omitzero"`
}

// MarshalJSON sends an event with neither Data nor Payload as "data":
// null, which hookd accepts (omitempty would leave both out, a 400).
// encoding/json compacts what it returns; Send and SendBatch send
// encode's bytes as they are.
func (e NewEvent) MarshalJSON() ([]byte, error) { return e.encode() }

// encode is the event as Send sends it: a Payload that is JSON already
// (json.RawMessage or []byte) goes in byte for byte, where encoding/json
// compacted it and escaped <, > and & (a body the emitter signed itself
// then arrived as other bytes); nothing else is HTML-escaped either.
func (e NewEvent) encode() ([]byte, error) {
	type plain NewEvent // without MarshalJSON
	if e.Data == nil && e.Payload == nil {
		e.Data = json.RawMessage("null")
	}
	var raw []byte
	switch p := e.Payload.(type) {
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	}
	if raw != nil {
		if !json.Valid(raw) {
			return nil, errors.New("payload: not valid JSON")
		}
		e.Payload = nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(plain(e)); err != nil {
		return nil, err
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if raw == nil {
		return b, nil
	}
	// "type" is always there, so the object is not empty: the payload
	// goes after a comma, before its closing brace.
	return append(append(append(b[:len(b)-1], `,"payload":`...), raw...), '}'), nil
}

// Ack answers POST /v1/events: the event is stored (fsynced) and
// Deliveries deliveries were created, or it is a Duplicate of one stored
// earlier (then Deliveries is 0 and nothing new is delivered).
type Ack struct {
	ID         string `json:"id"`
	Duplicate  bool   `json:"duplicate"`
	Deliveries int    `json:"deliveries,omitempty"`
}

// BatchResults answers POST /v1/events/batch.
type BatchResults struct {
	Results []ItemResult `json:"results"`
}

// ItemResult is the outcome of one batch item. Status is what POST
// /v1/events would have answered for it: 202 stored, 200 duplicate
// (both Stored), or an error status with Error.
type ItemResult struct {
	Index      int          `json:"index"` // position in the request
	Status     int          `json:"status"`
	ID         string       `json:"id,omitempty"`
	Duplicate  *bool        `json:"duplicate,omitempty"`
	Deliveries *int         `json:"deliveries,omitempty"`
	Error      *ErrorDetail `json:"error,omitempty"`
}

// Stored reports whether the item's event is stored, now or earlier.
func (r ItemResult) Stored() bool { return r.Status == 200 || r.Status == 202 }
