package tests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's chromium (bash tests/test.sh installs
// it) through the portal of the real daemon, delivering to loopback
// receivers. Without chromium they skip, except in CI (env CI set), where
// they must run.

const chromiumPath = "/usr/bin/chromium"

// startBrowser starts one headless chromium for the test and its
// subtests, closed when the test ends.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not installed (%v): in CI the browser tests must run (bash tests/test.sh installs it)", err)
		}
		t.Skipf("chromium not installed: %v (as root, bash tests/test.sh installs it)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return browser
}

// tab is a page in its own browser context (its own cookies), recording
// every page's response headers and any CSP violation or script error.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu        sync.Mutex
	documents map[string]http.Header // page URL → its response headers
	problems  []string
}

func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	b := &tab{t: t, ctx: ctx, documents: map[string]http.Header{}}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			if e.Type == network.ResourceTypeDocument {
				h := http.Header{}
				for k, v := range e.Response.Headers {
					h.Set(k, fmt.Sprint(v))
				}
				b.documents[e.Response.URL] = h
			}
		case *log.EventEntryAdded:
			if e.Entry.Source == log.EntrySourceSecurity || strings.Contains(e.Entry.Text, "Content Security Policy") {
				b.problems = append(b.problems, "security: "+e.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.problems = append(b.problems, fmt.Sprintf("script error at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	b.run(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, log.Enable, cdp.Empty{})
		return err
	}), chromedp.EmulateViewport(1280, 900))
	return b
}

// run runs steps, within waitLimit; a failure shows the page.
func (b *tab) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c2, cancel2 := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel2()
		url, _ := chromedp.Run(c2, chromedp.Location())
		text, _ := chromedp.Run(c2, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 1500) : ""`))
		b.t.Fatalf("browser: %v\npage %s:\n%s", err, url, text)
	}
}

// get runs one action that returns a value.
func get[T any](b *tab, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(get(b, chromedp.Text(chromedp.CSS(sel))))
}

// poll waits until a script expression is true. It evaluates it again
// every 50 ms rather than with chromedp.Poll, which fails when the page
// reloads meanwhile (as it does after most changes).
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var last error
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
			if err == nil && ok {
				return nil
			}
			if err != nil {
				last = err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s never became true (last error: %v): %w", expr, last, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// screenshot saves the page as docs/portal-NAME.png with
// HOOKD_SCREENSHOTS=1 (so CI runs do not rewrite committed files).
func (b *tab) screenshot(name string) {
	b.t.Helper()
	if os.Getenv("HOOKD_SCREENSHOTS") != "1" {
		return
	}
	b.run(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`), chromedp.Sleep(200*time.Millisecond))
	png := get(b, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join("..", "docs", "portal-"+name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

const browserAdminToken = "admin-token-for-the-browser-test"

// browserConfig is a portal with a title, an event type catalogue and a
// short retry schedule, so a failing delivery is undeliverable at once.
const browserConfig = `
[portal]
listen = "127.0.0.1:0"
title = "Acme Webhooks"

[defaults]
schedule = ["200ms", "200ms"]

[[event_types]]
name = "invoice.paid"
description = "An invoice was paid in full."
example = '{"invoice":"in_1001","amount":4200,"currency":"EUR"}'

[[event_types]]
name = "invoice.failed"
description = "A payment attempt failed; the invoice stays open."
example = '{"invoice":"in_1001","attempt":2,"reason":"card_declined"}'

[[event_types]]
name = "customer.created"
description = "A customer signed up."
example = '{"customer":"cus_42","email":"ada@example.com"}'
`

// TestBrowserPortal follows a customer through the portal in chromium:
// the magic link, adding an endpoint through the form, a test event, a
// failing delivery and its attempts, a resend, a secret rotation checked
// against the next request's signature, an edit and a delete; then the
// operators' /ui/ behind the admin token. Every page must carry the CSP
// and cause no CSP violation or script error.
func TestBrowserPortal(t *testing.T) {
	browser := startBrowser(t)
	recv := NewReceiver(t)
	var failing atomic.Bool
	recv.Handle("/orders", func(_ int, _ *http.Request, w http.ResponseWriter) {
		if failing.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			w.Write([]byte(`{"error":"database unavailable"}`))
			return
		}
		w.WriteHeader(204)
	})
	recv.Handle("/crm", func(_ int, _ *http.Request, w http.ResponseWriter) { w.WriteHeader(503) })
	d := MustOpenDaemonExtra(t, Extra{Admin: fmt.Sprintf("token = %q", browserAdminToken)}, browserConfig, nil)
	portalURL := "http://" + d.PortalAddr()
	b := newTab(t, browser)

	status, link := d.Admin("POST", "/v1/tenants/acme/portal", `{}`)
	if status != 201 {
		t.Fatalf("mint a portal link: %d %v", status, link)
	}

	var name, secret string
	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"magic link opens the portal", func(t *testing.T) {
			b.run(chromedp.Navigate(link["url"].(string)), chromedp.WaitVisible(chromedp.CSS(`.empty h2`)))
			if got := b.text(`.empty h2`); got != "No endpoints yet" {
				t.Fatalf("empty state %q", got)
			}
			if got := b.text(`.brand`); got != "Acme Webhooks" {
				t.Fatalf("title %q", got)
			}
		}},
		{"add an endpoint through the form", func(t *testing.T) {
			b.run(chromedp.Click(chromedp.CSS(`.empty a.btn`)), chromedp.WaitVisible(chromedp.CSS(`form[data-api]`)))
			b.run(chromedp.SendKeys(chromedp.CSS(`#description`), "Order sync (production)"),
				chromedp.Click(chromedp.CSS(`input[name=events][value="*"]`)),
				chromedp.Click(chromedp.CSS(`input[name=events][value="invoice.paid"]`)),
				chromedp.Click(chromedp.CSS(`input[name=events][value="invoice.failed"]`)))
			// The API's error shows next to the field it names.
			b.run(chromedp.SendKeys(chromedp.CSS(`#url`), "ftp://files.example/in"), chromedp.Click(chromedp.CSS(`form[data-api] button[type=submit]`)),
				chromedp.WaitVisible(chromedp.CSS(`[data-error-for="url"]`)))
			if msg := b.text(`[data-error-for="url"]`); !strings.Contains(msg, "http") {
				t.Fatalf("error next to the URL field: %q", msg)
			}
			b.screenshot("add-endpoint")
			b.run(chromedp.SetValue(chromedp.CSS(`#url`), recv.URL+"/orders"),
				chromedp.Click(chromedp.CSS(`form[data-api] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`[data-created]`)))
			secret = b.text(`[data-created] [data-secret]`)
			if !strings.HasPrefix(secret, "whsec_") {
				t.Fatalf("created secret %q", secret)
			}
			b.run(chromedp.Click(chromedp.CSS(`[data-created-link]`)), chromedp.WaitVisible(chromedp.CSS(`h1 .mono-h`)))
			name = b.text(`h1 .mono-h`)
			status, ep := d.Admin("GET", "/v1/endpoints/"+name, "")
			if status != 200 || ep["tenant"] != "acme" || ep["url"] != recv.URL+"/orders" || fmt.Sprint(ep["events"]) != "[invoice.paid invoice.failed]" ||
				ep["description"] != "Order sync (production)" {
				t.Fatalf("endpoint as created: %d %v", status, ep)
			}
		}},
		{"send a test event and see it delivered", func(t *testing.T) {
			b.run(chromedp.Click(chromedp.CSS(`button[data-then="test"]`)),
				poll(`(document.querySelector('.head-actions [data-result]') || {}).textContent.indexOf('Test event delivered') === 0`))
			verifyStandard(t, recv.Wait(t, "/orders", 1)[0], secret)
		}},
		{"a failing delivery shows its attempts and can be resent", func(t *testing.T) {
			for i, typ := range []string{"invoice.paid", "invoice.failed", "invoice.paid"} {
				ok := d.Event(fmt.Sprintf(`{"type":%q,"tenant":"acme","data":{"invoice":"in_10%02d","amount":%d,"currency":"EUR"}}`, typ, i, 1500+i*250))
				d.waitState(ok, name, "delivered")
			}
			failing.Store(true)
			id := d.Event(`{"type":"invoice.paid","tenant":"acme","data":{"invoice":"in_1002","amount":990,"currency":"EUR"}}`)
			d.waitState(id, name, "undeliverable")
			row := fmt.Sprintf(`tr[id="d-%s-%s"]`, id, name)
			b.run(chromedp.Navigate(portalURL+"/deliveries"), chromedp.WaitVisible(chromedp.CSS(row)))
			if got := b.text(row + ` .badge`); got != "Undeliverable" {
				t.Fatalf("row status %q", got)
			}
			b.run(chromedp.Click(chromedp.CSS(row+` a.toggle`)), chromedp.WaitVisible(chromedp.CSS(`.open-panel table.attempts`)))
			attempts := get(b, chromedp.Evaluate[int](`document.querySelectorAll('.open-panel .attempts tbody tr').length`))
			panel := b.text(`.open-panel`)
			if attempts != 3 || !strings.Contains(panel, "500") || !strings.Contains(panel, "database unavailable") {
				t.Fatalf("%d attempts shown, panel:\n%s", attempts, panel)
			}
			b.screenshot("deliveries")
			failing.Store(false)
			b.run(chromedp.Click(chromedp.CSS(`.open-panel button[data-then="resent"]`)),
				poll(`(document.querySelector('.open-panel [data-result]') || {}).textContent === 'Queued again: 1 delivery.'`))
			d.waitState(id, name, "delivered")
			b.run(chromedp.Navigate(portalURL+"/deliveries"), chromedp.WaitVisible(chromedp.CSS(row)))
			if got := b.text(row + ` .badge`); got != "Delivered" {
				t.Fatalf("after the resend the row says %q", got)
			}
		}},
		{"reveal and rotate the secret, verify the next request", func(t *testing.T) {
			b.run(chromedp.Navigate(portalURL+"/endpoints/"+name), chromedp.WaitVisible(chromedp.CSS(`#secret`)),
				chromedp.Click(chromedp.CSS(`button[data-action$="/secret"]`)), poll(`!document.getElementById('secret').classList.contains('masked')`))
			if got := b.text(`#secret [data-secret]`); got != secret {
				t.Fatalf("revealed %q, created with %q", got, secret)
			}
			rotate := `button[data-action$="/rotate-secret"]`
			b.run(chromedp.Click(chromedp.CSS(rotate)), poll(`document.querySelector('`+rotate+`').classList.contains('armed')`),
				chromedp.Click(chromedp.CSS(rotate)),
				poll(`document.querySelector('#secret [data-secret]').textContent !== `+fmt.Sprintf("%q", secret)))
			rotated := b.text(`#secret [data-secret]`)
			if !strings.HasPrefix(rotated, "whsec_") || !strings.Contains(b.text(`[data-previous]`), secret) {
				t.Fatalf("after rotation: %q, previous %q", rotated, b.text(`[data-previous]`))
			}
			b.screenshot("endpoint")
			before := len(recv.Requests("/orders"))
			b.run(chromedp.Click(chromedp.CSS(`button[data-then="test"]`)))
			req := recv.Wait(t, "/orders", before+1)[before]
			// The new secret signs; the old one too, for the 24 h overlap.
			if n := verifyAmong(t, req, rotated); n != 2 {
				t.Fatalf("%d signatures during the overlap, want 2", n)
			}
			verifyAmong(t, req, secret)
		}},
		{"edit the endpoint", func(t *testing.T) {
			form := `form[data-patch]`
			b.run(chromedp.Click(chromedp.CSS(`details.adv summary`)), chromedp.SetValue(chromedp.CSS(`#filter`), `data.amount >`),
				chromedp.Click(chromedp.CSS(form+` button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`[data-error-for="filter"]`)))
			b.run(chromedp.SetValue(chromedp.CSS(`#filter`), `data.amount > 100`), chromedp.SetValue(chromedp.CSS(`#description`), "Order sync (v2)"),
				chromedp.SetValue(chromedp.CSS(`#url`), recv.URL+"/orders-v2"), chromedp.Click(chromedp.CSS(form+` button[type=submit]`)),
				poll(`(document.querySelector('.page-head .lede') || {}).textContent === 'Order sync (v2)'`))
			status, ep := d.Admin("GET", "/v1/endpoints/"+name, "")
			if status != 200 || ep["url"] != recv.URL+"/orders-v2" || ep["filter"] != "data.amount > 100" {
				t.Fatalf("after the edit: %d %v", status, ep)
			}
		}},
		{"the endpoints page shows each state", func(t *testing.T) {
			crm := createEndpoint(t, d, `{"tenant":"acme","url":"`+recv.URL+`/crm","events":["*"],"description":"CRM contact sync"}`)
			old := createEndpoint(t, d, `{"tenant":"acme","url":"`+recv.URL+`/old","events":["customer.created"]}`)
			if status, out := d.Admin("POST", "/v1/endpoints/"+old+"/disable", `{}`); status != 200 {
				t.Fatalf("disable: %d %v", status, out)
			}
			for i := range 3 {
				id := d.Event(fmt.Sprintf(`{"type":"invoice.paid","tenant":"acme","data":{"invoice":"in_20%02d","amount":%d}}`, i, 120+i))
				d.waitState(id, crm, "undeliverable")
			}
			b.run(chromedp.Navigate(portalURL+"/endpoints"), chromedp.WaitVisible(chromedp.CSS(`.ep-list`)))
			for _, x := range []struct{ name, state string }{{name, "Active"}, {crm, "Failing"}, {old, "Disabled"}} {
				if got := b.text(fmt.Sprintf(`a.ep-name[href$="/%s"] + .badge`, x.name)); got != x.state {
					t.Errorf("%s shows %q, want %q", x.name, got, x.state)
				}
			}
			b.screenshot("endpoints")
			b.run(chromedp.EmulateViewport(360, 780))
			b.screenshot("mobile")
			b.run(chromedp.EmulateViewport(1280, 900))
			// The operator disabled it: its customer may not enable it.
			b.run(chromedp.Navigate(portalURL+"/endpoints/"+old), chromedp.WaitVisible(chromedp.CSS(`.notice.off`)))
			if got := b.text(`.notice.off`); !strings.Contains(got, "only the platform can enable") {
				t.Errorf("the disabled endpoint's notice: %q", got)
			}
			if n := get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-action$="/enable"], [data-action$="/test"]').length`)); n != 0 {
				t.Errorf("%d Enable or test buttons on an endpoint the operator disabled", n)
			}
			if got := b.text(`main`); strings.Contains(got, "Send a test event") {
				t.Errorf("the page suggests a test event it does not offer: %q", got)
			}
			b.screenshot("endpoint-disabled")
		}},
		{"event types", func(t *testing.T) {
			b.run(chromedp.Navigate(portalURL+"/event-types"), chromedp.WaitVisible(chromedp.CSS(`.types-list`)))
			n := get(b, chromedp.Evaluate[int](`document.querySelectorAll('.types-list > li').length`))
			if n != 3 || !strings.Contains(b.text(`#type-invoice\.paid`), `"amount": 4200`) {
				t.Fatalf("%d types; invoice.paid: %q", n, b.text(`#type-invoice\.paid`))
			}
			b.screenshot("event-types")
		}},
		{"delete the endpoint", func(t *testing.T) {
			del := `button[data-action^="DELETE"]`
			b.run(chromedp.Navigate(portalURL+"/endpoints/"+name), chromedp.WaitVisible(chromedp.CSS(del)),
				chromedp.Click(chromedp.CSS(del)), poll(`document.querySelector('`+del+`').classList.contains('armed')`),
				chromedp.Click(chromedp.CSS(del)), chromedp.WaitVisible(chromedp.CSS(`.ep-list`)))
			url := get(b, chromedp.Location())
			if url != portalURL+"/endpoints" || strings.Contains(b.text(`.ep-list`), name) {
				t.Fatalf("after the delete: %s lists %q", url, b.text(`.ep-list`))
			}
			if status, _ := d.Admin("GET", "/v1/endpoints/"+name, ""); status != 404 {
				t.Fatalf("deleted endpoint: %d", status)
			}
		}},
		{"every page carries the CSP and broke none of it", func(t *testing.T) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.documents) < 6 {
				t.Fatalf("only %d pages seen", len(b.documents))
			}
			for url, h := range b.documents {
				if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "style-src 'self'") {
					t.Errorf("%s: Content-Security-Policy %q", url, csp)
				}
			}
			for _, p := range b.problems {
				t.Error(p)
			}
		}},
		{"operators: /ui/ asks for the admin token", func(t *testing.T) {
			op := newTab(t, browser)
			op.run(chromedp.Navigate("http://"+d.AdminAddr()+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=token]`), "wrong"), chromedp.Click(chromedp.CSS(`form[data-login] button`)),
				chromedp.WaitVisible(chromedp.CSS(`[data-error-for="token"]`)))
			if got := op.text(`[data-error-for="token"]`); got != "That is not the admin token." {
				t.Fatalf("wrong token: %q", got)
			}
			op.run(chromedp.SetValue(chromedp.CSS(`input[name=token]`), browserAdminToken), chromedp.Click(chromedp.CSS(`form[data-login] button`)),
				chromedp.WaitVisible(chromedp.CSS(`.ep-list`)))
			if got := op.text(`.tag`); !strings.Contains(got, "Operator") {
				t.Fatalf("operator tag %q", got)
			}
			if list := op.text(`.ep-list`); !strings.Contains(list, recv.URL+"/crm") || !strings.Contains(list, "acme") {
				t.Fatalf("operators' endpoints:\n%s", list)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { b.t = t; s.fn(t) }) {
			break // the steps are one story: the next needs this one
		}
	}
}

// createEndpoint creates a managed endpoint through the admin API.
func createEndpoint(t *testing.T, d *Daemon, body string) string {
	t.Helper()
	status, out := d.Admin("POST", "/v1/endpoints", body)
	if status != 201 {
		t.Fatalf("create %s: %d %v", body, status, out)
	}
	return out["name"].(string)
}
