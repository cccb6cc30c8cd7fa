package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"hookd/api"
	"hookd/client"
	"hookd/delivery"
	"hookd/store"
)

func (d *Daemon) newAdminServer() *fasthttp.Server {
	return d.browserFacingServer("hookd-admin", d.handleAdmin, d.serverErrors(false), 1<<20)
}

// browserFacingServer is the admin or the portal listener's server: people
// and their browsers, not the emitter's bulk traffic, so fixed generous
// timeouts and a body limit each.
func (d *Daemon) browserFacingServer(name string, h fasthttp.RequestHandler, onErr func(*fasthttp.RequestCtx, error), maxBody int) *fasthttp.Server {
	return &fasthttp.Server{
		Name:                  name,
		Handler:               h,
		ErrorHandler:          onErr,
		Logger:                serverLogger{d.log},
		MaxRequestBodySize:    maxBody,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
	}
}

// route is one admin endpoint: method and path pattern with {} segments.
// A list's query parameters are named: another one, or one given twice,
// is a 400, because a misspelt filter (?tenat=) would otherwise answer
// with everyone's records as if they were the ones asked for.
type route struct {
	method, pattern string
	h               func(d *Daemon, ctx *fasthttp.RequestCtx, args []string) error
	query           []string // nil: the route reads none, and ignores any
}

var (
	listQuery   = []string{"limit", "cursor"}
	parkedQuery = []string{"endpoint", "limit", "cursor"}
)

var adminRoutes = []route{
	{"GET", "/v1/events/{}", (*Daemon).adminEvent, nil},
	{"POST", "/v1/events/{}/redeliver", (*Daemon).adminRedeliver, nil},
	{"GET", "/v1/undeliverable", (*Daemon).adminUndeliverable, parkedQuery},
	{"POST", "/v1/undeliverable/redeliver", (*Daemon).adminRedeliverUndeliverable, nil},
	{"GET", "/v1/endpoints", (*Daemon).adminEndpoints, api.EndpointsQuery},
	{"POST", "/v1/endpoints", (*Daemon).adminCreateEndpoint, nil},
	{"GET", "/v1/event-types", (*Daemon).adminEventTypes, api.NoQuery},
	{"GET", "/v1/tenants", (*Daemon).adminTenants, listQuery},
	{"GET", "/v1/deliveries", (*Daemon).adminDeliveries, api.DeliveriesQuery},
	{"DELETE", "/v1/tenants/{}", (*Daemon).adminDeleteTenant, nil},
	{"GET", "/v1/endpoints/{}", (*Daemon).adminEndpoint, nil},
	{"PATCH", "/v1/endpoints/{}", (*Daemon).adminPatchEndpoint, nil},
	{"DELETE", "/v1/endpoints/{}", (*Daemon).adminDeleteEndpoint, nil},
	{"GET", "/v1/endpoints/{}/secret", (*Daemon).adminEndpointSecret, nil},
	{"POST", "/v1/endpoints/{}/rotate-secret", (*Daemon).adminRotateSecret, nil},
	{"POST", "/v1/endpoints/{}/test", (*Daemon).adminTest, nil},
	{"POST", "/v1/endpoints/{}/enable", (*Daemon).adminEnable, nil},
	{"POST", "/v1/endpoints/{}/disable", (*Daemon).adminDisable, nil},
	{"GET", "/metrics", (*Daemon).adminMetrics, nil},
	{"GET", "/v1/backup", (*Daemon).adminBackup, nil},
	{"GET", "/openapi.yaml", (*Daemon).adminOpenAPI, nil},
	{"POST", "/v1/tenants/{}/portal", (*Daemon).adminPortalLink, nil},
}

func (d *Daemon) handleAdmin(ctx *fasthttp.RequestCtx) {
	if !d.allowedHost(ctx) {
		d.writeError(ctx, errMisdirected)
		return
	}
	path := api.Path(ctx)
	if path == "/ui" || strings.HasPrefix(path, "/ui/") {
		d.portal.srv.UIHandler(ctx) // its own login: a browser sends no bearer token
		return
	}
	// Without [admin] token the admin API trusts whoever reaches the
	// loopback listener, and a page the operator has open can reach it
	// too (api.FromOtherSite).
	if api.FromOtherSite(ctx) {
		d.writeError(ctx, errCrossSite)
		return
	}
	if !checkToken(ctx, d.cfg.Load().AdminToken()) {
		d.writeError(ctx, errUnauthorized)
		return
	}
	if strings.HasPrefix(path, "/debug/pprof/") && d.cfg.Load().Admin.Pprof {
		pprofhandler.PprofHandler(ctx)
		return
	}
	var allowed []string
	for _, r := range adminRoutes {
		args, ok := match(r.pattern, path)
		if !ok {
			continue
		}
		if string(ctx.Method()) != r.method {
			allowed = append(allowed, r.method)
			continue
		}
		err := api.CheckQuery(ctx.QueryArgs(), r.query)
		if err == nil && len(bytes.TrimSpace(ctx.PostBody())) > 0 {
			// As at ingest and in the portal: a body is JSON, says so, and
			// is sent as it is.
			switch {
			case !api.Identity(&ctx.Request.Header):
				err = errEncoding
			case !api.IsJSON(ctx.Request.Header.ContentType()):
				err = errUnsupported
			}
		}
		if err == nil {
			err = r.h(d, ctx, args)
		}
		if err != nil {
			d.writeError(ctx, err)
		}
		return
	}
	if len(allowed) > 0 {
		ctx.Response.Header.Set("Allow", strings.Join(allowed, ", "))
		d.writeError(ctx, methodNotAllowed(strings.Join(allowed, ", ")))
		return
	}
	d.writeError(ctx, errNotFound)
}

// JSON views of stored records, in the types package client shares with
// its callers. Bodies are shown as JSON when they are, as strings otherwise.

func viewAttempt(a *store.Attempt) client.Attempt {
	v := client.Attempt{N: a.N, At: a.At, Status: a.Status, LatencyMS: float64(a.Latency.Microseconds()) / 1000, Error: a.Error}
	if len(a.Response) > 0 {
		v.Response = rawOrString(a.Response)
	}
	return v
}

func rawOrString(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	out, _ := json.Marshal(s)
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// viewDelivery shows a delivery with its endpoint's name (the store keeps
// the endpoint's internal id).
func viewDelivery(t *delivery.Table, dl *store.Delivery) client.Delivery {
	v := client.Delivery{Endpoint: t.Name(dl.Endpoint), State: dl.State.String(), Attempts: dl.Attempts, Reason: dl.Reason,
		ParkedAt: timePtr(dl.Parked), DeliveredAt: timePtr(dl.Done)}
	if dl.State == store.Pending {
		v.NextAttempt = timePtr(dl.Due)
	}
	return v
}

// The admin API's handlers: each reads its request, calls the operation
// with the operators' scope (every tenant) and writes the answer. The
// operations themselves, shared with the portal, live with their subject
// (endpoints.go, deliveries.go).

var all = api.AllTenants()

func (d *Daemon) adminEvent(ctx *fasthttp.RequestCtx, args []string) error {
	v, err := d.Event(all, args[0])
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminRedeliver(ctx *fasthttp.RequestCtx, args []string) error {
	var in client.RedeliverRequest
	if err := decodeBody(ctx, &in); err != nil {
		return err
	}
	if err := api.RedeliverNamed(ctx.PostBody()); err != nil {
		return badRequest("%v", err)
	}
	v, err := d.Redeliver(ctx, all, args[0], in)
	return api.Reply(ctx, 202, v, err)
}

func (d *Daemon) adminRedeliverUndeliverable(ctx *fasthttp.RequestCtx, _ []string) error {
	var body api.UndeliverableRedeliver
	if err := decodeBody(ctx, &body); err != nil {
		return err
	}
	if err := api.RedeliverNamed(ctx.PostBody()); err != nil {
		return badRequest("%v", err)
	}
	in, err := body.Request(time.Now())
	if err != nil {
		return err
	}
	v, err := d.RedeliverUndeliverable(ctx, all, in)
	return api.Reply(ctx, 202, v, err)
}

func (d *Daemon) adminDeliveries(ctx *fasthttp.RequestCtx, _ []string) error {
	q := ctx.QueryArgs()
	limit, err := api.Limit(q.Peek("limit"))
	if err != nil {
		return err
	}
	v, err := d.Deliveries(all, client.DeliveryQuery{Tenant: string(q.Peek("tenant")), Endpoint: string(q.Peek("endpoint")),
		Status: string(q.Peek("status")), Type: string(q.Peek("type")), Since: string(q.Peek("since")), Until: string(q.Peek("until")),
		Limit: limit, Cursor: string(q.Peek("cursor"))})
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminEndpoints(ctx *fasthttp.RequestCtx, _ []string) error {
	q := ctx.QueryArgs()
	limit, err := api.Limit(q.Peek("limit"))
	if err != nil {
		return err
	}
	v, err := d.Endpoints(all, client.EndpointQuery{Tenant: string(q.Peek("tenant")), Limit: limit, Cursor: string(q.Peek("cursor"))})
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminEndpoint(ctx *fasthttp.RequestCtx, args []string) error {
	v, err := d.Endpoint(all, args[0])
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminCreateEndpoint(ctx *fasthttp.RequestCtx, _ []string) error {
	key, err := idempotencyKey(ctx)
	if err != nil {
		return err
	}
	v, replayed, err := d.createEndpoint(ctx, all, ctx.PostBody(), key)
	if replayed {
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	return api.Reply(ctx, 201, v, err)
}

func (d *Daemon) adminPatchEndpoint(ctx *fasthttp.RequestCtx, args []string) error {
	v, err := d.PatchEndpoint(ctx, all, args[0], ctx.PostBody())
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminDeleteEndpoint(ctx *fasthttp.RequestCtx, args []string) error {
	if err := noBody(ctx); err != nil {
		return err
	}
	if err := d.DeleteEndpoint(ctx, all, args[0]); err != nil {
		return err
	}
	ctx.SetStatusCode(204)
	return nil
}

func (d *Daemon) adminEndpointSecret(ctx *fasthttp.RequestCtx, args []string) error {
	v, err := d.EndpointSecret(all, args[0])
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminRotateSecret(ctx *fasthttp.RequestCtx, args []string) error {
	var in api.RotateBody
	if err := decodeBody(ctx, &in); err != nil {
		return err
	}
	req, err := in.Request()
	if err != nil {
		return err
	}
	v, err := d.RotateSecret(ctx, all, args[0], req)
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminTest(ctx *fasthttp.RequestCtx, args []string) error {
	var in client.TestRequest
	if err := decodeBody(ctx, &in); err != nil {
		return err
	}
	if err := api.NonEmpty(ctx.PostBody(), "type", "the endpoint's test type"); err != nil {
		return badRequest("%v", err)
	}
	v, err := d.TestEndpoint(ctx, all, args[0], in)
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminEnable(ctx *fasthttp.RequestCtx, args []string) error {
	if err := noBody(ctx); err != nil {
		return err
	}
	v, err := d.SetDisabled(ctx, all, args[0], false)
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminDisable(ctx *fasthttp.RequestCtx, args []string) error {
	if err := noBody(ctx); err != nil {
		return err
	}
	v, err := d.SetDisabled(ctx, all, args[0], true)
	return api.Reply(ctx, 200, v, err)
}

func (d *Daemon) adminEventTypes(ctx *fasthttp.RequestCtx, _ []string) error {
	writeJSON(ctx, 200, d.EventTypes())
	return nil
}

// decodeBody reads an optional JSON object body into v.
func decodeBody(ctx *fasthttp.RequestCtx, v any) error {
	body := ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeStrict(body, v)
}

// noBody refuses a body on a route that takes none but an empty object:
// malformed JSON or an option the route does not have (`{"until":"1h"}`
// on a disable) is a 400 that changes nothing, not ignored while the
// change is made.
func noBody(ctx *fasthttp.RequestCtx) error { return decodeBody(ctx, &struct{}{}) }

// adminUndeliverable lists parked deliveries, oldest first (operators
// only; the portal reads the deliveries log).
func (d *Daemon) adminUndeliverable(ctx *fasthttp.RequestCtx, _ []string) error {
	q := ctx.QueryArgs()
	limit, err := api.Limit(q.Peek("limit"))
	if err != nil {
		return err
	}
	limit, _ = checkLimit(limit)
	t := d.sched.Table()
	endpoint := string(q.Peek("endpoint"))
	if ep := t.Get(endpoint); ep != nil {
		endpoint = ep.ID
	}
	items, next, err := d.store.ListUndeliverable(endpoint, limit, string(q.Peek("cursor")))
	if errors.Is(err, store.ErrBadCursor) {
		return badRequest("cursor: %v", err)
	} else if err != nil {
		return err
	}
	out := client.UndeliverablePage{Items: []client.ParkedDelivery{}, NextCursor: next}
	for _, p := range items {
		v := client.ParkedDelivery{EventID: p.EventID, EventType: p.EventType, CreatedAt: p.Created, Delivery: viewDelivery(t, p.Delivery)}
		if p.LastAttempt != nil {
			a := viewAttempt(p.LastAttempt)
			v.LastAttempt = &a
		}
		out.Items = append(out.Items, v)
	}
	writeJSON(ctx, 200, out)
	return nil
}

var match = api.Match

var errCrossSite = &apiError{Status: 403, Code: "forbidden",
	Message: "Origin: the admin API does not answer web pages of other sites (use the CLI, a client, or /ui/)"}
