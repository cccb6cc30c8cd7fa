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
	{"POST", "/v1/endpoints/{}/test", (*Daemon).adminTest},
	{"POST", "/v1/endpoints/{}/enable", (*Daemon).adminEnable},
	{"POST", "/v1/endpoints/{}/disable", (*Daemon).adminDisable},
	{"GET", "/metrics", (*Daemon).adminMetrics},
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

func viewDelivery(dl *store.Delivery) client.Delivery {
	v := client.Delivery{Endpoint: dl.Endpoint, State: dl.State.String(), Attempts: dl.Attempts, Reason: dl.Reason,
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
		v := viewDelivery(dd.Delivery)
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
		create = &store.NewDelivery{Endpoint: ep.Name, Body: ep.Render(ev)}
	}
	eps, err := d.store.Redeliver(ctx, args[0], in.Endpoint, create)
	if err != nil {
		return err
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
	items, next, err := d.store.ListUndeliverable(string(q.Peek("endpoint")), limit, string(q.Peek("cursor")))
	if err != nil {
		return badRequest("cursor: %v", err)
	}
	out := client.UndeliverablePage{Items: []client.ParkedDelivery{}, NextCursor: next}
	for _, p := range items {
		v := client.ParkedDelivery{EventID: p.EventID, EventType: p.EventType, CreatedAt: p.Created, Delivery: viewDelivery(p.Delivery)}
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
	if in.Endpoint != "" && d.sched.Table().Get(in.Endpoint) == nil {
		return unknownEndpoint(in.Endpoint)
	}
	n, err := d.store.RedeliverUndeliverable(ctx, in.Endpoint, in.Since, in.Until)
	if err != nil {
		return err
	}
	writeJSON(ctx, 202, client.RedeliveredUndeliverable{Redelivered: n})
	return nil
}

// adminEndpoints lists endpoints with their state: disabled (410 or an
// operator), failing (failing_after consecutive failed attempts) or
// active. Secrets are never part of the view.
func (d *Daemon) adminEndpoints(ctx *fasthttp.RequestCtx, _ []string) error {
	t := d.sched.Table()
	stats := d.sched.Stats()
	pending := d.store.PendingByEndpoint()
	states, err := d.store.EndpointStates()
	if err != nil {
		return err
	}
	after := d.cfg.Load().Notify.FailingAfter
	out := client.EndpointList{Endpoints: []client.Endpoint{}}
	for _, ep := range t.All() {
		if ep.Internal {
			continue
		}
		st := stats[ep.Name]
		v := client.Endpoint{Name: ep.Name, URL: ep.URL, Events: ep.Events, State: "active", Scheme: ep.Signing.Scheme,
			Pending: pending[ep.Name], InFlight: st.InFlight, ConsecutiveFailures: st.Failures,
			LastSuccess: timePtr(st.LastSuccess), LastFailure: timePtr(st.LastFailure),
			LastFailureStatus: st.LastFailureStatus, LastFailureError: st.LastFailureError,
			Ordering: ep.Ordering, Filter: ep.Filter, BlockedSince: timePtr(st.BlockedSince)}
		switch {
		case t.Disabled(ep.Name):
			v.State, v.DisabledReason = "disabled", states[ep.Name].Reason
		case st.Failures >= after:
			v.State = "failing"
		}
		out.Endpoints = append(out.Endpoints, v)
	}
	writeJSON(ctx, 200, out)
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
		in.Data, _ = json.Marshal(testData(ep))
	}
	ne := generated(ep, in.Type, in.Data)
	res := d.sched.Sender().Send(ctx, ep, ne.Event.ID, in.Type, ne.Deliveries[0].Body)
	a := viewAttempt(&res.Attempt)
	a.N = 1
	writeJSON(ctx, 200, client.TestResult{ID: ne.Event.ID, Endpoint: ep.Name, OK: res.OK(), Attempt: a})
	return nil
}

func (d *Daemon) setDisabled(ctx *fasthttp.RequestCtx, name string, on bool) error {
	if d.sched.Table().Get(name) == nil {
		return errNotFound
	}
	if err := d.sched.SetDisabled(ctx, name, on, "disabled by operator"); err != nil {
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
