package portal

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/html"

	"hookd/api"
	"hookd/client"
	"hookd/config"
)

// pageFake is an in-memory api.Operations for rendering the templates; the
// browser tests in tests/ use the real daemon.
type pageFake struct {
	eps    []client.Endpoint
	dels   []client.LoggedDelivery
	event  *client.Event
	types  []client.EventType
	tenant string
}

const hostile = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`

func newPageFake() *pageFake {
	now := time.Now()
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	f := &pageFake{tenant: "acme"}
	f.types = []client.EventType{
		{Name: "invoice.paid", Description: "An invoice was paid in full.", Example: json.RawMessage(`{"invoice":"in_123","amount":4200,"currency":"EUR"}`)},
		{Name: "invoice.failed", Description: "A payment attempt failed."},
		{Name: "customer.created", Description: "A new customer signed up."},
	}
	f.eps = []client.Endpoint{
		{Name: "ep_01jd3q8x2k", Source: "api", Tenant: "acme", URL: "https://orders.acme.example/hooks/hookd", Description: "Order sync (production)",
			Events: []string{"invoice.paid", "invoice.failed"}, State: "active", Scheme: "standard", Pending: 3, LastSuccess: ago(2 * time.Minute), Ordering: "none"},
		{Name: "ep_01jd3q9m4t", Source: "api", Tenant: "acme", URL: "https://crm.acme.example/webhooks", Events: []string{"*"}, State: "failing",
			Scheme: "standard", Pending: 41, ConsecutiveFailures: 7, LastFailure: ago(4 * time.Minute), LastFailureStatus: 503, LastSuccess: ago(3 * time.Hour), Ordering: "none"},
		{Name: "ep_01jd3qa0zz", Source: "api", Tenant: "acme", URL: "https://old.acme.example/hook", Events: []string{"customer.created"}, State: "disabled",
			DisabledReason: "the receiver answered 410 Gone", Scheme: "standard", Ordering: "fifo"},
		{Name: "ep_hostile", Source: "api", Tenant: "acme", URL: "https://x.example/" + hostile, Description: hostile, Events: []string{hostile},
			State: "active", Scheme: "standard", Filter: hostile, Ordering: "none"},
	}
	for i := range 12 {
		st := []string{"delivered", "delivered", "undeliverable", "pending"}[i%4]
		d := client.LoggedDelivery{EventID: "evt_01jd3r" + string(rune('a'+i)), Type: "invoice.paid", Tenant: "acme", Endpoint: f.eps[i%2].Name,
			Status: st, Attempts: 1 + i%3, CreatedAt: now.Add(-time.Duration(i) * 7 * time.Minute)}
		d.LastAttempt = &client.LastAttempt{At: d.CreatedAt.Add(time.Second), Status: 200}
		if st != "delivered" {
			d.LastAttempt.Status, d.LastAttempt.Error = 500, "receiver answered 500"
		}
		f.dels = append(f.dels, d)
	}
	f.dels[3].Type = hostile
	f.dels[2].Endpoint = f.eps[1].Name
	f.event = &client.Event{ID: "evt_01jd3rc", Type: "invoice.paid", CreatedAt: now.Add(-14 * time.Minute),
		Data: json.RawMessage(`{"invoice":"in_123","note":"` + strings.ReplaceAll(hostile, `"`, `\"`) + `"}`),
		Deliveries: []client.Delivery{{Endpoint: "ep_01jd3q9m4t", State: "undeliverable", Attempts: 3, Reason: "the receiver answered 500 to every attempt", ParkedAt: ago(time.Minute),
			History: []client.Attempt{
				{N: 1, At: now.Add(-14 * time.Minute), Status: 500, LatencyMS: 41.7, Response: json.RawMessage(`{"error":"database unavailable"}`)},
				{N: 2, At: now.Add(-9 * time.Minute), Status: 0, LatencyMS: 10000, Error: "timeout after 10s"},
				{N: 3, At: now.Add(-time.Minute), Status: 502, LatencyMS: 12, Response: json.RawMessage(`"` + strings.ReplaceAll(hostile, `"`, `\"`) + `"`)},
			}}}}
	return f
}

func (f *pageFake) Endpoints(s api.Scope, q client.EndpointQuery) (*client.EndpointList, error) {
	return &client.EndpointList{Items: f.eps}, nil
}
func (f *pageFake) Endpoint(s api.Scope, name string) (*client.Endpoint, error) {
	for i := range f.eps {
		if f.eps[i].Name == name {
			return &f.eps[i], nil
		}
	}
	return nil, api.ErrNotFound
}
func (f *pageFake) CreateEndpoint(context.Context, api.Scope, []byte) (*client.CreatedEndpoint, error) {
	return nil, api.ErrNotFound
}
func (f *pageFake) PatchEndpoint(context.Context, api.Scope, string, []byte) (*client.Endpoint, error) {
	return nil, api.ErrNotFound
}
func (f *pageFake) DeleteEndpoint(context.Context, api.Scope, string) error { return api.ErrNotFound }
func (f *pageFake) SetDisabled(context.Context, api.Scope, string, bool) (*client.EndpointState, error) {
	return nil, api.ErrNotFound
}
func (f *pageFake) TestEndpoint(context.Context, api.Scope, string, client.TestRequest) (*client.TestResult, error) {
	return nil, api.ErrNotFound
}
func (f *pageFake) EndpointSecret(api.Scope, string) (*client.Secrets, error) {
	return nil, api.ErrNotFound
}
func (f *pageFake) RotateSecret(context.Context, api.Scope, string, client.RotateRequest) (*client.Rotated, error) {
	return nil, api.ErrNotFound
}
func (f *pageFake) EndpointHours(s api.Scope, name string) (*api.Hours, error) {
	h := &api.Hours{Start: time.Now().Truncate(time.Hour).Add(-23 * time.Hour)}
	for i := range 24 {
		h.Delivered[i] = 20 + (i*37)%50
		if name == "ep_01jd3q9m4t" && i > 17 {
			h.Delivered[i], h.Failed[i] = 0, 12+i%5
		} else if i%7 == 3 {
			h.Failed[i] = 4
		}
	}
	if name == "ep_01jd3qa0zz" {
		h.Delivered = [24]int{}
		h.Failed = [24]int{}
	}
	return h, nil
}
func (f *pageFake) Deliveries(s api.Scope, q client.DeliveryQuery) (*client.DeliveryList, error) {
	if q.Since == "bogus" {
		return nil, api.BadRequest("since: not a time or a duration: %q", q.Since)
	}
	var out []client.LoggedDelivery
	for _, d := range f.dels {
		if (q.Endpoint == "" || d.Endpoint == q.Endpoint) && (q.Status == "" || d.Status == q.Status) {
			out = append(out, d)
		}
	}
	return &client.DeliveryList{Items: out, NextCursor: "c2"}, nil
}
func (f *pageFake) Event(s api.Scope, id string) (*client.Event, error) {
	if id == f.event.ID {
		return f.event, nil
	}
	return nil, api.ErrNotFound
}
func (f *pageFake) Redeliver(context.Context, api.Scope, string, client.RedeliverRequest) (*client.Redelivered, error) {
	return nil, api.ErrNotFound
}
func (f *pageFake) RedeliverUndeliverable(context.Context, api.Scope, client.RedeliverUndeliverableRequest) (*client.RedeliveredUndeliverable, error) {
	return nil, api.ErrNotFound
}
func (f *pageFake) EventTypes() *client.EventTypeList { return &client.EventTypeList{Items: f.types} }

func pageServer(ops api.Operations) *Server {
	cfg := config.Default()
	cfg.Portal.Title = "Acme Webhooks"
	s, err := New(context.Background(), Options{Ops: ops, Config: func() *config.Config { return cfg }, Log: zerolog.Nop()})
	if err != nil {
		panic(err)
	}
	return s
}

// get runs the page route matching uri directly (the router, session and
// security headers are portal.go's and tested there).
func get(t *testing.T, s *Server, sess *Session, uri string) (int, string, *fasthttp.RequestCtx) {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI(uri)
	p := string(ctx.URI().Path())
	for _, rt := range pageRoutes {
		args, ok := match(rt.pattern, p)
		if !ok || (rt.pattern == "/endpoints/{}" && p == "/endpoints/new") {
			continue
		}
		if err := rt.h(s, &request{ctx: ctx, sess: sess, args: args}); err != nil {
			t.Fatalf("GET %s: %v", uri, err)
		}
		return ctx.Response.StatusCode(), string(ctx.Response.Body()), ctx
	}
	t.Fatalf("GET %s: no route", uri)
	return 0, "", nil
}

var pageURIs = []string{"/", "/endpoints", "/endpoints/new", "/endpoints/new?events=invoice.paid", "/endpoints/ep_01jd3q8x2k",
	"/endpoints/ep_01jd3q9m4t", "/endpoints/ep_01jd3qa0zz", "/endpoints/ep_hostile", "/deliveries",
	"/deliveries?open=evt_01jd3rc&oe=ep_01jd3q9m4t", "/deliveries?since=bogus", "/events/evt_01jd3rc", "/event-types"}

func TestPagesRender(t *testing.T) {
	s := pageServer(newPageFake())
	sess := &Session{Scope: api.TenantScope("acme"), Caps: AllCaps, CSRF: "csrf-token-1"}
	for _, uri := range pageURIs {
		code, body, _ := get(t, s, sess, uri)
		if code != 200 {
			t.Errorf("GET %s: %d", uri, code)
		}
		if err := checkHTML(body); err != "" {
			t.Errorf("GET %s: %s", uri, err)
		}
		for _, want := range []string{"Acme Webhooks", `content="csrf-token-1"`, "/static/portal.css?v=", "/static/portal.js?v="} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: no %q", uri, want)
			}
		}
	}
	if _, body, _ := get(t, s, sess, "/deliveries?since=bogus"); !strings.Contains(body, "not a time or a duration") {
		t.Errorf("a filter error is not shown next to its field")
	}
	if _, body, _ := get(t, s, sess, "/deliveries?open=evt_01jd3rc&oe=ep_01jd3q9m4t"); !strings.Contains(body, "timeout after 10s") || !strings.Contains(body, "database unavailable") {
		t.Errorf("the opened delivery does not show its attempts")
	}
	if code, _, _ := get(t, s, sess, "/endpoints/nope"); code != 404 {
		t.Errorf("unknown endpoint: %d, want 404", code)
	}
	if code, _, _ := get(t, s, sess, "/events/evt_other"); code != 404 {
		t.Errorf("unknown event: %d, want 404", code)
	}
}

// checkHTML walks a page's tags: the attacker-controlled text of the fake
// must stay text (no <img>, no inline script), and nothing may need what
// the CSP forbids (inline script, style attributes, event handlers).
func checkHTML(body string) string {
	z := html.NewTokenizer(strings.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.Data == "img" {
				return "an <img> element (escaping failed)"
			}
			src := false
			for _, a := range tok.Attr {
				switch {
				case a.Key == "style", strings.HasPrefix(a.Key, "on"):
					return "attribute " + a.Key + " on <" + tok.Data + ">"
				case strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:"):
					return "a javascript: URL"
				case a.Key == "src":
					src = true
				}
			}
			if tok.Data == "script" && !src || tok.Data == "style" {
				return "inline <" + tok.Data + ">"
			}
		}
	}
}

// TestPagesFollowCapabilities: a view-only session sees no action buttons.
func TestPagesFollowCapabilities(t *testing.T) {
	s := pageServer(newPageFake())
	view := &Session{Scope: api.TenantScope("acme"), Caps: CapView, CSRF: "x"}
	for _, uri := range []string{"/endpoints", "/endpoints/ep_01jd3q9m4t", "/deliveries?endpoint=ep_01jd3q9m4t&open=evt_01jd3rc&oe=ep_01jd3q9m4t", "/events/evt_01jd3rc"} {
		_, body, _ := get(t, s, view, uri)
		body = strings.Replace(body, `data-action="POST /logout"`, "", 1) // logging out needs no capability
		if strings.Contains(body, "data-action") || strings.Contains(body, "data-api") {
			t.Errorf("GET %s as view-only shows an action", uri)
		}
	}
	all := &Session{Scope: api.TenantScope("acme"), Caps: AllCaps, CSRF: "x"}
	_, body, _ := get(t, s, all, "/endpoints/ep_01jd3q9m4t")
	for _, want := range []string{"/test", "/disable", "/secret", "/rotate-secret", "DELETE /endpoints/", "PATCH /endpoints/", "/undeliverable/redeliver"} {
		if !strings.Contains(body, want) {
			t.Errorf("endpoint page with every capability: no %q", want)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	s := pageServer(newPageFake())
	sess := &Session{Scope: api.TenantScope("acme"), Caps: CapView}
	code, body, ctx := get(t, s, sess, "/static/portal.css?v="+assets["portal.css"].hash)
	if code != 200 || len(body) == 0 || !strings.Contains(string(ctx.Response.Header.Peek("Cache-Control")), "immutable") {
		t.Fatalf("css: %d, cache %q", code, ctx.Response.Header.Peek("Cache-Control"))
	}
	ctx = &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI("/static/portal.js")
	ctx.Request.Header.Set("If-None-Match", assets["portal.js"].etag)
	if err := s.staticFile(&request{ctx: ctx, sess: sess, args: []string{"portal.js"}}); err != nil || ctx.Response.StatusCode() != 304 {
		t.Fatalf("js revalidation: %v %d", err, ctx.Response.StatusCode())
	}
	if err := s.staticFile(&request{ctx: &fasthttp.RequestCtx{}, sess: sess, args: []string{"x.css"}}); err != api.ErrNotFound {
		t.Fatalf("unknown asset: %v", err)
	}
}

// TestPreview writes every page to HOOKD_PORTAL_PREVIEW (a directory) with
// the fake data, to look at the design without a daemon.
func TestPreview(t *testing.T) {
	dir := os.Getenv("HOOKD_PORTAL_PREVIEW")
	if dir == "" {
		t.Skip("HOOKD_PORTAL_PREVIEW not set")
	}
	s := pageServer(newPageFake())
	sess := &Session{Scope: api.TenantScope("acme"), Caps: AllCaps, CSRF: "x"}
	for name, a := range assets {
		os.WriteFile(filepath.Join(dir, name), a.body, 0o644)
	}
	fix := regexp.MustCompile(`/static/(portal\.(?:css|js))\?v=[0-9a-f]+`)
	for i, uri := range pageURIs {
		_, body, _ := get(t, s, sess, uri)
		body = fix.ReplaceAllString(body, "$1")
		os.WriteFile(filepath.Join(dir, "p"+string(rune('a'+i))+".html"), []byte(body), 0o644)
	}
}

// TestPagesForOperators: the /ui/ pages render across tenants, with
// links under /ui and the tenant shown.
func TestPagesForOperators(t *testing.T) {
	s := pageServer(newPageFake())
	op := &Session{Scope: api.AllTenants(), Caps: AllCaps, CSRF: "x"}
	for _, uri := range pageURIs {
		ctx := &fasthttp.RequestCtx{}
		ctx.Request.SetRequestURI(uri)
		p := string(ctx.URI().Path())
		for _, rt := range pageRoutes {
			args, ok := match(rt.pattern, p)
			if !ok || (rt.pattern == "/endpoints/{}" && p == "/endpoints/new") || rt.pattern == "/login" {
				continue
			}
			if err := rt.h(s, &request{ctx: ctx, sess: op, base: "/ui", ui: true, args: args}); err != nil {
				t.Fatalf("GET /ui%s: %v", uri, err)
			}
			body := string(ctx.Response.Body())
			if ctx.Response.StatusCode() != 200 || !strings.Contains(body, `href="/ui/endpoints"`) || !strings.Contains(body, "Operator") {
				t.Errorf("GET /ui%s: %d, links or operator tag missing", uri, ctx.Response.StatusCode())
			}
			if err := checkHTML(body); err != "" {
				t.Errorf("GET /ui%s: %s", uri, err)
			}
			break
		}
	}
}

// The deliveries page's links keep its range, "Any time" (empty) too: the
// next page and an opened row fell back to the last 24 hours.
func TestDeliveryFilterKeepsAnyTime(t *testing.T) {
	for f, want := range map[deliveryFilter]string{
		{Range: ""}:                   "range=",
		{Range: "24h"}:                "range=24h",
		{Range: "", Status: "failed"}: "range=&status=failed",
	} {
		if got := f.values().Encode(); got != want {
			t.Errorf("%+v: %q, want %q", f, got, want)
		}
	}
}

// The rotation note follows the scheme: an HMAC endpoint carries one
// signature, and its page promised the standard scheme's 24 h overlap.
func TestRotationNoteFollowsTheScheme(t *testing.T) {
	f := newPageFake()
	f.eps[0].Scheme = "hmac-sha256"
	s := pageServer(f)
	sess := &Session{Scope: api.TenantScope("acme"), Caps: AllCaps, CSRF: "x"}
	for name, want := range map[string]string{f.eps[0].Name: "replaces the secret at once", f.eps[1].Name: "keeps signing for 24 hours"} {
		if _, body, _ := get(t, s, sess, "/endpoints/"+name); !strings.Contains(body, want) {
			t.Errorf("%s: no %q", name, want)
		}
	}
}
