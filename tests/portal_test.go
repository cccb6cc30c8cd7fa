package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/daemon"
)

// browser is one browser's session with a daemon's portal (or /ui/): its
// cookie and CSRF token, sent the way the page's script sends them.
type browser struct {
	tb     testing.TB
	base   string // http://portal-addr, or http://admin-addr/ui
	cookie string
	csrf   string
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// raw sends a request and checks what every portal answer must carry (the
// CSP and the other security headers) and, for JSON, api/openapi.yaml.
func raw(tb testing.TB, method, u, body string, headers ...string) (*http.Response, []byte) {
	tb.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h // as a reverse proxy passes it on
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		tb.Errorf("%s %s: %d without the security headers: %v", method, u, resp.StatusCode, resp.Header)
	}
	// HTML pages are not the API: only JSON answers (and the login's
	// redirect) are held to api/openapi.yaml.
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || resp.StatusCode == 204 || (resp.StatusCode == 303 && req.URL.Path == "/login") {
		checkAnswer(tb, req, body, resp, b)
	}
	return resp, b
}

// login mints a link for tenant with caps (nil: all) and follows it.
func login(tb testing.TB, d *Daemon, tenant string, caps []string) *browser {
	tb.Helper()
	body := `{}`
	if caps != nil {
		c, _ := json.Marshal(caps)
		body = `{"capabilities":` + string(c) + `}`
	}
	status, out := d.Admin("POST", "/v1/tenants/"+tenant+"/portal", body)
	if status != 201 {
		tb.Fatalf("mint: %d %v", status, out)
	}
	resp, b := raw(tb, "GET", out["url"].(string), "")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/endpoints" {
		tb.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		tb.Errorf("login answer Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	return sessionOf(tb, d, resp, "http://"+d.PortalAddr())
}

func sessionOf(tb testing.TB, d *Daemon, resp *http.Response, base string) *browser {
	tb.Helper()
	cs := resp.Cookies()
	if len(cs) != 1 || !cs[0].HttpOnly || cs[0].Value == "" {
		tb.Fatalf("session cookie: %v", resp.Header["Set-Cookie"])
	}
	// The page's script reads the CSRF token from its meta tag; these
	// tests, which load no page, ask the daemon.
	br := &browser{tb: tb, base: base, cookie: cs[0].Name + "=" + cs[0].Value, csrf: d.PortalCSRF(cs[0].Value)}
	if br.csrf == "" {
		tb.Fatal("no CSRF token for the new session")
	}
	return br
}

// call sends what the page's script sends: the cookie, and for a change
// the CSRF token, a JSON body and this origin.
func (b *browser) call(method, path, body string) (int, map[string]any) {
	b.tb.Helper()
	h := []string{"Cookie", b.cookie}
	if method != "GET" {
		origin := b.base
		if i := strings.Index(origin[len("http://"):], "/"); i >= 0 {
			origin = origin[:len("http://")+i]
		}
		h = append(h, "X-CSRF-Token", b.csrf, "Content-Type", "application/json", "Origin", origin)
	}
	resp, raw := raw(b.tb, method, b.base+path, body, h...)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		json.Unmarshal(raw, &out)
	}
	return resp.StatusCode, out
}

func names(out map[string]any) []string {
	var ns []string
	items, _ := out["items"].([]any)
	for _, it := range items {
		m := it.(map[string]any)
		if n, ok := m["name"]; ok {
			ns = append(ns, n.(string))
		} else {
			ns = append(ns, m["endpoint"].(string))
		}
	}
	return ns
}

func portalDaemon(t *testing.T, x Extra) (*Daemon, *Receiver) {
	rcv := NewReceiver(t)
	x.Portal = "listen = \"127.0.0.1:0\"\n" + x.Portal
	d := MustOpenDaemonExtra(t, x, "", nil)
	for _, ep := range []string{
		`{"name":"a1","tenant":"a","url":"` + rcv.URL + `/a1","events":["*"]}`,
		`{"name":"b1","tenant":"b","url":"` + rcv.URL + `/b1","events":["*"]}`,
		`{"name":"p1","url":"` + rcv.URL + `/p1","events":["*"]}`,
	} {
		if status, out := d.Admin("POST", "/v1/endpoints", ep); status != 201 {
			t.Fatalf("create %s: %d %v", ep, status, out)
		}
	}
	return d, rcv
}

func TestPortalIsolation(t *testing.T) {
	d, rcv := portalDaemon(t, Extra{})
	evA := d.Event(`{"type":"t.x","tenant":"a","data":{"n":1}}`)
	evB := d.Event(`{"type":"t.x","tenant":"b","data":{"n":2}}`)
	evP := d.Event(`{"type":"t.x","data":{"n":3}}`)
	rcv.Wait(t, "/a1", 1)
	rcv.Wait(t, "/b1", 1)
	rcv.Wait(t, "/p1", 3)
	a := login(t, d, "a", nil)

	if status, out := a.call("GET", "/api/endpoints", ""); status != 200 || strings.Join(names(out), ",") != "a1" {
		t.Fatalf("a's endpoints: %d %v", status, out)
	}
	if status, out := a.call("GET", "/api/endpoints?tenant=b", ""); status != 200 || strings.Join(names(out), ",") != "a1" {
		t.Fatalf("a's endpoints asking for b's: %d %v", status, out)
	}
	// Another tenant's endpoint and a platform endpoint look like nothing.
	for _, ep := range []string{"b1", "p1", "nope"} {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/api/endpoints/" + ep, ""}, {"PATCH", "/api/endpoints/" + ep, `{"url":"http://203.0.113.9/"}`},
			{"DELETE", "/api/endpoints/" + ep, ""}, {"POST", "/api/endpoints/" + ep + "/test", ""},
			{"POST", "/api/endpoints/" + ep + "/rotate-secret", ""}, {"GET", "/api/endpoints/" + ep + "/secret", ""},
			{"POST", "/api/endpoints/" + ep + "/disable", ""}, {"GET", "/api/endpoints/" + ep + "/hours", ""},
		} {
			if status, out := a.call(c.method, c.path, c.body); status != 404 {
				t.Errorf("a: %s %s: %d %v, want 404", c.method, c.path, status, out)
			}
		}
	}
	if status, _ := d.Admin("GET", "/v1/endpoints/b1", ""); status != 200 {
		t.Fatal("b1 was changed through a's session")
	}
	for _, id := range []string{evB, evP} {
		if status, out := a.call("GET", "/api/events/"+id, ""); status != 404 {
			t.Errorf("a reads event %s: %d %v", id, status, out)
		}
		if status, out := a.call("POST", "/api/events/"+id+"/redeliver", ""); status != 404 {
			t.Errorf("a resends event %s: %d %v", id, status, out)
		}
	}
	status, out := a.call("GET", "/api/events/"+evA, "")
	if status != 200 {
		t.Fatalf("a's event: %d %v", status, out)
	}
	if ds := out["deliveries"].([]any); len(ds) != 1 || ds[0].(map[string]any)["endpoint"] != "a1" {
		t.Errorf("a's event shows deliveries %v, want only a1's (not the platform endpoint's)", ds)
	}
	for _, body := range []string{`{"endpoint":"p1"}`, `{"endpoint":"b1"}`} {
		if status, out := a.call("POST", "/api/events/"+evA+"/redeliver", body); status != 404 && status != 400 {
			t.Errorf("a resends its event to %s: %d %v", body, status, out)
		}
	}
	if status, out := a.call("POST", "/api/undeliverable/redeliver", `{"endpoint":"b1"}`); status != 404 && status != 400 {
		t.Errorf("a resends b1's undeliverable: %d %v", status, out)
	}
	if status, out := a.call("POST", "/api/undeliverable/redeliver", `{"since":"yesterday"}`); status != 400 || !strings.Contains(fmt.Sprint(out), "since: ") {
		t.Errorf("a time the portal cannot read, not named: %d %v", status, out) // the page shows it by its field
	}
	for _, path := range []string{"/api/events/" + evA + "/redeliver", "/api/undeliverable/redeliver"} {
		if status, out := a.call("POST", path, `{"endpoint":""}`); status != 400 {
			t.Errorf("%s with a blank endpoint: %d %v", path, status, out)
		}
	}
	// The page offers to resend an endpoint's undeliverable deliveries for
	// a's own endpoints only, not for a name typed into its filter.
	for ep, offered := range map[string]bool{"a1": true, "b1": false, "p1": false} {
		_, page := raw(t, "GET", a.base+"/deliveries?endpoint="+ep, "", "Cookie", a.cookie)
		if strings.Contains(string(page), "Resend all undeliverable of") != offered {
			t.Errorf("the deliveries page of %s offers a resend: %v", ep, !offered)
		}
	}
	n := len(rcv.Requests("/p1")) + len(rcv.Requests("/b1"))
	for _, q := range []string{"", "?tenant=b", "?endpoint=b1", "?endpoint=p1"} {
		status, out := a.call("GET", "/api/deliveries"+q, "")
		if got := strings.Join(names(out), ","); status != 200 || (got != "a1" && got != "") || (q == "" && got != "a1") {
			t.Errorf("a's deliveries%s: %d %v", q, status, out)
		}
	}
	// A misspelt or repeated filter is named, as on the admin API, not
	// answered with every delivery as if they were the ones asked for.
	for q, want := range map[string]string{
		"/api/deliveries?endpont=a1":             `"endpont": unknown query parameter`,
		"/api/deliveries?status=failed&status=x": "status: given twice",
		"/api/deliveries?type=":                  "type: empty",
		"/api/endpoints?limit=1&limit=2":         "limit: given twice",
	} {
		if status, out := a.call("GET", q, ""); status != 400 || !strings.HasPrefix(errMessage(out), want) {
			t.Errorf("GET %s: %d %v, want 400 %s", q, status, out, want)
		}
	}
	if status, out := a.call("POST", "/api/events/"+evA+"/redeliver", ""); status != 202 {
		t.Fatalf("a resends its event: %d %v", status, out)
	}
	// Its own endpoint added after the event: the error names the endpoint,
	// not the event a can see.
	if status, out := a.call("POST", "/api/endpoints", `{"url":"`+rcv.URL+`/late","events":["*"]}`); status != 201 {
		t.Fatalf("create: %d %v", status, out)
	} else if status, out := a.call("POST", "/api/events/"+evA+"/redeliver", `{"endpoint":"`+out["name"].(string)+`"}`); status != 400 || !strings.HasPrefix(errMessage(out), "endpoint:") {
		t.Fatalf("resend to an endpoint added after the event: %d %v", status, out)
	}
	rcv.Wait(t, "/a1", 2)
	time.Sleep(100 * time.Millisecond)
	if m := len(rcv.Requests("/p1")) + len(rcv.Requests("/b1")); m != n {
		t.Errorf("a's resend reached another tenant's or a platform endpoint (%d requests, was %d)", m, n)
	}

	// The customer's fields, and no more.
	for body, want := range map[string]string{
		`{"url":"http://203.0.113.9/","events":["*"],"tenant":"b"}`:         "tenant: cannot be set here",
		`{"url":"http://203.0.113.9/","events":["*"],"name":"b1"}`:          "name:",
		`{"url":"http://203.0.113.9/","events":["*"],"timeout":"30s"}`:      "timeout:",
		`{"url":"http://203.0.113.9/","events":["*"],"signing":{}}`:         "signing:",
		`{"url":"http://203.0.113.9/","events":["*"],"metadata":{"a":"b"}}`: "metadata:",
		// What a proxy in front and hookd could read differently, and
		// what the operator's terminal would act on.
		`{"url":"http://203.0.113.9/","events":["*"],"url":"http://203.0.113.10/"}`: `duplicate key "url"`,
		`{"url":"http://203.0.113.9/","events":["*"],"description":"\u001b[31m"}`:   "description: must not contain control characters",
	} {
		status, out := a.call("POST", "/api/endpoints", body)
		if msg := errMessage(out); status != 400 || !strings.Contains(msg, want) {
			t.Errorf("create %s: %d %v, want 400 %q", body, status, out, want)
		}
	}
	// hookd's own listeners: never reached, even with deny_networks = []
	// (the harness's), which lets tenant endpoints reach loopback.
	for _, addr := range []string{d.AdminAddr(), d.PortalAddr()} {
		status, out := a.call("POST", "/api/endpoints", `{"url":"http://`+addr+`/api/endpoints","events":["*"]}`)
		if status == 400 {
			continue
		}
		if status != 201 {
			t.Fatalf("create an endpoint at %s: %d %v", addr, status, out)
		}
		status, out = a.call("POST", "/api/endpoints/"+out["name"].(string)+"/test", "")
		if status != 200 || out["ok"] != false {
			t.Errorf("a test event to hookd's listener %s: %d %v", addr, status, out)
		}
	}
	if status, out := a.call("PATCH", "/api/endpoints/a1", `{"tenant":"b"}`); status != 400 {
		t.Errorf("patch tenant: %d %v", status, out)
	}
	status, out = a.call("POST", "/api/endpoints", `{"url":"`+rcv.URL+`/a2","events":["t.*"],"description":"mine","filter":"true","disabled":false}`)
	if status != 201 || out["tenant"] != "a" || out["secret"] == nil {
		t.Fatalf("create: %d %v", status, out)
	}
	name := out["name"].(string)
	if status, out := a.call("PATCH", "/api/endpoints/"+name, `{"description":"changed","disabled":true}`); status != 200 || out["state"] != "disabled" {
		t.Fatalf("patch: %d %v", status, out)
	}
	if status, out := a.call("GET", "/api/endpoints/"+name+"/secret", ""); status != 200 || out["secret"] == nil {
		t.Fatalf("secret: %d %v", status, out)
	}
	// A customer's rotation: hookd picks the secret, and the old one signs
	// along for a day at most.
	for body, want := range map[string]string{`{"secret":"whsec_YQ=="}`: "secret: ", `{"overlap":"876000h"}`: "overlap: ",
		// The portal's small bodies get the admin API's JSON checks too.
		`{"overlap":"1h","overlap":"876000h"}`: `body: duplicate key "overlap"`, `{"Overlap":"1h"}`: "Overlap: unknown field (names are case-sensitive",
		`{"overlap":"1h"}]`: "body: trailing data"} {
		if status, out := a.call("POST", "/api/endpoints/"+name+"/rotate-secret", body); status != 400 || !strings.HasPrefix(errMessage(out), want) {
			t.Errorf("rotate %s: %d %v", body, status, out)
		}
	}
	for range 8 { // rotations in a loop keep at most 5 previous secrets signing
		if status, out := a.call("POST", "/api/endpoints/"+name+"/rotate-secret", `{"overlap":"24h"}`); status != 200 {
			t.Fatalf("rotate: %d %v", status, out)
		}
	}
	if status, out := a.call("GET", "/api/endpoints/"+name+"/secret", ""); status != 200 || len(out["previous"].([]any)) != 5 {
		t.Fatalf("secrets after 8 rotations: %d %v", status, out)
	}
	if status, out := a.call("POST", "/api/endpoints/a1/test", ""); status != 200 || out["ok"] != true {
		t.Fatalf("test: %d %v", status, out)
	}
	// A customer's test event carries the catalogued example, not data of
	// its own: a test-only session cannot have a forged event signed.
	if status, out := a.call("POST", "/api/endpoints/a1/test", `{"type":"invoice.paid","data":{"amount":1000000}}`); status != 400 || !strings.HasPrefix(errMessage(out), "data:") {
		t.Fatalf("test with data: %d %v", status, out)
	}
	// Nor of hookd's own notices' types, nor one its endpoint would never
	// receive (black-box testing: hookd.endpoint.disabled was signed and
	// sent as a test); the endpoint's test type and the types it receives
	// are.
	if status, out := a.call("POST", "/api/endpoints/a1/test", `{"type":"hookd.endpoint.disabled"}`); status != 400 || !strings.HasPrefix(errMessage(out), "type:") {
		t.Fatalf("test of hookd's own type: %d %v", status, out)
	}
	if status, out := a.call("POST", "/api/endpoints/"+name+"/test", `{"type":"other.type"}`); status != 400 || !strings.HasPrefix(errMessage(out), "type:") {
		t.Fatalf("test of a type the endpoint does not receive: %d %v", status, out)
	}
	for _, body := range []string{`{"type":""}`, `{"type":null}`} { // as the schema says: leave it out
		if status, out := a.call("POST", "/api/endpoints/a1/test", body); status != 400 || !strings.HasPrefix(errMessage(out), "type: must not be empty") {
			t.Fatalf("test %s: %d %v", body, status, out)
		}
	}
	for _, typ := range []string{"hookd.test", "invoice.paid"} {
		if status, out := a.call("POST", "/api/endpoints/a1/test", `{"type":"`+typ+`"}`); status != 200 {
			t.Fatalf("test of %s: %d %v", typ, status, out)
		}
	}
	if status, out := a.call("GET", "/api/endpoints/a1/hours", ""); status != 200 {
		t.Fatalf("hours: %d %v", status, out)
	}
	if status, out := a.call("GET", "/api/event-types", ""); status != 200 {
		t.Fatalf("event types: %d %v", status, out)
	}
	if status, out := a.call("DELETE", "/api/endpoints/"+name, ""); status != 204 {
		t.Fatalf("delete: %d %v", status, out)
	}
	if status, out := a.call("POST", "/logout", ""); status != 204 {
		t.Fatalf("logout: %d %v", status, out)
	}
	if status, out := a.call("GET", "/api/endpoints", ""); status != 401 {
		t.Fatalf("after logout: %d %v", status, out)
	}
}

// Behind a proxy on https (public_url), a page of the same host on plain
// http is another origin: its changes are refused, though the proxy
// passes the same Host on.
func TestPortalOriginScheme(t *testing.T) {
	// Written as browsers do not write an Origin: with its default port,
	// in capitals, with the root's dot.
	d, _ := portalDaemon(t, Extra{Portal: `public_url = "https://Hooks.Example.com.:443"` + "\n"})
	status, out := d.Admin("POST", "/v1/tenants/a/portal", "")
	if status != 201 {
		t.Fatalf("mint: %d %v", status, out)
	}
	link, _ := url.Parse(out["url"].(string))
	base, host := "http://"+d.PortalAddr(), []string{"Host", "hooks.example.com"}
	resp, b := raw(t, "GET", base+link.RequestURI(), "", host...)
	if resp.StatusCode != 303 {
		t.Fatalf("login through the proxy: %d %s", resp.StatusCode, b)
	}
	a := sessionOf(t, d, resp, base)
	for _, c := range []struct {
		origin string
		want   int
	}{
		{"http://hooks.example.com", 403},
		{"https://hooks.example.com:8443", 403},
		{"http://hooks.example.com:443", 403},
		{"http://" + d.PortalAddr(), 403}, // not the Host this request came with
		{"https://hooks.example.com#x", 403},
		{"https://hooks.example.com:", 403},
		{"https://hooks.example.com.", 403}, // another origin to a browser
		{"https://HOOKS.example.com", 403},  // no browser writes these two:
		{"https://hooks.example.com:443", 403},
		{"https://hooks.example.com", 200},
	} {
		resp, b := raw(t, "PATCH", base+"/api/endpoints/a1", `{"description":"from `+c.origin+`"}`,
			append(host, "Cookie", a.cookie, "X-CSRF-Token", a.csrf, "Content-Type", "application/json", "Origin", c.origin)...)
		if resp.StatusCode != c.want {
			t.Errorf("Origin %s: %d %s, want %d", c.origin, resp.StatusCode, b, c.want)
		}
	}
	if _, ep := d.Admin("GET", "/v1/endpoints/a1", ""); ep["description"] != "from https://hooks.example.com" {
		t.Fatalf("a1 after the changes: %v", ep)
	}
	// Past public_url, only the listener's own address reached directly:
	// not a Host of the request's choosing (a name pointed at hookd), in
	// either scheme; two Origins are none.
	for _, h := range [][]string{
		{"Host", "evil.example", "Origin", "https://evil.example"},
		{"Host", "evil.example", "Origin", "http://evil.example"},
		{"Origin", "https://hooks.example.com", "Origin", "https://hooks.example.com"},
	} {
		req, _ := http.NewRequest("PATCH", base+"/api/endpoints/a1", strings.NewReader(`{"description":"other"}`))
		for i := 0; i < len(h); i += 2 {
			req.Header.Add(h[i], h[i+1])
		}
		if hh := req.Header.Get("Host"); hh != "" {
			req.Host = hh
		}
		req.Header.Set("Cookie", a.cookie)
		req.Header.Set("X-CSRF-Token", a.csrf)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("%v: %d, want 403", h, resp.StatusCode)
		}
	}
	if resp, b := raw(t, "PATCH", base+"/api/endpoints/a1", `{"description":"direct"}`, "Cookie", a.cookie, "X-CSRF-Token", a.csrf, "Content-Type", "application/json", "Origin", base); resp.StatusCode != 200 {
		t.Errorf("the listener reached directly: %d %s", resp.StatusCode, b)
	}
}

// A state change without the page's proof that it made it is refused
// and changes nothing.
func TestPortalCSRF(t *testing.T) {
	d, _ := portalDaemon(t, Extra{})
	a := login(t, d, "a", nil)
	origin := "http://" + d.PortalAddr()
	for name, h := range map[string][]string{
		"no token":      {"Content-Type", "application/json", "Origin", origin},
		"wrong token":   {"X-CSRF-Token", a.csrf + "x", "Content-Type", "application/json", "Origin", origin},
		"form":          {"X-CSRF-Token", a.csrf, "Content-Type", "application/x-www-form-urlencoded", "Origin", origin},
		"text":          {"X-CSRF-Token", a.csrf, "Content-Type", "text/plain", "Origin", origin},
		"gzip":          {"X-CSRF-Token", a.csrf, "Content-Type", "application/json", "Content-Encoding", "gzip", "Origin", origin},
		"foreign":       {"X-CSRF-Token", a.csrf, "Content-Type", "application/json", "Origin", "https://evil.example"},
		"cross-site":    {"X-CSRF-Token", a.csrf, "Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"},
		"no origin":     {"X-CSRF-Token", a.csrf, "Content-Type", "application/json"},
		"no session":    {"X-CSRF-Token", a.csrf, "Content-Type", "application/json", "Origin", origin, "Cookie", ""},
		"other session": {"X-CSRF-Token", login(t, d, "a", nil).csrf, "Content-Type", "application/json", "Origin", origin},
	} {
		h = append([]string{"Cookie", a.cookie}, h...)
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/api/endpoints/a1/disable", ""}, {"DELETE", "/api/endpoints/a1", ""},
			{"PATCH", "/api/endpoints/a1", `{"url":"http://203.0.113.9/"}`},
		} {
			resp, b := raw(t, c.method, origin+c.path, c.body, h...)
			if want := 403; name == "no session" {
				want = 401
				if resp.StatusCode != want {
					t.Errorf("%s: %s %s: %d %s", name, c.method, c.path, resp.StatusCode, b)
				}
			} else if resp.StatusCode != want {
				t.Errorf("%s: %s %s: %d %s, want 403", name, c.method, c.path, resp.StatusCode, b)
			}
		}
	}
	status, out := d.Admin("GET", "/v1/endpoints/a1", "")
	if status != 200 || out["state"] != "active" || !strings.Contains(out["url"].(string), "/a1") {
		t.Fatalf("a1 after refused changes: %d %v", status, out)
	}
	// Capabilities: a view-only link cannot change anything.
	v := login(t, d, "a", []string{"view"})
	for _, c := range []struct{ method, path string }{{"DELETE", "/api/endpoints/a1"}, {"GET", "/api/endpoints/a1/secret"},
		{"POST", "/api/endpoints/a1/rotate-secret"}, {"POST", "/api/endpoints/a1/test"}, {"POST", "/api/undeliverable/redeliver"}} {
		if status, out := v.call(c.method, c.path, ""); status != 403 {
			t.Errorf("view-only %s %s: %d %v", c.method, c.path, status, out)
		}
	}
	// A rotation answers the new secret: rotate_secret without view_secret
	// cannot rotate (it read the secret that way; black-box testing).
	r := login(t, d, "a", []string{"rotate_secret"})
	if status, out := r.call("POST", "/api/endpoints/a1/rotate-secret", ""); status != 403 || !strings.Contains(errMessage(out), "view_secret") {
		t.Errorf("rotate without view_secret: %d %v", status, out)
	}
}

func TestPortalTokens(t *testing.T) {
	d, _ := portalDaemon(t, Extra{})
	status, out := d.Admin("POST", "/v1/tenants/a/portal", `{"ttl":"1s","capabilities":["view"]}`)
	if status != 201 || !strings.Contains(out["url"].(string), "/login?token=") {
		t.Fatalf("mint: %d %v", status, out)
	}
	expiring := out["url"].(string)
	for body, want := range map[string]string{`{"ttl":"25h"}`: "ttl", `{"ttl":"soon"}`: "ttl", `{"ttl":"1ns"}`: "ttl", `{"capabilities":["admin"]}`: "capabilities", `{"tenant":"b"}`: "tenant"} {
		status, out := d.Admin("POST", "/v1/tenants/a/portal", body)
		if msg := errMessage(out); status != 400 || !strings.Contains(msg, want) {
			t.Errorf("mint %s: %d %v", body, status, out)
		}
	}
	if status, _ := d.Admin("POST", "/v1/tenants/no-endpoints-yet/portal", ""); status != 201 {
		t.Errorf("a tenant without endpoints: %d", status)
	}
	_, out = d.Admin("POST", "/v1/tenants/a/portal", "")
	link := out["url"].(string)
	u, _ := url.Parse(link)
	tok := u.Query().Get("token")
	altered := []byte(tok)
	altered[len(altered)/3] ^= 'a' ^ 'b'
	for name, l := range map[string]string{
		"altered":   strings.Replace(link, tok, string(altered), 1),
		"truncated": strings.Replace(link, tok, tok[:len(tok)-2], 1),
		"empty":     strings.Replace(link, tok, "", 1),
	} {
		if resp, b := raw(t, "GET", l, ""); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Errorf("%s token: %d %s", name, resp.StatusCode, b)
		}
	}
	if resp, b := raw(t, "GET", link, ""); resp.StatusCode != 303 {
		t.Fatalf("first use: %d %s", resp.StatusCode, b)
	}
	if resp, b := raw(t, "GET", link, ""); resp.StatusCode != 401 || !strings.Contains(string(b), "already used") {
		t.Fatalf("second use: %d %s", resp.StatusCode, b)
	}
	time.Sleep(2500 * time.Millisecond) // a 1s link, its expiry rounded up to a whole second
	if resp, b := raw(t, "GET", expiring, ""); resp.StatusCode != 401 || !strings.Contains(string(b), "expired") {
		t.Fatalf("expired: %d %s", resp.StatusCode, b)
	}
}

// Deleting a tenant ends its sessions at once.
func TestPortalTenantDeleteRevokes(t *testing.T) {
	d, _ := portalDaemon(t, Extra{})
	a, b := login(t, d, "a", nil), login(t, d, "b", nil)
	_, unused := d.Admin("POST", "/v1/tenants/a/portal", "") // minted, not yet followed
	if status, out := d.Admin("DELETE", "/v1/tenants/a", ""); status != 200 {
		t.Fatalf("delete tenant: %d %v", status, out)
	}
	// A link minted before the deletion no longer logs in; a new one does.
	if resp, body := raw(t, "GET", unused["url"].(string), ""); resp.StatusCode != 401 || !strings.Contains(string(body), "revoked") {
		t.Fatalf("a link minted before the deletion: %d %s", resp.StatusCode, body)
	}
	login(t, d, "a", nil)
	if status, out := a.call("GET", "/api/endpoints", ""); status != 401 {
		t.Fatalf("a after its deletion: %d %v", status, out)
	}
	if status, out := b.call("GET", "/api/endpoints", ""); status != 200 {
		t.Fatalf("b after a's deletion: %d %v", status, out)
	}
}

// With the default deny list a customer cannot point an endpoint at a
// private network or loopback.
func TestPortalDenyNetworks(t *testing.T) {
	d := MustOpenDaemonExtra(t, Extra{Tenants: "max_endpoints = 50", Portal: `listen = "127.0.0.1:0"`}, "", nil)
	a := login(t, d, "a", nil)
	for _, u := range []string{"http://127.0.0.1:9/x", "http://localhost/", "http://10.0.0.1/", "http://192.168.1.1/", "http://169.254.169.254/", "http://[::1]/"} {
		if status, out := a.call("POST", "/api/endpoints", `{"url":"`+u+`","events":["*"]}`); status != 400 {
			t.Errorf("create %s: %d %v", u, status, out)
		}
	}
}

func TestPortalOffAndAdminHost(t *testing.T) {
	d := MustOpenDaemonExtra(t, Extra{Admin: `allowed_hosts = ["hookd.internal"]`}, "", nil)
	if status, out := d.Admin("POST", "/v1/tenants/a/portal", ""); status != 409 {
		t.Fatalf("link with the portal off: %d %v", status, out)
	}
	_, port, _ := strings.Cut(d.AdminAddr(), ":")
	for host, want := range map[string]int{"evil.example": 421, "evil.example:" + port: 421, "127.0.0.1.evil.example": 421,
		"localhost:" + port: 200, "127.0.0.2:" + port: 200, "[::1]:" + port: 200, "hookd.internal": 200, "HOOKD.internal:" + port: 200} {
		req, _ := http.NewRequest("GET", "http://"+d.AdminAddr()+"/v1/endpoints", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// /ui/ too, before its login.
	req, _ := http.NewRequest("POST", "http://"+d.AdminAddr()+"/ui/login", strings.NewReader("token=x"))
	req.Host = "evil.example"
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != 421 {
		t.Fatalf("/ui/login with a foreign Host: %v %v", resp.StatusCode, err)
	}
}

// /ui/ with an admin token asks for it, then works across tenants.
func TestPortalUI(t *testing.T) {
	d, _ := portalDaemon(t, Extra{Admin: `token = "s3cret-admin"`})
	ui := "http://" + d.AdminAddr() + "/ui"
	if resp, _ := raw(t, "GET", ui+"/endpoints", ""); resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("/ui/ without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, b := raw(t, "GET", ui+"/login", ""); resp.StatusCode != 200 || !strings.Contains(string(b), `name="token"`) {
		t.Fatalf("login form: %d %s", resp.StatusCode, b)
	}
	if resp, b := raw(t, "GET", ui+"/api/endpoints", ""); resp.StatusCode != 401 {
		t.Fatalf("/ui/api/ without a session: %d %s", resp.StatusCode, b)
	}
	form := []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://" + d.AdminAddr()}
	if resp, _ := raw(t, "POST", ui+"/login", "token=wrong", form...); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, b := raw(t, "POST", ui+"/login", "token=s3cret-admin", form...)
	if resp.StatusCode != 303 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	op := sessionOf(t, d, resp, ui)
	if status, out := op.call("GET", "/api/endpoints", ""); status != 200 || strings.Join(names(out), ",") != "a1,b1,p1" {
		t.Fatalf("operator's endpoints: %d %v", status, out)
	}
	if status, out := op.call("POST", "/api/endpoints/b1/disable", ""); status != 200 {
		t.Fatalf("operator disables b1: %d %v", status, out)
	}
	// The operator's cookie is no customer session.
	if resp, _ := raw(t, "GET", "http://"+d.PortalAddr()+"/api/endpoints", "", "Cookie", strings.Replace(op.cookie, "hookd_ui_session", "hookd_session", 1)); resp.StatusCode != 401 {
		t.Fatalf("operator's session on the portal: %d", resp.StatusCode)
	}
}

// A repeated disable or enable by the same party changes nothing: it
// answers as the first did, and writes, parks and logs nothing again
// (black-box testing: a customer's loop of disables committed and logged
// a warning each time, 20 a second). Another party's disable is not a
// repeat: the operator's takes the endpoint over, and holds it.
func TestRepeatedDisableChangesNothing(t *testing.T) {
	d, _ := portalDaemon(t, Extra{})
	a := login(t, d, "a", nil)
	disables := func() int { return strings.Count(d.logs.String(), `"message":"endpoint disabled"`) }
	state := func() map[string]any { _, ep := d.Admin("GET", "/v1/endpoints/a1", ""); return ep }
	for range 3 {
		if st, out := a.call("POST", "/api/endpoints/a1/disable", ""); st != 200 || out["state"] != "disabled" {
			t.Fatalf("the customer's disable: %d %v", st, out)
		}
	}
	for range 2 { // a patch saying disabled again: its other changes apply, the disable is a repeat
		if st, out := a.call("PATCH", "/api/endpoints/a1", `{"description":"again","disabled":true}`); st != 200 || out["state"] != "disabled" {
			t.Fatalf("the customer's patch: %d %v", st, out)
		}
	}
	if n, ep := disables(), state(); n != 1 || ep["disabled_by"] != "tenant" || ep["description"] != "again" {
		t.Fatalf("after three disables and two patches by the customer: %d logged, %v", n, ep)
	}
	for range 2 {
		if st, out := d.Admin("POST", "/v1/endpoints/a1/disable", ""); st != 200 {
			t.Fatalf("the operator's disable: %d %v", st, out)
		}
	}
	if n, ep := disables(), state(); n != 2 || ep["disabled_by"] != "operator" {
		t.Fatalf("after the operator's disables: %d logged, %v", n, ep)
	}
	if st, out := a.call("POST", "/api/endpoints/a1/disable", ""); st != 403 {
		t.Fatalf("the customer's disable of a held endpoint: %d %v", st, out)
	}
	for range 2 {
		if st, out := d.Admin("POST", "/v1/endpoints/a1/enable", ""); st != 200 || out["state"] != "active" {
			t.Fatalf("the operator's enable: %d %v", st, out)
		}
	}
	if st, out := a.call("POST", "/api/endpoints/a1/enable", ""); st != 200 || out["state"] != "active" || state()["state"] != "active" {
		t.Fatalf("the customer's enable of an enabled endpoint: %d %v", st, out)
	}
}

// An endpoint the operator disabled stays disabled for its tenant: the
// customer can neither enable it nor make the disable its own; its own
// disable it can undo.
func TestOperatorDisableHolds(t *testing.T) {
	d, _ := portalDaemon(t, Extra{})
	a := login(t, d, "a", nil)
	if status, out := d.Admin("POST", "/v1/endpoints/a1/disable", ""); status != 200 {
		t.Fatalf("operator disables a1: %d %v", status, out)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/endpoints/a1/enable", ""},
		{"POST", "/api/endpoints/a1/disable", ""},
		{"PATCH", "/api/endpoints/a1", `{"disabled":false}`},
		{"PATCH", "/api/endpoints/a1", `{"description":"x","disabled":true}`},
		{"POST", "/api/endpoints/a1/test", ""}, // nor have hookd send to it
		{"DELETE", "/api/endpoints/a1", ""},    // nor delete it, to add it again
	} {
		if status, out := a.call(c.method, c.path, c.body); status != 403 || !strings.HasPrefix(errMessage(out), "disabled: ") {
			t.Errorf("a: %s %s %s: %d %v, want 403", c.method, c.path, c.body, status, out)
		}
	}
	if _, ep := d.Admin("GET", "/v1/endpoints/a1", ""); ep["state"] != "disabled" || ep["disabled_reason"] != "disabled by operator" || ep["disabled_by"] != "operator" || ep["description"] == "x" {
		t.Fatalf("a1 after the customer's tries: %v", ep)
	}
	// Its page offers no Enable button, and says who can.
	if _, page := raw(t, "GET", a.base+"/endpoints/a1", "", "Cookie", a.cookie); strings.Contains(string(page), "/enable") || strings.Contains(string(page), "/test") || strings.Contains(string(page), "DELETE ") || !strings.Contains(string(page), "only the platform can enable or delete") {
		t.Errorf("a1's page for its customer:\n%s", page)
	}
	// What it missed is kept, and resent once it is enabled, not before:
	// resent now, it would only be parked again.
	ev := d.Event(`{"type":"t.x","tenant":"a","data":{}}`)
	d.waitState(ev, "a1", "undeliverable")
	for _, c := range []struct {
		call       func(method, path, body string) (int, map[string]any)
		path, body string
		want       int
	}{
		{a.call, "/api/undeliverable/redeliver", `{"endpoint":"a1"}`, 409},
		{a.call, "/api/events/" + ev + "/redeliver", `{"endpoint":"a1"}`, 409},
		{a.call, "/api/undeliverable/redeliver", `{}`, 202},
		{a.call, "/api/events/" + ev + "/redeliver", `{}`, 409}, // a1 is all it has of it
		{d.Admin, "/v1/undeliverable/redeliver", `{"endpoint":"a1"}`, 409},
		{d.Admin, "/v1/undeliverable/redeliver", `{}`, 202},
		{d.Admin, "/v1/undeliverable/redeliver", `{"since":"1h","until":"2h"}`, 400}, // empty: a mistake
		{d.Admin, "/v1/events/" + ev + "/redeliver", `{}`, 202},                      // p1's, not a1's
	} {
		status, out := c.call("POST", c.path, c.body)
		bad := status != c.want || (status == 409 && errCode(out) != "endpoint_disabled")
		if n, counted := out["redelivered"]; status == 202 && counted && n != 0.0 {
			bad = true
		}
		if eps, listed := out["endpoints"].([]any); status == 202 && listed && (len(eps) != 1 || eps[0] != "p1") {
			bad = true
		}
		if bad {
			t.Errorf("POST %s %s: %d %v, want %d", c.path, c.body, status, out, c.want)
		}
	}
	if dl := d.waitState(ev, "a1", "undeliverable"); dl["reason"] != "endpoint disabled" {
		t.Errorf("a1's delivery after the resends: %v", dl)
	}
	// Other changes are the customer's still.
	if status, out := a.call("PATCH", "/api/endpoints/a1", `{"description":"ours"}`); status != 200 {
		t.Fatalf("a patches its description: %d %v", status, out)
	}
	if status, out := d.Admin("POST", "/v1/endpoints/a1/enable", ""); status != 200 {
		t.Fatalf("operator enables a1: %d %v", status, out)
	}
	for _, path := range []string{"/api/endpoints/a1/disable", "/api/endpoints/a1/enable"} {
		if status, out := a.call("POST", path, ""); status != 200 {
			t.Fatalf("a: %s: %d %v", path, status, out)
		}
	}

	// The hold is checked where the state is written: an operator's
	// disable landing while the customer's enable is under way is never
	// overruled by it. Whichever is committed first, a1 ends disabled by
	// the operator (a check before the write let the enable win).
	for i := range 30 {
		if status, out := a.call("POST", "/api/endpoints/a1/disable", ""); status != 200 {
			t.Fatalf("round %d: a disables a1: %d %v", i, status, out)
		}
		if _, ep := d.Admin("GET", "/v1/endpoints/a1", ""); ep["disabled_by"] != "tenant" {
			t.Fatalf("round %d: a1 disabled by its customer: %v", i, ep)
		}
		var wg sync.WaitGroup
		wg.Go(func() { a.call("POST", "/api/endpoints/a1/enable", "") })
		wg.Go(func() { d.Admin("POST", "/v1/endpoints/a1/disable", "") })
		wg.Wait()
		if _, ep := d.Admin("GET", "/v1/endpoints/a1", ""); ep["state"] != "disabled" || ep["disabled_by"] != "operator" {
			t.Fatalf("round %d: the operator's disable was overruled: %v", i, ep)
		}
		if status, out := d.Admin("POST", "/v1/endpoints/a1/enable", ""); status != 200 {
			t.Fatalf("round %d: operator enables a1: %d %v", i, status, out)
		}
	}
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func errMessage(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// portalTour calls each route of the portal's API once, for TestAPITour.
func portalTour(t *testing.T, d *Daemon, rcv *Receiver) {
	t.Helper()
	if s, out := d.Admin("POST", "/v1/endpoints", `{"name":"pt","tenant":"tour","url":"`+rcv.URL+`/pt","events":["tour.*"]}`); s != 201 {
		t.Fatalf("create: %d %v", s, out)
	}
	id := d.Event(`{"type":"tour.portal","tenant":"tour","data":{}}`)
	b := login(t, d, "tour", nil)
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/endpoints", "", 200},
		{"POST", "/api/endpoints", `{"url":"` + rcv.URL + `/pt2","events":["tour.*"]}`, 201},
		{"GET", "/api/endpoints/pt", "", 200},
		{"PATCH", "/api/endpoints/pt", `{"description":"tour"}`, 200},
		{"POST", "/api/endpoints/pt/disable", "", 200},
		{"POST", "/api/endpoints/pt/enable", "", 200},
		{"POST", "/api/endpoints/pt/test", `{"type":"tour.test"}`, 200},
		{"GET", "/api/endpoints/pt/secret", "", 200},
		{"POST", "/api/endpoints/pt/rotate-secret", `{"overlap":"0s"}`, 200},
		{"GET", "/api/endpoints/pt/hours", "", 200},
		{"GET", "/api/deliveries?limit=5", "", 200},
		{"GET", "/api/events/" + id, "", 200},
		{"POST", "/api/events/" + id + "/redeliver", `{"endpoint":"pt"}`, 202},
		{"POST", "/api/undeliverable/redeliver", `{"endpoint":"pt"}`, 202},
		{"GET", "/api/event-types", "", 200},
		{"DELETE", "/api/endpoints/pt", "", 204},
		{"POST", "/logout", "", 204},
	} {
		if s, out := b.call(c.method, c.path, c.body); s != c.want {
			t.Errorf("portal %s %s: %d %v, want %d", c.method, c.path, s, out, c.want)
		}
	}
}

// Without [admin] token, a page of another site open in the operator's
// browser must not drive the admin API: a form post or a no-cors fetch is
// a "simple request" the browser sends without asking, and the Host is
// loopback. Browsers label it (Origin, Sec-Fetch-Site); the CLI sends
// neither label and is unaffected.
func TestAdminRefusesOtherSitesPages(t *testing.T) {
	d := MustOpenDaemon(t, "")
	create := `{"name":"evil","url":"http://203.0.113.9/","events":["*"]}`
	for _, h := range [][]string{
		{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://evil.example"},
		{"Origin", "null"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site", "Origin", "http://localhost:8527"},
	} {
		req, _ := http.NewRequest("POST", "http://"+d.AdminAddr()+"/v1/endpoints", strings.NewReader(create))
		req.Header.Set("Content-Type", "text/plain")
		for i := 0; i < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(b), "forbidden") {
			t.Errorf("%v: %d %s, want 403", h, resp.StatusCode, b)
		}
	}
	if status, out := d.Admin("GET", "/v1/endpoints/evil", ""); status != 404 {
		t.Fatalf("an endpoint was created: %d %v", status, out)
	}
	// The operator's own tools: no labels, or a same-origin page.
	req, _ := http.NewRequest("POST", "http://"+d.AdminAddr()+"/v1/endpoints", strings.NewReader(create))
	req.Header.Set("Origin", "http://"+d.AdminAddr())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("same-origin create: %d", resp.StatusCode)
	}
}

// Without [admin] token /ui/ starts a session for the browser opening its
// pages, not for each request another site's page makes it send (an
// <img> per session would be a commit each).
func TestUISessionOnlyForOwnNavigation(t *testing.T) {
	d := MustOpenDaemon(t, "")
	for _, c := range []struct {
		headers []string
		session bool
	}{
		{[]string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Dest", "image"}, false},
		{[]string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Dest", "document"}, false},
		{[]string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Dest", "image"}, false},
		{[]string{"Sec-Fetch-Site", "none", "Sec-Fetch-Dest", "document"}, true},
		{nil, true},
	} {
		resp, _ := raw(t, "GET", "http://"+d.AdminAddr()+"/ui/endpoints", "", c.headers...)
		if got := len(resp.Cookies()) == 1; got != c.session || (c.session && resp.StatusCode != 200) || (!c.session && resp.StatusCode != 403) {
			t.Errorf("%v: %d, cookies %v", c.headers, resp.StatusCode, resp.Header["Set-Cookie"])
		}
	}
	// With a session, another site's page gets nothing but a link followed
	// to a page: its GETs were answered, /ui/api/ too (black-box testing).
	resp, _ := raw(t, "GET", "http://"+d.AdminAddr()+"/ui/endpoints", "")
	cookie := resp.Cookies()[0]
	for _, c := range []struct {
		path    string
		headers []string
		want    int
	}{
		{"/ui/api/endpoints", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"/ui/api/endpoints", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"/ui/api/endpoints", []string{"Origin", "http://127.0.0.1:3000"}, 403},
		{"/ui/endpoints", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}, 403},
		{"/ui/endpoints", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, 200},
		{"/ui/api/endpoints", []string{"Sec-Fetch-Site", "same-origin"}, 200},
	} {
		h := append([]string{"Cookie", cookie.Name + "=" + cookie.Value}, c.headers...)
		if resp, b := raw(t, "GET", "http://"+d.AdminAddr()+c.path, "", h...); resp.StatusCode != c.want {
			t.Errorf("%s %v: %d %s, want %d", c.path, c.headers, resp.StatusCode, b, c.want)
		}
	}
}

// An operator's /ui/ session ends when a reload sets, changes or removes
// the admin token it was made under, and when a reload shortens
// session_ttl past its age (found by black-box testing: a session made
// before a token was set still read every endpoint's secret).
func TestUISessionEndsWithItsToken(t *testing.T) {
	d := MustOpenDaemon(t, "")
	ui := "http://" + d.AdminAddr() + "/ui"
	open := func() *browser {
		resp, _ := raw(t, "GET", ui+"/endpoints", "")
		return sessionOf(t, d, resp, ui)
	}
	alive := func(b *browser) bool { status, _ := b.call("GET", "/api/endpoints", ""); return status == 200 }
	login := func(token string) *browser {
		resp, b := raw(t, "POST", ui+"/login", "token="+token, "Content-Type", "application/x-www-form-urlencoded", "Origin", "http://"+d.AdminAddr())
		if resp.StatusCode != 303 {
			t.Fatalf("login: %d %s", resp.StatusCode, b)
		}
		return sessionOf(t, d, resp, ui)
	}
	reload := func(admin, portal string) {
		d.extra.Admin, d.extra.Portal = admin, portal
		d.rewrite("")
		if err := d.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	open1 := open()
	if !alive(open1) {
		t.Fatal("a tokenless session does not work")
	}
	reload(`token = "first-token"`, "")
	if alive(open1) {
		t.Error("a session made without a token outlived the token's arrival")
	}
	first := login("first-token")
	reload(`token = "second-token"`, "")
	if alive(first) {
		t.Error("a session outlived a change of the token it was made under")
	}
	second := login("second-token")
	reload(`token = "second-token"`, `session_ttl = "1m"`)
	if !alive(second) {
		t.Error("a reload that changed neither the token nor the session's life ended it")
	}
	reload("", "")
	if alive(second) {
		t.Error("a session made with a token outlived its removal")
	}
	// Ended is ended: changing the token back revives no session, whether
	// the session was used in between or not.
	reload(`token = "second-token"`, "")
	if alive(second) || alive(first) {
		t.Error("a session came back with its token")
	}
	third := login("second-token")
	reload(`token = "third-token"`, "")
	reload(`token = "second-token"`, "")
	if alive(third) {
		t.Error("a session came back with its token, unused in between")
	}
}

// A request the listener refuses before routing (here: a body over the
// portal's 64 KiB) still carries the portal's security headers.
func TestPortalServerErrorsCarryHeaders(t *testing.T) {
	d, _ := portalDaemon(t, Extra{})
	before := counterValue(t, d, "hookd_ingest_rejected_total", "413")
	// The headers alone announce the body: the listener answers before
	// reading it, and a client still writing it could meet a reset.
	c, err := net.Dial("tcp", d.PortalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/endpoints HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", d.PortalAddr(), 70<<10)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(body), "portal: 64 KiB") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	// The ingest listener's refusals only are counted as ingest's.
	if after := counterValue(t, d, "hookd_ingest_rejected_total", "413"); after != before {
		t.Fatalf("a portal 413 counted as an ingest rejection: %v to %v", before, after)
	}
}

// A tenant's delete takes with it the endpoints its customers were
// creating at that moment: a create committing during the delete takes
// its endpoint back (409 tenant_deleted) instead of leaving it behind,
// receiving the deleted tenant's events.
func TestTenantDeleteTakesCreatesUnderWay(t *testing.T) {
	d, rcv := portalDaemon(t, Extra{Tenants: "deny_networks = []"})
	for i := range 20 {
		tenant := fmt.Sprintf("r%d", i)
		b := login(t, d, tenant, nil)
		var wg sync.WaitGroup
		var created int
		wg.Go(func() {
			created, _ = b.call("POST", "/api/endpoints", `{"url":"`+rcv.URL+`/r","events":["*"]}`)
		})
		if status, out := d.Admin("DELETE", "/v1/tenants/"+tenant, ""); status != 200 && status != 404 {
			t.Fatalf("delete %s: %d %v", tenant, status, out)
		}
		wg.Wait()
		if created != 201 && created != 409 && created != 401 {
			t.Fatalf("create during the delete: %d", created)
		}
		if _, out := d.Admin("GET", "/v1/endpoints?tenant="+tenant, ""); len(names(out)) != 0 {
			t.Fatalf("round %d: %v outlived its tenant's delete (create answered %d)", i, names(out), created)
		}
	}
}

// A customer's changes through the portal are limited per tenant (100 at
// once, then 20 a second): beyond, a 429 rate_limited with Retry-After
// that changes nothing; another tenant, reads and the operators' /ui/ are
// not held to it, and the customer may go on once time has passed. (Every
// change is a commit, and most rebuild the routing table.)
func TestPortalLimitsEachCustomersChanges(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{Portal: `listen = "127.0.0.1:0"`, Admin: `token = "s3cret-admin"`, Tenants: "deny_networks = []"}, "", func(d *daemon.Daemon) { d.PortalNow = clock })
	for _, ep := range []string{
		`{"name":"a1","tenant":"a","url":"` + rcv.URL + `/a1","events":["*"]}`,
		`{"name":"b1","tenant":"b","url":"` + rcv.URL + `/b1","events":["*"]}`,
	} {
		if status, out := d.Admin("POST", "/v1/endpoints", ep); status != 201 {
			t.Fatalf("create: %d %v", status, out)
		}
	}
	a, b := login(t, d, "a", nil), login(t, d, "b", nil)
	if status, out := a.call("PATCH", "/api/endpoints/a1", `{"description":"kept"}`); status != 200 {
		t.Fatalf("change: %d %v", status, out)
	}
	// A refused change counts as a change: a loop of bad ones is a loop.
	for i := range 99 {
		if status, out := a.call("PATCH", "/api/endpoints/a1", `{"timeout":"soon"}`); status != 400 {
			t.Fatalf("bad change %d: %d %v", i, status, out)
		}
	}
	h := []string{"Cookie", a.cookie, "X-CSRF-Token", a.csrf, "Content-Type", "application/json", "Origin", "http://" + d.PortalAddr()}
	resp, body := raw(t, "PATCH", "http://"+d.PortalAddr()+"/api/endpoints/a1", `{"description":"one too many"}`, h...)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"rate_limited"`) {
		t.Fatalf("the 101st change at once: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if status, out := a.call("POST", "/api/endpoints", `{"url":"`+rcv.URL+`/a2","events":["*"]}`); status != 429 {
		t.Fatalf("a create over the limit: %d %v", status, out)
	}
	if _, out := a.call("GET", "/api/endpoints/a1", ""); out["description"] != "kept" {
		t.Fatalf("a read over the limit: %v (the refused change must change nothing)", out)
	}
	if status, out := b.call("PATCH", "/api/endpoints/b1", `{"description":"b's own"}`); status != 200 {
		t.Fatalf("another tenant's change: %d %v", status, out)
	}
	form := []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://" + d.AdminAddr()}
	resp, _ = raw(t, "POST", "http://"+d.AdminAddr()+"/ui/login", "token=s3cret-admin", form...)
	op := sessionOf(t, d, resp, "http://"+d.AdminAddr()+"/ui")
	for i := range 110 {
		if status, out := op.call("PATCH", "/api/endpoints/a1", `{"timeout":"soon"}`); status != 400 {
			t.Fatalf("operator's change %d: %d %v", i, status, out)
		}
	}
	mu.Lock()
	now = now.Add(100 * time.Millisecond) // two changes' worth
	mu.Unlock()
	for i := range 2 {
		if status, out := a.call("PATCH", "/api/endpoints/a1", `{"description":"later"}`); status != 200 {
			t.Fatalf("change %d after 100 ms: %d %v", i, status, out)
		}
	}
	if status, _ := a.call("PATCH", "/api/endpoints/a1", `{"description":"later still"}`); status != 429 {
		t.Fatalf("a third change after 100 ms: %d", status)
	}
}
