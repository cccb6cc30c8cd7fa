package portal

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"hookd/api"
	"hookd/client"
	"hookd/config"
	"hookd/store"
)

// fakeOps holds endpoints by name with their tenant and enforces the
// scope as the daemon's operations do; it records the create bodies.
type fakeOps struct {
	mu      sync.Mutex
	tenants map[string]string // endpoint → tenant
	bodies  []string
}

func (f *fakeOps) find(s api.Scope, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tenants[name]
	if !ok || !s.Owns(t) {
		return api.ErrNotFound
	}
	return nil
}

func (f *fakeOps) Endpoints(s api.Scope, q client.EndpointQuery) (*client.EndpointList, error) {
	out := &client.EndpointList{Items: []client.Endpoint{}}
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, t := range f.tenants {
		if s.Owns(t) && (q.Tenant == "" || q.Tenant == t) {
			out.Items = append(out.Items, client.Endpoint{Name: name, Tenant: t})
		}
	}
	return out, nil
}
func (f *fakeOps) Endpoint(s api.Scope, name string) (*client.Endpoint, error) {
	if err := f.find(s, name); err != nil {
		return nil, err
	}
	return &client.Endpoint{Name: name}, nil
}
func (f *fakeOps) CreateEndpoint(_ context.Context, s api.Scope, body []byte) (*client.CreatedEndpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, string(body))
	f.tenants["new"] = s.Tenant()
	return &client.CreatedEndpoint{Endpoint: client.Endpoint{Name: "new", Tenant: s.Tenant()}, Secret: "whsec_x"}, nil
}
func (f *fakeOps) PatchEndpoint(_ context.Context, s api.Scope, name string, _ []byte) (*client.Endpoint, error) {
	return f.Endpoint(s, name)
}
func (f *fakeOps) DeleteEndpoint(_ context.Context, s api.Scope, name string) error {
	if err := f.find(s, name); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.tenants, name)
	f.mu.Unlock()
	return nil
}
func (f *fakeOps) SetDisabled(_ context.Context, s api.Scope, name string, d bool) (*client.EndpointState, error) {
	return &client.EndpointState{Name: name, State: "disabled"}, f.find(s, name)
}
func (f *fakeOps) TestEndpoint(_ context.Context, s api.Scope, name string, _ client.TestRequest) (*client.TestResult, error) {
	return &client.TestResult{Endpoint: name, OK: true}, f.find(s, name)
}
func (f *fakeOps) EndpointSecret(s api.Scope, name string) (*client.Secrets, error) {
	return &client.Secrets{Secret: "whsec_x", Previous: []client.PreviousSecret{}}, f.find(s, name)
}
func (f *fakeOps) RotateSecret(_ context.Context, s api.Scope, name string, _ client.RotateRequest) (*client.Rotated, error) {
	return &client.Rotated{Secret: "whsec_y"}, f.find(s, name)
}
func (f *fakeOps) EndpointHours(s api.Scope, name string) (*api.Hours, error) {
	return &api.Hours{}, f.find(s, name)
}
func (f *fakeOps) Deliveries(s api.Scope, q client.DeliveryQuery) (*client.DeliveryList, error) {
	if !s.All() && q.Tenant != s.Tenant() {
		return nil, api.ErrNotFound
	}
	return &client.DeliveryList{Items: []client.LoggedDelivery{}}, nil
}
func (f *fakeOps) Event(s api.Scope, id string) (*client.Event, error) { return nil, api.ErrNotFound }
func (f *fakeOps) Redeliver(context.Context, api.Scope, string, client.RedeliverRequest) (*client.Redelivered, error) {
	return nil, api.ErrNotFound
}
func (f *fakeOps) RedeliverUndeliverable(context.Context, api.Scope, client.RedeliverUndeliverableRequest) (*client.RedeliveredUndeliverable, error) {
	return &client.RedeliveredUndeliverable{}, nil
}
func (f *fakeOps) EventTypes() *client.EventTypeList { return &client.EventTypeList{} }

type fixture struct {
	t    *testing.T
	s    *Server
	ops  *fakeOps
	conf *config.Config
	now  time.Time
}

const host = "127.0.0.1:8527"

func newFixture(t *testing.T, portal string) *fixture {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "hookd.toml")
	cfg := "[storage]\npath = " + `"` + filepath.Join(dir, "hookd.db") + `"` + "\n[portal]\nlisten = \"" + host + "\"\n" + portal
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(c.Storage.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, ops: &fakeOps{tenants: map[string]string{"a-ep": "a", "b-ep": "b", "platform": ""}}, conf: c, now: time.Now()}
	f.s, err = New(context.Background(), Options{Ops: f.ops, Store: st, Config: func() *config.Config { return c }, Log: zerolog.Nop(), Addr: host,
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type answer struct {
	status int
	header *fasthttp.ResponseHeader
	body   string
}

// do sends one request to the portal (or, with a "/ui" path, to /ui/).
// hdr are name, value pairs.
func (f *fixture) do(method, uri, body string, hdr ...string) answer {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost(host)
	req.SetBodyString(body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	if strings.HasPrefix(uri, "/ui") {
		f.s.UIHandler(&ctx)
	} else {
		f.s.Handler(&ctx)
	}
	f.s.store.Flush()
	var h fasthttp.ResponseHeader
	ctx.Response.Header.CopyTo(&h)
	return answer{ctx.Response.StatusCode(), &h, string(ctx.Response.Body())}
}

// login mints a link for tenant and follows it; it returns the cookie
// and the session's CSRF token.
func (f *fixture) login(tenant string, caps Caps) (cookie, csrf string) {
	f.t.Helper()
	link, _, _, err := f.s.Mint(context.Background(), tenant, 15*time.Minute, caps)
	if err != nil {
		f.t.Fatal(err)
	}
	u, _ := url.Parse(link)
	a := f.do("GET", u.RequestURI(), "")
	if a.status != 303 || string(a.header.Peek("Location")) != "/endpoints" {
		f.t.Fatalf("login: %d %s", a.status, a.body)
	}
	var c fasthttp.Cookie
	c.Parse(string(a.header.Peek("Set-Cookie")))
	if !c.HTTPOnly() || c.SameSite() != fasthttp.CookieSameSiteLaxMode || string(c.Path()) != "/" {
		f.t.Fatalf("cookie %s", a.header.Peek("Set-Cookie"))
	}
	cookie = string(c.Key()) + "=" + string(c.Value())
	hash := sessionHash(c.Value())
	rec, err := f.s.store.PortalSession(hash)
	if err != nil {
		f.t.Fatal(err)
	}
	return cookie, rec.CSRF
}

func TestLoginAndCSRF(t *testing.T) {
	f := newFixture(t, "")
	cookie, csrf := f.login("a", AllCaps)
	ok := []string{"Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/json", "Origin", "http://" + host}
	if a := f.do("GET", "/api/endpoints", "", "Cookie", cookie); a.status != 200 || !strings.Contains(a.body, "a-ep") || strings.Contains(a.body, "b-ep") {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	for name, hdr := range map[string][]string{
		"no token":     {"Cookie", cookie, "Content-Type", "application/json", "Origin", "http://" + host},
		"wrong token":  {"Cookie", cookie, "X-CSRF-Token", csrf + "x", "Content-Type", "application/json", "Origin", "http://" + host},
		"form":         {"Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/x-www-form-urlencoded", "Origin", "http://" + host},
		"foreign":      {"Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/json", "Origin", "https://evil.example"},
		"user info":    {"Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/json", "Origin", "http://user@" + host},
		"cross-site":   {"Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"},
		"no origin":    {"Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/json"},
		"null origin":  {"Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/json", "Origin", "null"},
		"other's csrf": {"Cookie", cookie, "X-CSRF-Token", "", "Content-Type", "application/json", "Origin", "http://" + host},
	} {
		a := f.do("DELETE", "/api/endpoints/a-ep", "", hdr...)
		if a.status != 403 || !strings.Contains(a.body, `"forbidden"`) {
			t.Errorf("%s: %d %s, want 403", name, a.status, a.body)
		}
	}
	if a := f.do("DELETE", "/api/endpoints/a-ep", "", "Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin"); a.status != 204 {
		t.Fatalf("delete with Sec-Fetch-Site: %d %s", a.status, a.body)
	}
	// Another tenant's endpoint and a platform endpoint are 404s.
	for _, ep := range []string{"b-ep", "platform"} {
		if a := f.do("POST", "/api/endpoints/"+ep+"/disable", "", ok...); a.status != 404 {
			t.Errorf("disable %s: %d %s", ep, a.status, a.body)
		}
	}
	// The portal's policy on bodies.
	for body, want := range map[string]string{
		`{"url":"https://x.example","tenant":"b"}`: "tenant: cannot be set here",
		`{"url":"https://x.example","name":"x"}`:   "name: cannot be set in the portal",
		`{"url":"https://x.example","signing":{}}`: "signing: cannot be set in the portal",
		`[1]`: "body: must be a JSON object",
		`{"url":"https://x.example","timeout":"1s"}`:      "timeout: cannot",
		`{"url":"https://x.example","headers":{"a":"b"}}`: "headers: cannot",
	} {
		if a := f.do("POST", "/api/endpoints", body, ok...); a.status != 400 || !strings.Contains(a.body, want) {
			t.Errorf("create %s: %d %s, want 400 %q", body, a.status, a.body, want)
		}
	}
	if len(f.ops.bodies) != 0 {
		t.Fatalf("refused bodies reached the operations: %q", f.ops.bodies)
	}
	body := `{"url":"https://x.example","events":["a.*"],"description":"d","filter":"true","disabled":false}`
	if a := f.do("POST", "/api/endpoints", body, ok...); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	// Logout ends the session, not just the cookie.
	if a := f.do("POST", "/logout", "", ok...); a.status != 204 {
		t.Fatalf("logout: %d %s", a.status, a.body)
	}
	if a := f.do("GET", "/api/endpoints", "", "Cookie", cookie); a.status != 401 {
		t.Fatalf("after logout: %d %s", a.status, a.body)
	}
}

func TestTokens(t *testing.T) {
	f := newFixture(t, "")
	link, tok, exp, err := f.s.Mint(context.Background(), "a", time.Minute, CapView)
	if err != nil || !strings.HasPrefix(link, "http://"+host+"/login?token=") || exp.Sub(f.now) < time.Minute || exp.Sub(f.now) >= time.Minute+time.Second {
		t.Fatalf("mint: %s %v %v", link, exp, err)
	}
	altered := []byte(tok)
	altered[3] ^= 1
	a := f.do("GET", "/login?token="+url.QueryEscape(string(altered)), "")
	if a.status != 401 || !strings.Contains(a.body, "not valid") || len(a.header.Peek("Set-Cookie")) != 0 {
		t.Fatalf("altered: %d %s", a.status, a.body)
	}
	f.now = f.now.Add(2 * time.Minute)
	if a := f.do("GET", "/login?token="+url.QueryEscape(tok), ""); a.status != 401 || !strings.Contains(a.body, "expired") {
		t.Fatalf("expired: %d %s", a.status, a.body)
	}
	f.now = time.Now()
	_, tok, _, _ = f.s.Mint(context.Background(), "a", time.Minute, CapView)
	if a := f.do("GET", "/login?token="+url.QueryEscape(tok), ""); a.status != 303 {
		t.Fatalf("first use: %d %s", a.status, a.body)
	}
	a = f.do("GET", "/login?token="+url.QueryEscape(tok), "")
	if a.status != 401 || !strings.Contains(a.body, "already used") {
		t.Fatalf("second use: %d %s", a.status, a.body)
	}
	for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "Cache-Control", "X-Frame-Options"} {
		if len(a.header.Peek(h)) == 0 {
			t.Errorf("the 401 page has no %s", h)
		}
	}
	if _, _, _, err := f.s.Mint(context.Background(), "a", 25*time.Hour, CapView); err == nil {
		t.Error("a 25h link was minted")
	}
	if _, _, _, err := f.s.Mint(context.Background(), "a/b", time.Hour, CapView); err == nil {
		t.Error("a link for a bad tenant id was minted")
	}
}

// A session holds only the capabilities of its link.
func TestCapabilities(t *testing.T) {
	f := newFixture(t, "")
	cookie, csrf := f.login("a", CapView)
	ok := []string{"Cookie", cookie, "X-CSRF-Token", csrf, "Content-Type", "application/json", "Origin", "http://" + host}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/endpoints/a-ep/secret"}, {"POST", "/api/endpoints/a-ep/rotate-secret"}, {"POST", "/api/endpoints/a-ep/test"},
		{"DELETE", "/api/endpoints/a-ep"}, {"POST", "/api/events/e1/redeliver"}, {"POST", "/api/undeliverable/redeliver"},
	} {
		if a := f.do(c.method, c.path, "", ok...); a.status != 403 {
			t.Errorf("%s %s with view only: %d %s", c.method, c.path, a.status, a.body)
		}
	}
	if a := f.do("GET", "/api/endpoints/a-ep", "", ok...); a.status != 200 {
		t.Errorf("view: %d %s", a.status, a.body)
	}
}

func TestHeadersAndFraming(t *testing.T) {
	f := newFixture(t, "public_url = \"https://hooks.example.com\"\nframe_ancestors = [\"https://app.example.net\"]\n")
	_, tok, _, _ := f.s.Mint(context.Background(), "a", time.Minute, AllCaps)
	a := f.do("GET", "/login?token="+url.QueryEscape(tok), "")
	var c fasthttp.Cookie
	c.Parse(string(a.header.Peek("Set-Cookie")))
	if string(c.Key()) != "__Host-hookd_session" || !c.Secure() || c.SameSite() != fasthttp.CookieSameSiteNoneMode || !c.HTTPOnly() {
		t.Fatalf("embedded https cookie: %s", a.header.Peek("Set-Cookie"))
	}
	csp := string(a.header.Peek("Content-Security-Policy"))
	if !strings.Contains(csp, "frame-ancestors https://app.example.net") || len(a.header.Peek("X-Frame-Options")) != 0 {
		t.Fatalf("csp %q, X-Frame-Options %q", csp, a.header.Peek("X-Frame-Options"))
	}
	// A parent of the same site (another host of the same registrable
	// domain) sends a Lax cookie inside its frame: None is for another site.
	for ancestors, want := range map[string]bool{`"https://app.example.com"`: false, `"https://app.example.com", "https://other.example"`: true,
		`"http://app.example.com"`: true, `"https://hooks.example.com:8443"`: false} {
		if got := crossSite("https://hooks.example.com", strings.Split(strings.ReplaceAll(ancestors, `"`, ""), ", ")); got != want {
			t.Errorf("frame_ancestors %s: cross-site %v, want %v", ancestors, got, want)
		}
	}
	// The proxy's origin is this site's too.
	cookie := "__Host-hookd_session=" + string(c.Value())
	rec, _ := f.s.store.PortalSession(sessionHash(c.Value()))
	// A route without a body refuses a bad one (it was ignored).
	if a := f.do("POST", "/api/endpoints/a-ep/enable", `{"until":"1h"}`, "Cookie", cookie, "X-CSRF-Token", rec.CSRF, "Content-Type", "application/json", "Origin", "https://hooks.example.com"); a.status != 400 || !strings.Contains(a.body, "until") {
		t.Fatalf("enable with an option it does not have: %d %s", a.status, a.body)
	}
	if a := f.do("POST", "/api/endpoints/a-ep/enable", "", "Cookie", cookie, "X-CSRF-Token", rec.CSRF, "Content-Type", "application/json", "Origin", "https://hooks.example.com"); a.status != 200 {
		t.Fatalf("enable from the public origin: %d %s", a.status, a.body)
	}
	for _, uri := range []string{"/nope", "/api/nope", "/ui/api/endpoints", "/login"} {
		a := f.do("GET", uri, "")
		if !strings.Contains(string(a.header.Peek("Content-Security-Policy")), "default-src 'none'") || string(a.header.Peek("X-Content-Type-Options")) != "nosniff" {
			t.Errorf("GET %s: %d without the security headers", uri, a.status)
		}
	}
}

// /ui/ with an admin token asks for it; the session it makes is an
// operator's, which the portal listener does not take.
func TestUILogin(t *testing.T) {
	f := newFixture(t, "[admin]\ntoken = \"s3cret\"\n")
	saved := pageRoutes
	t.Cleanup(func() { pageRoutes = saved })
	pageRoutes = []route{{"GET", "/endpoints", CapView, func(s *Server, r *request) error { r.ctx.SetBodyString("page"); return nil }},
		{"GET", "/login", 0, (*Server).loginPage}}
	if a := f.do("GET", "/ui/endpoints", ""); a.status != 303 || string(a.header.Peek("Location")) != "/ui/login" {
		t.Fatalf("page without session: %d %s", a.status, a.header.Peek("Location"))
	}
	if a := f.do("GET", "/ui/api/endpoints", ""); a.status != 401 {
		t.Fatalf("api without session: %d", a.status)
	}
	if a := f.do("GET", "/ui/login", ""); a.status != 200 || !strings.Contains(a.body, `name="token"`) {
		t.Fatalf("login form: %d %s", a.status, a.body)
	}
	form := []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://" + host}
	if a := f.do("POST", "/ui/login", "token=wrong", form...); a.status != 401 || len(a.header.Peek("Set-Cookie")) != 0 || !strings.Contains(a.body, "That is not the admin token.") {
		t.Fatalf("wrong token: %d %s", a.status, a.body)
	}
	// A form posted without the page's script, from a page served with
	// Referrer-Policy: no-referrer, says "Origin: null"; Sec-Fetch-Site
	// tells a same-origin form from another site's.
	if a := f.do("POST", "/ui/login", "token=s3cret", "Content-Type", "application/x-www-form-urlencoded", "Origin", "null", "Sec-Fetch-Site", "cross-site"); a.status != 403 {
		t.Fatalf("cross-site login with Origin null: %d", a.status)
	}
	if a := f.do("POST", "/ui/login", "token=s3cret", "Content-Type", "application/x-www-form-urlencoded", "Origin", "null", "Sec-Fetch-Site", "same-origin"); a.status != 303 {
		t.Fatalf("same-origin form login with Origin null: %d %s", a.status, a.body)
	}
	if a := f.do("POST", "/ui/login", "token=s3cret", "Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example"); a.status != 403 {
		t.Fatalf("cross-site login: %d", a.status)
	}
	a := f.do("POST", "/ui/login", "token=s3cret", form...)
	if a.status != 303 {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	var c fasthttp.Cookie
	c.Parse(string(a.header.Peek("Set-Cookie")))
	if string(c.Key()) != "hookd_ui_session" || string(c.Path()) != "/ui" {
		t.Fatalf("cookie %s", a.header.Peek("Set-Cookie"))
	}
	cookie := "hookd_ui_session=" + string(c.Value())
	a = f.do("GET", "/ui/api/endpoints", "", "Cookie", cookie)
	var list client.EndpointList
	json.Unmarshal([]byte(a.body), &list)
	if a.status != 200 || len(list.Items) != 3 {
		t.Fatalf("operator's list: %d %s", a.status, a.body)
	}
	if a := f.do("GET", "/api/endpoints", "", "Cookie", "hookd_session="+string(c.Value())); a.status != 401 {
		t.Fatalf("an operator's session on the portal listener: %d", a.status)
	}
}

func FuzzParseToken(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	good := signToken(key, token{expires: now.Add(time.Hour), caps: AllCaps, tenant: "t1"})
	f.Add(good)
	f.Add(good + "x")
	f.Add("." + good)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseToken(key, s, now)
		if err != nil {
			return
		}
		// Only what the key signed parses, and it signs the same again.
		if signToken(key, tok) != s || !config.ValidID(tok.tenant) || !tok.caps.Has(CapView) {
			t.Fatalf("parsed %q as %+v", s, tok)
		}
	})
}
