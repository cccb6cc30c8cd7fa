package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/oklog/ulid/v2"
	"github.com/valyala/fasthttp"

	"hookd/api"
	"hookd/client"
	"hookd/config"
	"hookd/delivery"
	"hookd/store"
)

// maxBatch is the most events one POST /v1/events/batch may carry.
const maxBatch = 1000

// batchBodyFactor: a batch body may be this many times max_event_bytes.
const batchBodyFactor = 64

func (d *Daemon) newIngestServer(cfg *config.Config) *fasthttp.Server {
	maxBody := int(cfg.Ingest.MaxEventBytes) * batchBodyFactor
	return &fasthttp.Server{
		Name:               "hookd",
		Handler:            d.handleIngest,
		ErrorHandler:       d.serverErrors(true),
		Logger:             serverLogger{d.log},
		MaxRequestBodySize: maxBody,
		// A client that asks first (Expect: 100-continue, as the Go client
		// does for a big batch) learns of a body over the limit before it
		// sends it: refused mid-body, it would see a reset, not the 413.
		// The answer is the JSON error a body read over the limit gets
		// (fasthttp writes the response as the handler left it; without
		// it, the 413 had no body).
		ExpectHandler: func(ctx *fasthttp.RequestCtx) int {
			if ctx.Request.Header.ContentLength() > maxBody {
				rejected(fasthttp.StatusRequestEntityTooLarge)
				d.writeError(ctx, errTooLarge)
				return fasthttp.StatusRequestEntityTooLarge
			}
			return fasthttp.StatusContinue
		},
		ReadTimeout:  cfg.Ingest.ReadTimeout.D(), // a slow client cannot hold a connection forever
		WriteTimeout: 30 * time.Second,
		// Shorter than the read timeout: idle keep-alive connections must
		// not hold ingest.max_connections' slots (capListener) for long.
		IdleTimeout:           cfg.Ingest.IdleTimeout.D(),
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
	}
}

// serverErrors answers errors fasthttp detects before a handler runs
// (body too large, malformed request) in the API's JSON form. fasthttp's
// error text quotes the raw request (an Authorization header, the body),
// so none of it reaches the answer or the log. Only the ingest listener's
// count in hookd_ingest_rejected_total.
func (d *Daemon) serverErrors(ingest bool) func(*fasthttp.RequestCtx, error) {
	count, timeouts := func(int) {}, "30 s for a request"
	if ingest {
		count, timeouts = rejected, "ingest.idle_timeout, ingest.read_timeout"
	}
	return func(ctx *fasthttp.RequestCtx, err error) {
		var small *fasthttp.ErrSmallBuffer
		var timeout net.Error
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			count(413)
			d.writeError(ctx, errTooLarge)
		case errors.As(err, &timeout) && timeout.Timeout():
			count(408)
			d.writeError(ctx, &apiError{Status: 408, Code: "request_timeout", Message: "no complete request in time (" + timeouts + ")"})
		case errors.As(err, &small):
			count(431)
			d.writeError(ctx, &apiError{Status: 431, Code: "headers_too_large", Message: "request headers are too large"})
		default:
			count(400)
			d.writeError(ctx, badRequest("malformed HTTP request"))
		}
	}
}

// The ingest listener's paths. handleIngest's switch names these and no
// other, so ingestRoutes (and Routes, which api/openapi.yaml is checked
// against) is the whole of what it serves.
const (
	pathHealthz = "/healthz"
	pathReadyz  = "/readyz"
	pathEvents  = "/v1/events"
	pathBatch   = "/v1/events/batch"
)

// /healthz answers whatever the method; GET is the one documented.
var ingestRoutes = []Route{
	{"ingest", "GET", pathHealthz},
	{"ingest", "GET", pathReadyz},
	{"ingest", "POST", pathEvents},
	{"ingest", "POST", pathBatch},
}

func (d *Daemon) handleIngest(ctx *fasthttp.RequestCtx) {
	cfg := d.cfg.Load()
	path := api.Path(ctx)
	switch path {
	case pathHealthz:
		writeJSON(ctx, 200, map[string]string{"status": "ok"})
		return
	case pathReadyz:
		// Ready means an event posted now would be stored: the same
		// refusals as ingest, and a log and database that can be written.
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Response.Header.Set("Allow", "GET, HEAD")
			d.writeError(ctx, methodNotAllowed("GET, HEAD"))
			return
		}
		switch err := d.store.Writable(ctx); {
		case d.closing.Load():
			d.writeError(ctx, errShutdown)
		case d.lowDisk.Load():
			d.writeError(ctx, errDiskLow)
		case err != nil:
			d.writeError(ctx, err)
		case cfg.Storage.MaxPending > 0 && d.store.Pending() >= cfg.Storage.MaxPending:
			d.writeError(ctx, errPendingFull)
		default:
			writeJSON(ctx, 200, map[string]any{"status": "ready", "pending": d.store.Pending()})
		}
		return
	case pathEvents, pathBatch:
	default:
		d.writeError(ctx, errNotFound)
		return
	}
	var err error
	switch {
	case !ctx.IsPost():
		err = methodNotAllowed("POST")
		ctx.Response.Header.Set("Allow", "POST")
	case !checkToken(ctx, cfg.IngestToken()):
		err = errUnauthorized
	case d.closing.Load():
		err = errShutdown
	case d.lowDisk.Load():
		err = errDiskLow
	case !api.Identity(&ctx.Request.Header):
		err = errEncoding
	case !api.IsJSON(ctx.Request.Header.ContentType()):
		err = errUnsupported
	default:
		err = d.budget.run(len(ctx.PostBody()), func() error {
			if path == pathEvents {
				return d.ingestOne(ctx, cfg)
			}
			return d.ingestBatch(ctx, cfg)
		})
	}
	if err != nil {
		ae := toAPIError(err)
		rejected(ae.Status)
		d.writeError(ctx, ae)
	}
}

// parsedEvent is an event ingest has validated and routed.
type parsedEvent struct {
	store.NewEvent
	own      []*delivery.Endpoint // the event's tenant's own endpoints (setQuota)
	filtered []*metrics.Counter   // the filters that kept it out, to count once it is stored
}

// stored counts what storing the event makes true.
func (p *parsedEvent) stored() {
	ingested.Inc()
	for _, c := range p.filtered {
		c.Inc()
	}
}

// parseEvent validates one event and renders its deliveries. now is the
// ingest time, which becomes the envelope's stable timestamp.
func parseEvent(body []byte, key string, t *delivery.Table, now time.Time) (p parsedEvent, err error) {
	in, err := decodeEvent(body)
	if err != nil {
		return p, err
	}
	switch {
	case in.Type == nil:
		return p, badRequest("type: required")
	case !config.IsID(*in.Type):
		return p, badRequest("type: %s", config.TypeRule)
	case in.Data == nil && in.Payload == nil:
		return p, badRequest("data: required unless payload is given")
	case in.Data != nil && in.Payload != nil:
		return p, badRequest("data and payload: give one, not both")
	}
	id, fresh := "", false
	if in.ID != nil {
		if !config.ValidID(*in.ID) {
			return p, badRequest("id: %s", config.IDRule)
		}
		id = *in.ID
	} else if key != "" {
		// SPEC §3: the key is treated as the id, so it is a duplicate of
		// an event stored with that id, and a later event with that id
		// is one of it. With an id in the body too, the key stays a key
		// of its own (a per-request key alongside the emitter's ids).
		id = key
	} else {
		id, fresh = "evt_"+ulid.Make().String(), true
	}
	tenant := ""
	if in.Tenant != nil {
		if !config.ValidID(*in.Tenant) {
			return p, badRequest("tenant: %s", config.IDRule)
		}
		tenant = *in.Tenant
		p.own = t.TenantEndpoints(tenant)
	}
	eps, err := t.RouteOwn(*in.Type, tenant, p.own, in.Endpoints)
	if err != nil {
		// Unknown and another tenant's endpoints get the same answer: a
		// tenant learns nothing about the others.
		return p, badRequest("endpoints: %v", err)
	}
	// data and payload are slices of the request body, which fasthttp
	// reuses for the connection's next request: the event owns a copy.
	// A payload is the delivery body itself, sent after this handler ends.
	ev := store.Event{ID: id, Type: *in.Type, Tenant: tenant, Created: now}
	if in.Payload != nil {
		ev.Payload, ev.Raw = true, bytes.Clone(in.Payload)
	} else {
		ev.Raw = bytes.Clone(in.Data)
	}
	ne := &p.NewEvent
	*ne = store.NewEvent{Event: ev, DedupKey: key, FreshID: fresh}
	flt := newEventFilter(id, ev.Type, tenant, ev.Raw)
	for _, ep := range eps {
		if !flt.accepts(ep) {
			continue // no delivery, not even a parked one
		}
		nd := store.NewDelivery{Endpoint: ep.ID, Body: ep.Render(&ev), Hint: t.Routed(ep)}
		if t.Disabled(ep.ID) {
			nd.Parked = delivery.ReasonDisabled // kept for enable + redeliver, not sent
		}
		ne.Deliveries = append(ne.Deliveries, nd)
	}
	p.filtered = flt.kept
	return p, nil
}

// setQuota bounds a tenant's event by [tenants] max_pending: the store
// refuses it while that tenant's own endpoints have that many deliveries
// pending, counting the events accepted before it (in its batch too), so
// one customer's dead receivers fill its quota, not everyone's queue.
func setQuota(cfg *config.Config, ne *store.NewEvent, own []*delivery.Endpoint) {
	if len(own) == 0 || cfg.Tenants.MaxPending == 0 {
		return
	}
	q := &store.Quota{Endpoints: make([]string, len(own)), Max: cfg.Tenants.MaxPending}
	for i, ep := range own {
		q.Endpoints[i] = ep.ID
	}
	ne.Quota = q
}

func (d *Daemon) limits(cfg *config.Config) store.Limits {
	return store.Limits{DedupWindow: cfg.Storage.DedupWindow.D(), MaxPending: cfg.Storage.MaxPending}
}

// idempotencyKey is the request's Idempotency-Key header, or "".
func idempotencyKey(ctx *fasthttp.RequestCtx) (string, error) {
	all := ctx.Request.Header.PeekAll("Idempotency-Key")
	switch {
	case len(all) == 0:
		return "", nil
	case len(all) > 1: // an empty first one too
		// A proxy in front may take the other one: as with a query
		// parameter given twice, neither is guessed.
		return "", badRequest("Idempotency-Key: given twice")
	case !config.ValidID(string(all[0])): // empty too: not taken for no key
		return "", badRequest("Idempotency-Key: %s", config.IDRule)
	}
	return string(all[0]), nil
}

func (d *Daemon) ingestOne(ctx *fasthttp.RequestCtx, cfg *config.Config) error {
	body := ctx.PostBody()
	if len(body) > int(cfg.Ingest.MaxEventBytes) {
		return errTooLarge
	}
	key, err := idempotencyKey(ctx)
	if err != nil {
		return err
	}
	t := d.sched.Table()
	p, err := parseEvent(body, key, t, time.Now().UTC())
	if err != nil {
		return err
	}
	setQuota(cfg, &p.NewEvent, p.own)
	res, err := d.store.Ingest(ctx, []store.NewEvent{p.NewEvent}, d.limits(cfg))
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
		p.stored()
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

// itemError is item i's refusal; retryAfter keeps the longest Retry-After
// of the refusals, which the batch's answer carries.
func itemError(i int, err error, retryAfter *int) client.ItemResult {
	ae := toAPIError(err)
	rejected(ae.Status)
	*retryAfter = max(*retryAfter, ae.RetryAfter)
	return client.ItemResult{Index: i, Status: ae.Status, Error: &client.ErrorDetail{Code: ae.Code, Message: ae.Message}}
}

// ingestBatch stores up to maxBatch events in one commit. Invalid items
// are reported per item and do not stop the valid ones.
func (d *Daemon) ingestBatch(ctx *fasthttp.RequestCtx, cfg *config.Config) error {
	var items []json.RawMessage
	if err := json.Unmarshal(ctx.PostBody(), &items); err != nil {
		return badRequest("body must be a JSON array of events: %s", api.BodyProblem(err))
	}
	switch {
	case len(items) == 0:
		return badRequest("batch is empty")
	case len(items) > maxBatch:
		return badRequest("batch has %d events; at most %d", len(items), maxBatch)
	}
	t, now := d.sched.Table(), time.Now().UTC()
	results := make([]client.ItemResult, len(items))
	var (
		parsed     []parsedEvent
		index      []int
		retryAfter int // seconds: an item refused for now (429, 503) says when to try again
	)
	for i, raw := range items {
		if len(raw) > int(cfg.Ingest.MaxEventBytes) {
			results[i] = itemError(i, errTooLarge, &retryAfter)
			continue
		}
		p, err := parseEvent(raw, "", t, now)
		if err != nil {
			results[i] = itemError(i, err, &retryAfter)
			continue
		}
		setQuota(cfg, &p.NewEvent, p.own)
		parsed = append(parsed, p)
		index = append(index, i)
	}
	if len(parsed) > 0 {
		valid := make([]store.NewEvent, len(parsed))
		for i := range parsed {
			valid[i] = parsed[i].NewEvent
		}
		res, err := d.store.Ingest(ctx, valid, d.limits(cfg))
		if err != nil {
			return err
		}
		for j, r := range res {
			i := index[j]
			switch {
			case r.Err != nil:
				results[i] = itemError(i, r.Err, &retryAfter)
			case r.Duplicate:
				duplicates.Inc()
				results[i] = client.ItemResult{Index: i, Status: 200, ID: r.ID, Duplicate: ptr(true)}
			default:
				parsed[j].stored()
				results[i] = client.ItemResult{Index: i, Status: 202, ID: r.ID, Duplicate: ptr(false), Deliveries: ptr(r.Deliveries)}
			}
		}
	}
	if retryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(ctx, 200, client.BatchResults{Results: results})
	return nil
}

func ptr[T any](v T) *T { return &v }
