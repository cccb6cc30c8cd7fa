package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"
	"github.com/oklog/ulid/v2"
	"github.com/valyala/fasthttp"

	"hookd/delivery"
	"hookd/store"
)

// maxBatch is the most events one POST /v1/events/batch may carry.
const maxBatch = 1000

// batchBodyFactor: a batch body may be this many times max_event_bytes.
const batchBodyFactor = 64

var (
	ingested   = metrics.NewCounter("hookd_events_ingested_total")
	duplicates = metrics.NewCounter("hookd_events_duplicate_total")
)

func rejected(status int) {
	metrics.GetOrCreateCounter(fmt.Sprintf(`hookd_ingest_rejected_total{status="%d"}`, status)).Inc()
}

func (d *Daemon) newIngestServer(cfg *Config) *fasthttp.Server {
	return &fasthttp.Server{
		Name:                  "hookd",
		Handler:               d.handleIngest,
		ErrorHandler:          d.handleServerError,
		MaxRequestBodySize:    int(cfg.Ingest.MaxEventBytes) * batchBodyFactor,
		ReadTimeout:           cfg.Ingest.ReadTimeout.D(), // a slow client cannot hold a connection forever
		WriteTimeout:          30 * time.Second,
		Concurrency:           cfg.Ingest.MaxConnections,
		IdleTimeout:           2 * time.Minute,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
	}
}

// handleServerError answers errors fasthttp detects before a handler runs
// (body too large, malformed request) in the API's JSON form.
func (d *Daemon) handleServerError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		rejected(413)
		d.writeError(ctx, errTooLarge)
		return
	}
	d.writeError(ctx, badRequest("malformed HTTP request: %v", err))
}

func (d *Daemon) handleIngest(ctx *fasthttp.RequestCtx) {
	cfg := d.cfg.Load()
	path := string(ctx.Path())
	switch path {
	case "/healthz":
		writeJSON(ctx, 200, map[string]string{"status": "ok"})
		return
	case "/readyz":
		if d.closing.Load() {
			d.writeError(ctx, errShutdown)
			return
		}
		writeJSON(ctx, 200, map[string]any{"status": "ready", "pending": d.store.Pending()})
		return
	case "/v1/events", "/v1/events/batch":
	default:
		d.writeError(ctx, errNotFound)
		return
	}
	var err error
	switch {
	case !ctx.IsPost():
		err = methodNotAllowed("POST")
		ctx.Response.Header.Set("Allow", "POST")
	case !checkToken(ctx, cfg.ingestToken):
		err = errUnauthorized
	case d.closing.Load():
		err = errShutdown
	case d.lowDisk.Load():
		err = errDiskLow
	case !isJSON(ctx.Request.Header.ContentType()):
		err = errUnsupported
	case path == "/v1/events":
		err = d.ingestOne(ctx, cfg)
	default:
		err = d.ingestBatch(ctx, cfg)
	}
	if err != nil {
		ae := toAPIError(err)
		rejected(ae.Status)
		d.writeError(ctx, ae)
	}
}

// eventIn is the JSON an emitter posts.
type eventIn struct {
	ID        *string
	Type      *string
	Data      json.RawMessage
	Payload   json.RawMessage
	Endpoints []string
}

// decodeEvent reads one event object strictly: valid UTF-8, valid JSON, a
// single object, known fields only, each at most once (a duplicated "type"
// would otherwise silently mean the last one). data and payload are kept
// as the emitter's raw JSON (slices of body). This is the ingest hot path:
// the body is validated once by json.Valid, then split into members by a
// small scanner that can rely on that validity.
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
	var seen [5]bool
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
			return in, badRequest("unknown field %q (known: type, data, payload, id, endpoints)", key)
		}
		if seen[field] {
			return in, badRequest("%s: given twice", key)
		}
		seen[field] = true
		switch key {
		case "id", "type":
			if raw[0] != '"' {
				return in, badRequest("%s: must be a string, not %s", key, jsonKindOf(raw))
			}
			v := jsonString(raw)
			if key == "id" {
				in.ID = &v
			} else {
				in.Type = &v
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
	for name, raw := range map[string][]byte{"data": in.Data, "payload": in.Payload} {
		if jsonDepth(raw) > maxDepth {
			return in, badRequest("%s: nested deeper than %d levels", name, maxDepth)
		}
	}
	return in, nil
}

var eventFields = []string{"id", "type", "data", "payload", "endpoints"}

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

// jsonDepth returns the deepest nesting of arrays and objects in valid JSON.
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

var typeRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// parseEvent validates one event and renders its deliveries. now is the
// ingest time, which becomes the envelope's stable timestamp.
func parseEvent(body []byte, key string, t *delivery.Table, now time.Time) (store.NewEvent, error) {
	in, err := decodeEvent(body)
	if err != nil {
		return store.NewEvent{}, err
	}
	switch {
	case in.Type == nil:
		return store.NewEvent{}, badRequest("type: required")
	case !typeRe.MatchString(*in.Type):
		return store.NewEvent{}, badRequest("type: must be 1-128 characters of [A-Za-z0-9._:-]")
	case in.Data == nil && in.Payload == nil:
		return store.NewEvent{}, badRequest("data: required unless payload is given")
	case in.Data != nil && in.Payload != nil:
		return store.NewEvent{}, badRequest("data and payload: give one, not both")
	}
	id := ""
	if in.ID != nil {
		if !validID(*in.ID) {
			return store.NewEvent{}, badRequest("id: must be 1-128 printable ASCII characters without spaces")
		}
		id = *in.ID
	} else {
		id = "evt_" + ulid.Make().String()
	}
	for _, name := range in.Endpoints {
		if ep := t.Get(name); ep == nil || ep.Internal {
			return store.NewEvent{}, badRequest("endpoints: unknown endpoint %q", name)
		}
	}
	ev := store.Event{ID: id, Type: *in.Type, Created: now, Raw: in.Data}
	if in.Payload != nil {
		ev.Payload, ev.Raw = true, in.Payload
	}
	ne := store.NewEvent{Event: ev, DedupKey: key}
	for _, ep := range t.Route(ev.Type, in.Endpoints) {
		ne.Deliveries = append(ne.Deliveries, store.NewDelivery{Endpoint: ep.Name, Body: ep.Render(id, ev.Type, now, ev.Raw, ev.Payload)})
	}
	return ne, nil
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
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

func (d *Daemon) limits(cfg *Config) store.Limits {
	return store.Limits{DedupWindow: cfg.Storage.DedupWindow.D(), MaxPending: cfg.Storage.MaxPending}
}

func (d *Daemon) ingestOne(ctx *fasthttp.RequestCtx, cfg *Config) error {
	body := ctx.PostBody()
	if len(body) > int(cfg.Ingest.MaxEventBytes) {
		return errTooLarge
	}
	key := string(ctx.Request.Header.Peek("Idempotency-Key"))
	if key != "" && !validID(key) {
		return badRequest("Idempotency-Key: must be 1-128 printable ASCII characters without spaces")
	}
	ne, err := parseEvent(body, key, d.sched.Table(), time.Now().UTC())
	if err != nil {
		return err
	}
	res, err := d.store.Ingest(ctx, []store.NewEvent{ne}, d.limits(cfg))
	if err != nil {
		return err
	}
	r := res[0]
	switch {
	case r.Err != nil:
		return r.Err
	case r.Duplicate:
		duplicates.Inc()
		writeAck(ctx, 200, r)
	default:
		ingested.Inc()
		writeAck(ctx, 202, r)
	}
	return nil
}

// writeAck answers a single event without reflection: this is the hot
// path. Ids are printable ASCII, so strconv's quoting is valid JSON.
func writeAck(ctx *fasthttp.RequestCtx, status int, r store.IngestResult) {
	b := make([]byte, 0, 96)
	b = strconv.AppendQuote(append(b, `{"id":`...), r.ID)
	if r.Duplicate {
		b = append(b, `,"duplicate":true}`...)
	} else {
		b = strconv.AppendInt(append(b, `,"duplicate":false,"deliveries":`...), int64(r.Deliveries), 10)
		b = append(b, '}')
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// itemResult is one entry of a batch response.
type itemResult struct {
	Index      int               `json:"index"`
	Status     int               `json:"status"`
	ID         string            `json:"id,omitempty"`
	Duplicate  *bool             `json:"duplicate,omitempty"`
	Deliveries *int              `json:"deliveries,omitempty"`
	Error      map[string]string `json:"error,omitempty"`
}

func itemError(i int, err error) itemResult {
	ae := toAPIError(err)
	rejected(ae.Status)
	return itemResult{Index: i, Status: ae.Status, Error: map[string]string{"code": ae.Code, "message": ae.Message}}
}

// ingestBatch stores up to maxBatch events in one commit. Invalid items
// are reported per item and do not stop the valid ones.
func (d *Daemon) ingestBatch(ctx *fasthttp.RequestCtx, cfg *Config) error {
	var items []json.RawMessage
	if err := json.Unmarshal(ctx.PostBody(), &items); err != nil {
		return badRequest("body must be a JSON array of events: %s", jsonError(err))
	}
	switch {
	case len(items) == 0:
		return badRequest("batch is empty")
	case len(items) > maxBatch:
		return badRequest("batch has %d events; at most %d", len(items), maxBatch)
	}
	t, now := d.sched.Table(), time.Now().UTC()
	results := make([]itemResult, len(items))
	var (
		valid []store.NewEvent
		index []int
	)
	for i, raw := range items {
		if len(raw) > int(cfg.Ingest.MaxEventBytes) {
			results[i] = itemError(i, errTooLarge)
			continue
		}
		ne, err := parseEvent(raw, "", t, now)
		if err != nil {
			results[i] = itemError(i, err)
			continue
		}
		valid = append(valid, ne)
		index = append(index, i)
	}
	if len(valid) > 0 {
		res, err := d.store.Ingest(ctx, valid, d.limits(cfg))
		if err != nil {
			return err
		}
		for j, r := range res {
			i := index[j]
			switch {
			case r.Err != nil:
				results[i] = itemError(i, r.Err)
			case r.Duplicate:
				duplicates.Inc()
				results[i] = itemResult{Index: i, Status: 200, ID: r.ID, Duplicate: ptr(true)}
			default:
				ingested.Inc()
				results[i] = itemResult{Index: i, Status: 202, ID: r.ID, Duplicate: ptr(false), Deliveries: ptr(r.Deliveries)}
			}
		}
	}
	writeJSON(ctx, 200, map[string]any{"results": results})
	return nil
}

func ptr[T any](v T) *T { return &v }
