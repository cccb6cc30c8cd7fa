package daemon

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"hookd/client"
	"hookd/config"
	"hookd/delivery"
	"hookd/store"
)

func (d *Daemon) newAdminServer() *fasthttp.Server {
	return &fasthttp.Server{
		Name:                  "hookd-admin",
		Handler:               d.handleAdmin,
		ErrorHandler:          d.handleServerError,
		Logger:                serverLogger{d.log},
		MaxRequestBodySize:    1 << 20,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
	}
}

// route is one admin endpoint: method and path pattern with {} segments.
type route struct {
	method, pattern string
	h               func(d *Daemon, ctx *fasthttp.RequestCtx, args []string) error
}

var adminRoutes = []route{
	{"GET", "/v1/events/{}", (*Daemon).adminEvent},
	{"POST", "/v1/events/{}/redeliver", (*Daemon).adminRedeliver},
	{"GET", "/v1/undeliverable", (*Daemon).adminUndeliverable},
	{"POST", "/v1/undeliverable/redeliver", (*Daemon).adminRedeliverUndeliverable},
	{"GET", "/v1/endpoints", (*Daemon).adminEndpoints},
	{"POST", "/v1/endpoints", (*Daemon).adminCreateEndpoint},
	{"GET", "/v1/event-types", (*Daemon).adminEventTypes},
	{"GET", "/v1/tenants", (*Daemon).adminTenants},
	{"GET", "/v1/deliveries", (*Daemon).adminDeliveries},
	{"DELETE", "/v1/tenants/{}", (*Daemon).adminDeleteTenant},
	{"GET", "/v1/endpoints/{}", (*Daemon).adminEndpoint},
	{"PATCH", "/v1/endpoints/{}", (*Daemon).adminPatchEndpoint},
	{"DELETE", "/v1/endpoints/{}", (*Daemon).adminDeleteEndpoint},
	{"GET", "/v1/endpoints/{}/secret", (*Daemon).adminEndpointSecret},
	{"POST", "/v1/endpoints/{}/rotate-secret", (*Daemon).adminRotateSecret},
	{"POST", "/v1/endpoints/{}/test", (*Daemon).adminTest},
	{"POST", "/v1/endpoints/{}/enable", (*Daemon).adminEnable},
	{"POST", "/v1/endpoints/{}/disable", (*Daemon).adminDisable},
	{"GET", "/metrics", (*Daemon).adminMetrics},
	{"GET", "/v1/backup", (*Daemon).adminBackup},
	{"GET", "/openapi.yaml", (*Daemon).adminOpenAPI},
}

func match(pattern, path string) ([]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var args []string
	for i := range ps {
		switch {
		case ps[i] == "{}" && xs[i] != "":
			args = append(args, xs[i])
		case ps[i] != xs[i]:
			return nil, false
		}
	}
	return args, true
}

func (d *Daemon) handleAdmin(ctx *fasthttp.RequestCtx) {
	if !checkToken(ctx, d.cfg.Load().AdminToken()) {
		d.writeError(ctx, errUnauthorized)
		return
	}
	path := string(ctx.Path())
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
		if err := r.h(d, ctx, args); err != nil {
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

func (d *Daemon) adminEvent(ctx *fasthttp.RequestCtx, args []string) error {
	ev, ds, err := d.store.EventDetail(args[0])
	if err != nil {
		return err
	}
	out := client.Event{ID: ev.ID, Type: ev.Type, CreatedAt: ev.Created, Deliveries: []client.Delivery{}}
	if ev.Payload {
		out.Payload = ev.Raw
	} else {
		out.Data = ev.Raw
	}
	for _, dd := range ds {
		v := viewDelivery(d.sched.Table(), dd.Delivery)
		for _, a := range dd.Attempts {
			v.History = append(v.History, viewAttempt(a))
		}
		out.Deliveries = append(out.Deliveries, v)
	}
	writeJSON(ctx, 200, out)
	return nil
}

// decodeBody reads an optional JSON object body into v.
func decodeBody(ctx *fasthttp.RequestCtx, v any) error {
	body := ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body: %s", jsonError(err))
	}
	return nil
}

func (d *Daemon) adminRedeliver(ctx *fasthttp.RequestCtx, args []string) error {
	var in client.RedeliverRequest
	if err := decodeBody(ctx, &in); err != nil {
		return err
	}
	var create *store.NewDelivery
	if in.Endpoint != "" {
		ep := d.sched.Table().Get(in.Endpoint)
		if ep == nil {
			return unknownEndpoint(in.Endpoint)
		}
		ev, err := d.store.Event(args[0])
		if err != nil {
			return err
		}
		create = &store.NewDelivery{Endpoint: ep.ID, Body: ep.Render(ev)}
		in.Endpoint = ep.ID
	}
	ids, err := d.store.Redeliver(ctx, args[0], in.Endpoint, create)
	if err != nil {
		return err
	}
	t := d.sched.Table()
	eps := make([]string, len(ids))
	for i, id := range ids {
		eps[i] = t.Name(id)
	}
	writeJSON(ctx, 202, client.Redelivered{ID: args[0], Endpoints: eps})
	return nil
}

func (d *Daemon) adminUndeliverable(ctx *fasthttp.RequestCtx, _ []string) error {
	q := ctx.QueryArgs()
	limit := 100
	if v := q.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit: must be between 1 and 1000")
		}
		limit = n
	}
	t := d.sched.Table()
	endpoint := string(q.Peek("endpoint"))
	if ep := t.Get(endpoint); ep != nil {
		endpoint = ep.ID
	}
	items, next, err := d.store.ListUndeliverable(endpoint, limit, string(q.Peek("cursor")))
	if err != nil {
		return badRequest("cursor: %v", err)
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

func (d *Daemon) adminRedeliverUndeliverable(ctx *fasthttp.RequestCtx, _ []string) error {
	var in client.RedeliverUndeliverableRequest
	if err := decodeBody(ctx, &in); err != nil {
		return err
	}
	if in.Endpoint != "" {
		ep := d.sched.Table().Get(in.Endpoint)
		if ep == nil {
			return unknownEndpoint(in.Endpoint)
		}
		in.Endpoint = ep.ID
	}
	n, err := d.store.RedeliverUndeliverable(ctx, in.Endpoint, in.Since, in.Until)
	if err != nil {
		return err
	}
	writeJSON(ctx, 202, client.RedeliveredUndeliverable{Redelivered: n})
	return nil
}

// adminTest sends a signed test event to an endpoint now, outside the
// queue, and returns the attempt.
func (d *Daemon) adminTest(ctx *fasthttp.RequestCtx, args []string) error {
	ep := d.sched.Table().Get(args[0])
	if ep == nil || ep.Internal {
		return errNotFound
	}
	in := client.TestRequest{Type: ep.TestEventType}
	if err := decodeBody(ctx, &in); err != nil {
		return err
	}
	if !config.IDRe.MatchString(in.Type) {
		return badRequest("type: must be 1-128 characters of [A-Za-z0-9._:-]")
	}
	if in.Data == nil {
		in.Data, _ = json.Marshal(d.testData(ep, in.Type))
	}
	ne := generated(ep, in.Type, in.Data)
	res := d.sched.Sender().Send(ctx, ep, ne.Event.ID, in.Type, ne.Deliveries[0].Body)
	a := viewAttempt(&res.Attempt)
	a.N = 1
	writeJSON(ctx, 200, client.TestResult{ID: ne.Event.ID, Endpoint: ep.Name, OK: res.OK(), Attempt: a})
	return nil
}

func (d *Daemon) setDisabled(ctx *fasthttp.RequestCtx, name string, on bool) error {
	ep := d.sched.Table().Get(name)
	if ep == nil {
		return errNotFound
	}
	if err := d.sched.SetDisabled(ctx, ep.ID, on, "disabled by operator"); err != nil {
		return err
	}
	state := "active"
	if on {
		state = "disabled"
	}
	writeJSON(ctx, 200, client.EndpointState{Name: name, State: state})
	return nil
}

func (d *Daemon) adminEnable(ctx *fasthttp.RequestCtx, args []string) error {
	return d.setDisabled(ctx, args[0], false)
}

func (d *Daemon) adminDisable(ctx *fasthttp.RequestCtx, args []string) error {
	return d.setDisabled(ctx, args[0], true)
}
