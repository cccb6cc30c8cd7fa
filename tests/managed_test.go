package tests

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hookd/client"
	"hookd/seal"
)

// create → deliver → patch the URL → deliver to the new URL → delete →
// pending parked; a new endpoint reusing the name inherits nothing.
func TestManagedEndpointLifecycle(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("platform", rcv.URL+"/platform", `["nothing"]`, ""))
	status, ep := d.Admin("POST", "/v1/endpoints", `{"url":"`+rcv.URL+`/one","events":["conversation.*"],"tenant":"wgt_1","description":"Acme CRM","metadata":{"crm":"acme"}}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, ep)
	}
	name, secret := ep["name"].(string), ep["secret"].(string)
	if !matchRe(`^ep_[0-9a-z]{26}$`, name) || !strings.HasPrefix(secret, "whsec_") || ep["source"] != "api" || ep["tenant"] != "wgt_1" {
		t.Fatalf("created: %v", ep)
	}
	// The secret is shown once; reads of the endpoint never carry it.
	if _, got := d.Admin("GET", "/v1/endpoints/"+name, ""); got["secret"] != nil || got["description"] != "Acme CRM" || got["metadata"].(map[string]any)["crm"] != "acme" {
		t.Fatalf("get: %v", got)
	}
	if _, got := d.Admin("GET", "/v1/endpoints/"+name+"/secret", ""); got["secret"] != secret {
		t.Fatalf("secret: %v", got)
	}
	d.Event(`{"type":"conversation.ended","tenant":"wgt_1","data":1}`)
	verifyAmong(t, rcv.Wait(t, "/one", 1)[0], secret)
	// Another tenant's event never reaches it.
	if status, out, _ := d.Post("/v1/events", "application/json", `{"type":"conversation.ended","tenant":"wgt_2","data":1}`); status != 202 || out["deliveries"] != 0.0 {
		t.Fatalf("other tenant: %v", out)
	}

	if status, got := d.Admin("PATCH", "/v1/endpoints/"+name, `{"url":"`+rcv.URL+`/two","schedule":["1h"]}`); status != 200 || got["url"] != rcv.URL+"/two" {
		t.Fatalf("patch: %d %v", status, got)
	}
	// A null inside an object that is not set yet drops the key (RFC 7396); it set X-A to "".
	if status, got := d.Admin("PATCH", "/v1/endpoints/"+name, `{"headers":{"X-A":null,"X-B":"b"}}`); status != 200 || fmt.Sprint(got["settings"].(map[string]any)["headers"]) != "map[X-B:b]" {
		t.Fatalf("patch headers: %d %v", status, got["settings"])
	}
	// What was set through the API reads back (never the secret).
	if _, got := d.Admin("GET", "/v1/endpoints/"+name, ""); fmt.Sprint(got["settings"].(map[string]any)["schedule"]) != "[1h]" || strings.Contains(fmt.Sprint(got), secret) {
		t.Fatalf("settings: %v", got["settings"])
	}
	rcv.Status("/two", 500, 1000)
	id := d.Event(`{"type":"conversation.ended","tenant":"wgt_1","data":2}`)
	verifyAmong(t, rcv.Wait(t, "/two", 1)[0], secret)
	d.waitState(id, name, "pending")

	if status, _ := d.Admin("DELETE", "/v1/endpoints/"+name, ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	dl := d.waitState(id, ep["id"].(string), "undeliverable") // a deleted endpoint's deliveries show its id
	if dl["reason"] != "endpoint deleted" {
		t.Fatalf("after delete: %v", dl)
	}
	if status, _ := d.Admin("GET", "/v1/endpoints/"+name, ""); status != 404 {
		t.Fatal("deleted endpoint still found")
	}
	// The log names it by its id, and that id finds its deliveries.
	if status, out := d.Admin("GET", "/v1/deliveries?endpoint="+url.QueryEscape(ep["id"].(string)), ""); status != 200 || len(out["items"].([]any)) != 2 {
		t.Fatalf("the deleted endpoint's deliveries by its id: %d %v", status, out)
	}
	// A new endpoint with the same name inherits nothing.
	status, again := d.Admin("POST", "/v1/endpoints", `{"name":"`+name+`","url":"`+rcv.URL+`/three","events":["*"],"tenant":"wgt_1"}`)
	if status != 201 || again["pending"] != 0.0 {
		t.Fatalf("recreate: %d %v", status, again)
	}
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"`+name+`"}`); status != 202 || out["redelivered"] != 0.0 {
		t.Fatalf("the new endpoint inherited parked deliveries: %v", out)
	}
	// Redelivering everything leaves the deleted endpoint's deliveries
	// parked as they were: requeued, they would only be parked again.
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{}`); status != 202 || out["redelivered"] != 0.0 {
		t.Fatalf("redeliver all: %d %v", status, out)
	}
	if status, out := d.Admin("POST", "/v1/events/"+id+"/redeliver", `{}`); status != 202 || strings.Contains(fmt.Sprint(out["endpoints"]), ep["id"].(string)) {
		t.Fatalf("redeliver the event: %d %v", status, out)
	}
	if dl := d.deliveryState(id, ep["id"].(string)); dl["state"] != "undeliverable" || dl["reason"] != "endpoint deleted" {
		t.Fatalf("the deleted endpoint's delivery after redeliver all: %v", dl)
	}
	// Managed endpoints share one metrics label: 100,000 of them must not
	// make 100,000 series.
	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), name) || !strings.Contains(string(body), `hookd_deliveries_total{endpoint="(managed)",outcome="delivered"}`) {
		t.Fatalf("metrics name a managed endpoint, or miss the shared label:\n%s", body)
	}
}

// Managed endpoints survive a restart, and a kill -9 right after the 201.
// Their ids are short, increasing, and never handed out again: not after a
// delete, a restart or a kill -9.
func TestManagedEndpointsSurviveRestartAndKill(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, "")
	status, ep := d.Admin("POST", "/v1/endpoints", `{"name":"kept","url":"`+rcv.URL+`/kept","events":["*"]}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, ep)
	}
	_, gone := d.Admin("POST", "/v1/endpoints", `{"name":"gone","url":"`+rcv.URL+`/gone","events":["*"]}`)
	if id := ep["id"].(string); !matchRe(`^m:[0-9a-z]{10}$`, id) || gone["id"].(string) <= id {
		t.Fatalf("ids: %v then %v", id, gone["id"])
	}
	if status, _ := d.Admin("DELETE", "/v1/endpoints/gone", ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	d = d.Restart("")
	if _, got := d.Admin("GET", "/v1/endpoints/kept/secret", ""); got["secret"] != ep["secret"] {
		t.Fatalf("after restart: %v", got)
	}
	if _, later := d.Admin("POST", "/v1/endpoints", `{"name":"later","url":"`+rcv.URL+`/later","events":["*"]}`); later["id"].(string) <= gone["id"].(string) {
		t.Fatalf("after a delete and a restart: id %v, the deleted one's %v", later["id"], gone["id"])
	}
	d.Event(`{"type":"t","data":1}`)
	verifyAmong(t, rcv.Wait(t, "/kept", 1)[0], ep["secret"].(string))

	p := StartProc(t, t.TempDir(), "")
	status, out, _ := do(t, "POST", "http://"+p.admin+"/v1/endpoints", "application/json", `{"name":"crashy","url":"`+rcv.URL+`/crashy","events":["*"]}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.Restart()
	if status, got, _ := do(t, "GET", "http://"+p.admin+"/v1/endpoints/crashy/secret", "", ""); status != 200 || got["secret"] != out["secret"] {
		t.Fatalf("after kill -9: %d %v", status, got)
	}
	if _, next, _ := do(t, "POST", "http://"+p.admin+"/v1/endpoints", "application/json", `{"name":"next","url":"`+rcv.URL+`/next","events":["*"]}`); next["id"].(string) <= out["id"].(string) {
		t.Fatalf("after kill -9: id %v, the last one's %v", next["id"], out["id"])
	}
}

// A create under an Idempotency-Key is safe to retry: the retry answers
// for the endpoint the first made, secret included, across a restart and
// when the retries race; another request under the key is refused; a
// delete frees the key.
func TestCreateIdempotencyKey(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, "")
	create := func(key, body string) (int, map[string]any, http.Header) {
		t.Helper()
		h := []string{"Idempotency-Key", key}
		if tok := d.Config().AdminToken(); tok != "" {
			h = append(h, "Authorization", "Bearer "+tok)
		}
		return do(t, "POST", "http://"+d.AdminAddr()+"/v1/endpoints", "application/json", body, h...)
	}
	body := `{"tenant":"acme","url":"` + rcv.URL + `/a","events":["*"]}`
	status, first, h := create("crm-sync-41", body)
	if status != 201 || h.Get("Idempotent-Replayed") != "" {
		t.Fatalf("create: %d %v %v", status, first, h)
	}
	count := func() int {
		_, list := d.Admin("GET", "/v1/endpoints?tenant=acme", "")
		return len(list["items"].([]any))
	}
	for _, restart := range []bool{false, true} {
		if restart {
			d = d.Restart("")
		}
		status, again, h := create("crm-sync-41", body)
		if status != 201 || h.Get("Idempotent-Replayed") != "true" || again["name"] != first["name"] || again["secret"] != first["secret"] || again["id"] != first["id"] {
			t.Fatalf("retry (restart %v): %d %v %v, want %v", restart, status, again, h, first)
		}
	}
	if status, out, _ := create("crm-sync-41", `{"tenant":"acme","url":"`+rcv.URL+`/b","events":["*"]}`); status != 409 || out["error"].(map[string]any)["code"] != "idempotency_key_reused" {
		t.Fatalf("another request under the key: %d %v", status, out)
	}
	for _, key := range []string{"not a key", ""} { // empty is not "no key": two such creates made two
		if status, out, _ := create(key, body); status != 400 || !strings.HasPrefix(errMessage(out), "Idempotency-Key:") {
			t.Fatalf("bad key %q: %d %v", key, status, out)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d endpoints, want 1", n)
	}

	// Racing retries make one endpoint; each answer is it or "in progress".
	var wg sync.WaitGroup
	names := make([]any, 8)
	for i := range names {
		wg.Go(func() {
			status, out, _ := create("race-7", `{"tenant":"acme","url":"`+rcv.URL+`/r","events":["*"]}`)
			switch {
			case status == 201:
				names[i] = out["name"]
			case status != 409 || out["error"].(map[string]any)["code"] != "idempotency_in_progress":
				t.Errorf("racing create: %d %v", status, out)
			}
		})
	}
	wg.Wait()
	var made any
	for _, n := range names {
		if n != nil && made != nil && n != made {
			t.Fatalf("racing creates made %v and %v", made, n)
		} else if n != nil {
			made = n
		}
	}
	if n := count(); made == nil || n != 2 {
		t.Fatalf("%d endpoints after the race (made %v), want 2", n, made)
	}

	// The Go client sends it.
	a := client.NewAdmin("http://"+d.AdminAddr(), client.Options{Token: d.Config().AdminToken()})
	req := client.EndpointRequest{Tenant: "acme", URL: rcv.URL + "/go", Events: []string{"*"}, IdempotencyKey: "go-client-1"}
	one, err := a.CreateEndpoint(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if two, err := a.CreateEndpoint(t.Context(), req); err != nil || two.Name != one.Name || two.Secret != one.Secret {
		t.Fatalf("the client's retry: %v %+v, want %+v", err, two, one)
	}

	// A delete takes the key with it: the next create under it is new.
	if status, _ := d.Admin("DELETE", "/v1/endpoints/"+first["name"].(string), ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	if status, out, h := create("crm-sync-41", body); status != 201 || h.Get("Idempotent-Replayed") != "" || out["id"] == first["id"] {
		t.Fatalf("after the delete: %d %v %v", status, out, h)
	}
}

// Rotation with an overlap: both secrets sign (the npm verifier accepts
// the request with either) until the overlap ends, then only the new one.
func TestManagedSecretRotation(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, "")
	_, ep := d.Admin("POST", "/v1/endpoints", `{"name":"rot","url":"`+rcv.URL+`/rot","events":["*"]}`)
	old := ep["secret"].(string)
	status, rot := d.Admin("POST", "/v1/endpoints/rot/rotate-secret", `{"overlap":"1h"}`)
	if status != 200 || rot["secret"] == old {
		t.Fatalf("rotate: %d %v", status, rot)
	}
	d.Event(`{"type":"t","data":1}`)
	r := rcv.Wait(t, "/rot", 1)[0]
	if n := verifyAmong(t, r, rot["secret"].(string)); n != 2 {
		t.Fatalf("%d signatures during the overlap", n)
	}
	verifyAmong(t, r, old)
	verifyWithNode(t, r, rot["secret"].(string))
	verifyWithNode(t, r, old)
	if _, got := d.Admin("GET", "/v1/endpoints/rot/secret", ""); len(got["previous"].([]any)) != 1 {
		t.Fatalf("secret with previous: %v", got)
	}
	// A rotation's overlap bounds every secret it replaces: an earlier
	// one still in a longer overlap is cut to it, and "0s" stops them all
	// at once (black-box testing: after rotations with 99999h, 24h and 0s
	// overlaps, four secrets signed).
	d.Admin("POST", "/v1/endpoints/rot/rotate-secret", `{"overlap":"99999h"}`)
	d.Admin("POST", "/v1/endpoints/rot/rotate-secret", `{"overlap":"24h"}`)
	_, got := d.Admin("GET", "/v1/endpoints/rot/secret", "")
	prev := got["previous"].([]any)
	if len(prev) != 3 {
		t.Fatalf("after three rotations: %v", got)
	}
	for _, p := range prev {
		if exp, _ := time.Parse(time.RFC3339, p.(map[string]any)["expires_at"].(string)); exp.After(time.Now().Add(25 * time.Hour)) {
			t.Fatalf("a previous secret signs beyond the last rotation's overlap: %v", got)
		}
	}
	status, rot2 := d.Admin("POST", "/v1/endpoints/rot/rotate-secret", `{"overlap":"0s","secret":"whsec_`+base64.StdEncoding.EncodeToString([]byte("a chosen secret of 32 bytes....."))+`"}`)
	if status != 200 {
		t.Fatalf("rotate with a chosen secret: %d %v", status, rot2)
	}
	if _, got := d.Admin("GET", "/v1/endpoints/rot/secret", ""); len(got["previous"].([]any)) != 0 {
		t.Fatalf("after a rotation without overlap: %v", got)
	}
	d.Event(`{"type":"t","data":2}`)
	r = rcv.Wait(t, "/rot", 2)[1]
	if n := verifyAmong(t, r, rot2["secret"].(string)); n != 1 {
		t.Fatalf("%d signatures after a rotation without overlap", n)
	}
	// Expiry: an overlap that has ended signs no more.
	d.Admin("POST", "/v1/endpoints/rot/rotate-secret", `{"overlap":"1ms"}`)
	_, cur := d.Admin("GET", "/v1/endpoints/rot/secret", "")
	eventually(t, "the short overlap to end", func() bool {
		n := len(rcv.Requests("/rot"))
		d.Event(`{"type":"t","data":3}`)
		return verifyAmong(t, rcv.Wait(t, "/rot", n+1)[n], cur["secret"].(string)) <= 2
	})
	// hmac-sha256 cannot carry two signatures: the new secret applies at once.
	_, h := d.Admin("POST", "/v1/endpoints", `{"name":"hm","url":"`+rcv.URL+`/hm","events":["*"],"signing":{"scheme":"hmac-sha256"}}`)
	if !matchRe(`^[0-9a-f]{64}$`, h["secret"].(string)) {
		t.Fatalf("hmac secret %v", h["secret"])
	}
	d.Admin("POST", "/v1/endpoints/hm/rotate-secret", "")
	if _, got := d.Admin("GET", "/v1/endpoints/hm/secret", ""); len(got["previous"].([]any)) != 0 || got["secret"] == h["secret"] {
		t.Fatalf("hmac rotation: %v", got)
	}
}

// Every 4xx of the new routes, with its JSON error naming the problem.
func TestManagedEndpointErrors(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("fromfile", rcv.URL+"/f", `["*"]`, ""))
	d.Admin("POST", "/v1/endpoints", `{"name":"mine","url":"`+rcv.URL+`/m","events":["*"],"tenant":"T"}`)
	cases := []struct {
		method, path, body string
		status             int
		mention            string
	}{
		{"POST", "/v1/endpoints", `{"url":"ftp://x","events":["*"]}`, 400, "url"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":[]}`, 400, "events"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"timeout":"forever"}`, 400, "timeout"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"timeout":"10m"}`, 400, "timeout"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"timeout":5}`, 400, "timeout: must be a string, not number"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"headers":{"X-B": null}}`, 400, "headers.X-B: must be a string, not null"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"metadata":{"a":null}}`, 400, "metadata.a: must be a string, not null"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"max_in_flight":1.5}`, 400, "max_in_flight: must be an integer, not number 1.5"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"colour":"red"}`, 400, "colour"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"secret_file":"/etc/passwd"}}`, 400, "secret_file"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"scheme":"rsa"}}`, 400, "signing"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"previous_secrets":["whsec_AAAA"]}}`, 400, "rotate-secret"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"name":"Bad Name"}`, 400, "name"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"tenant":"a/b"}`, 400, "tenant"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"name":"hookd-notify"}`, 400, `name: "hookd-notify" is reserved for [notify]`},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/a b","events":["*"]}`, 400, "url"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"schedule":["213504d"]}`, 400, "schedule"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"description":"` + strings.Repeat("d", 1100) + `"}`, 400, "description"},
		{"POST", "/v1/endpoints", `{"name":"fromfile","url":"http://127.0.0.1:9/","events":["*"]}`, 409, "exists"},
		{"POST", "/v1/endpoints", `{"name":"mine","url":"http://127.0.0.1:9/","events":["*"]}`, 409, "exists"},
		{"POST", "/v1/endpoints", `not json`, 400, "body"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"filter":"data.x >"}`, 400, "filter"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"ordering":"lifo"}`, 400, "ordering"},
		{"GET", "/v1/endpoints/nope", ``, 404, `endpoint "nope": no such endpoint`},
		{"GET", "/v1/endpoints?limit=0", ``, 400, "limit"},
		{"GET", "/v1/endpoints?tenant=ten%00A", ``, 400, "tenant"},
		{"GET", "/v1/deliveries?tenant=ten%00A", ``, 400, "tenant"},
		{"GET", "/v1/deliveries?tenat=T", ``, 400, `"tenat": unknown query parameter`}, // not everyone's deliveries
		{"GET", "/v1/endpoints?tenant=T&tenant=U", ``, 400, "tenant: given twice"},
		{"GET", "/v1/deliveries?tenant=", ``, 400, "tenant: empty"},                                                                     // an empty variable: not everyone's
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"tenant":""}`, 400, "tenant: must not be empty or null"}, // not a platform endpoint
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"tenant":null}`, 400, "tenant: must not be empty or null"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"secret":"whsec_AA=="}}`, 400, "signing.secret: its key is 1 bytes; at least 16"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"metadata":{"crm":"a\u0000b"}}`, 400, "metadata.crm: must not contain control characters"},
		{"PATCH", "/v1/endpoints/mine", `{"metadata":{"a\u001bb":"x"}}`, 400, `metadata: key "a\x1bb": must not contain control characters`},
		{"GET", "/v1/deliveries?since=1h&until=2h", ``, 400, "until: before since"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"scheme":"hmac-sha256","secret":"s3cr3t"}}`, 400, "signing.secret: is 6 characters"},
		{"PATCH", "/v1/endpoints/mine", `{"signing":{"secret":"whsec_AAAA"}}`, 400, "signing.secret: its key is 3 bytes"},
		{"POST", "/v1/endpoints/mine/rotate-secret", `{"secret":"whsec_AAAA"}`, 400, "secret: its key is 3 bytes"},
		{"PATCH", "/v1/endpoints/fromfile", `{"url":"http://127.0.0.1:9/"}`, 409, "config file"},
		{"PATCH", "/v1/endpoints/nope", `{"url":"http://127.0.0.1:9/"}`, 404, ""},
		{"PATCH", "/v1/endpoints/mine", `{"tenant":"other"}`, 400, "tenant"},
		{"PATCH", "/v1/endpoints/mine", `{"name":"other"}`, 400, "name"},
		{"PATCH", "/v1/endpoints/mine", `{"max_in_flight":0}`, 400, "max_in_flight"},
		{"PATCH", "/v1/endpoints/mine", `{"colour":"red","flavour":"sour"}`, 400, `colour: unknown field`}, // not "flavour: … colour"
		{"PATCH", "/v1/endpoints/mine", `{"stop_on_4xx":"yes"}`, 400, `stop_on_4xx: must be true or false, not string`},
		{"POST", "/v1/endpoints", ``, 400, `body: empty: a JSON object is required`},
		{"POST", "/v1/undeliverable/redeliver", `{"since":"yesterday"}`, 400, `since: want an RFC 3339 time`},
		{"POST", "/v1/undeliverable/redeliver", `{"until":5}`, 400, `until`},
		{"GET", "/v1/endpoints/nope/secret", ``, 404, `endpoint "nope": no such endpoint`},
		{"GET", "/v1/events/evt_nope", ``, 404, `event "evt_nope": no such event`},
		{"PATCH", "/v1/endpoints/mine", `[1]`, 400, "merge patch"},
		{"DELETE", "/v1/endpoints/fromfile", ``, 409, "config file"},
		{"DELETE", "/v1/endpoints/nope", ``, 404, ""},
		{"GET", "/v1/endpoints/fromfile/secret", ``, 409, "config file"},
		{"POST", "/v1/endpoints/fromfile/rotate-secret", ``, 409, "config file"},
		{"POST", "/v1/endpoints/mine/rotate-secret", `{"overlap":"soon"}`, 400, "overlap"},
		{"POST", "/v1/endpoints/mine/rotate-secret", `{"secret":""}`, 400, "secret: is empty"},
		{"POST", "/v1/endpoints/mine/rotate-secret", `{"overlap":""}`, 400, "overlap: is empty"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"shceme":"none"}}`, 400, "signing.shceme: unknown field"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"scheme":"none","secret":"x"}}`, 400, `signing.secret: is set but scheme is "none"`},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"scheme":"standard","header":"X-Sig"}}`, 400, `signing.header: is a setting of scheme "hmac-sha256"`},
		// Hostile bodies: what a proxy in front and hookd could read differently.
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"tenant":"A","tenant":"B"}`, 400, `duplicate key "tenant"`},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"]}}`, 400, "trailing"},
		{"POST", "/v1/endpoints", "{\"url\":\"http://127.0.0.1:9/\",\"events\":[\"*\"],\"description\":\"\xff\"}", 400, "UTF-8"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"description":"\u001b]0;pwned\u0007"}`, 400, "description"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"headers":{"X Bad":"v"}}`, 400, "headers.X Bad"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"headers":{"X-A":"a\r\nX-B: c"}}`, 400, "control characters"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"headers":{"Host":"evil.example"}}`, 400, "headers.Host"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"headers":{"webhook-signature":"v1,forged"}}`, 400, "signing sets"},
		{"POST", "/v1/endpoints", `{"url":"http://2130706433/","events":["*"]}`, 400, "url"},
		{"POST", "/v1/endpoints", `{"url":"http://0x7f.1/","events":["*"]}`, 400, "url"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:0/","events":["*"]}`, 400, "port"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/` + strings.Repeat("x", 2100) + `","events":["*"]}`, 400, "url: must be at most 2 KiB"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["a b"]}`, 400, "can match no event type"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["a/b.*"]}`, 400, "can match no event type"},
		{"POST", "/v1/endpoints", `{"url":"http://203.0.113.9/","events":["*"],"tenant":"T","envelope":{"static":{"big":"` + strings.Repeat("s", 9000) + `"}}}`, 400, "envelope.static"},
		{"POST", "/v1/endpoints", `{"url":"http://203.0.113.9/","events":["*"],"tenant":"T","schedule":["1ms"]}`, 400, "schedule"},
		{"POST", "/v1/endpoints", `{"url":"http://203.0.113.9/","events":["*"],"tenant":"T","filter":"any(data.l, # matches \"(x+x+)+y\")"}`, 400, "filter: a tenant endpoint's filter may not use matches"},
		{"PATCH", "/v1/endpoints/mine", `{"filter":"data.s matches \"a\""}`, 400, "filter: a tenant endpoint's filter may not use matches"},
		{"POST", "/v1/endpoints", `{"url":"http://203.0.113.9/","events":["*"],"filter":"data.s matches \".{300}c\""}`, 400, "filter: matches patterns compile to 303 regexp instructions"},
		{"POST", "/v1/endpoints", `{"url":"http://203.0.113.9/","events":["*"],"tenant":"T","filter":"len(reduce(data.a, #acc + #acc, \"ab\")) > 0"}`, 400, "filter: reduce is not available in filters (column 5)"},
		{"PATCH", "/v1/endpoints/mine", `{"filter":"data.a | reduce(#acc + 1, 0) > 2"}`, 400, "filter: reduce is not available in filters"},
		{"POST", "/v1/endpoints", `{"url":"http://203.0.113.9/","events":["*"],"tenant":"T","events":["a"]}`, 400, "duplicate key"},
		{"POST", "/v1/endpoints", `{"url":"http://203.0.113.9/","tenant":"T","events":["e` + strings.Repeat(`","e`, 300) + `"]}`, 400, "events"},
		{"PATCH", "/v1/endpoints/mine", `{"description":"a","description":"b"}`, 400, `duplicate key "description"`},
		{"PATCH", "/v1/endpoints/mine", `{"description":"a"} x`, 400, "body: must be one JSON value with nothing after it: invalid character 'x' after top-level value (at byte 21)"},
		{"PATCH", "/v1/endpoints/mine", `{`, 400, "body: must be one JSON value with nothing after it: unexpected end of JSON input"},
		// encoding/json matches keys whatever their case: the last of two wins.
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"tenant":"A","Tenant":"B"}`, 400, "Tenant: unknown field (names are case-sensitive: tenant)"},
		{"POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["*"],"signing":{"Scheme":"none"}}`, 400, "signing.Scheme: unknown field"},
		{"PATCH", "/v1/endpoints/mine", `{"Tenant":"x"}`, 400, "Tenant: unknown field"},
		{"PATCH", "/v1/endpoints/mine", `{"URL":"http://127.0.0.1:9/"}`, 400, "URL: unknown field"},
		{"POST", "/v1/events/x/redeliver", `{"endpoint":"a","ENDPOINT":"b"}`, 400, "ENDPOINT: unknown field"},
		{"POST", "/v1/endpoints/mine/test", `{"data":{"amount":1,"amount":1000000}}`, 400, `duplicate key "amount"`},
		{"POST", "/v1/endpoints/mine/test", `{"type":""}`, 400, "type: must not be empty or null"},
		{"POST", "/v1/endpoints/mine/test", `{"type":null}`, 400, "type: must not be empty or null"},
		{"POST", "/v1/endpoints/mine/test", `{"data":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, 400, "nested"},
		{"POST", "/v1/events/x/redeliver", `{"endpoint":"a","endpoint":"b"}`, 400, "duplicate key"},
		// Blank where leaving the key out widens: every parked delivery, all capabilities.
		{"POST", "/v1/undeliverable/redeliver", `{"since":null}`, 400, "since: must not be empty or null"},
		{"POST", "/v1/undeliverable/redeliver", `{"until":""}`, 400, "until: must not be empty or null"},
		{"POST", "/v1/tenants/T/portal", `{"capabilities":null}`, 400, "capabilities: must not be empty or null"},
	}
	if status, out, _ := do(t, "POST", "http://"+d.AdminAddr()+"/v1/endpoints", "text/plain", `{"url":"http://127.0.0.1:9/","events":["*"]}`); status != 415 {
		t.Errorf("a text/plain body: %d %v", status, out)
	}
	if status, out, _ := do(t, "POST", "http://"+d.AdminAddr()+"/v1/endpoints", "application/json", `{"url":"http://127.0.0.1:9/","events":["*"]}`, "Content-Encoding", "gzip"); status != 415 || !strings.HasPrefix(errMessage(out), "Content-Encoding") {
		t.Errorf("a body said to be gzip: %d %v", status, out)
	}
	for _, c := range cases {
		status, out := d.Admin(c.method, c.path, c.body)
		if status != c.status {
			t.Errorf("%s %s %s: %d, want %d (%v)", c.method, c.path, c.body, status, c.status, out)
			continue
		}
		e, _ := out["error"].(map[string]any)
		if e == nil || e["code"] == "" || !strings.Contains(e["message"].(string), c.mention) {
			t.Errorf("%s %s %s: %v should mention %q", c.method, c.path, c.body, out, c.mention)
		}
	}
	// Ordering and filters are set through the API as in the file.
	if status, got := d.Admin("PATCH", "/v1/endpoints/mine", `{"ordering":"fifo","filter":"data.total > 100"}`); status != 200 || got["ordering"] != "fifo" || got["filter"] != "data.total > 100" {
		t.Fatalf("patch ordering and filter: %d %v", status, got)
	}
	// A failed patch changed nothing.
	if _, got := d.Admin("GET", "/v1/endpoints/mine", ""); got["tenant"] != "T" || got["url"] != rcv.URL+"/m" {
		t.Fatalf("after refused patches: %v", got)
	}
	// null resets a key to its default; disabled is the same state as the routes.
	d.Admin("PATCH", "/v1/endpoints/mine", `{"max_in_flight":2}`)
	if status, got := d.Admin("PATCH", "/v1/endpoints/mine", `{"max_in_flight":null,"disabled":true}`); status != 200 || got["state"] != "disabled" {
		t.Fatalf("patch disabled: %d %v", status, got)
	}
}

// A reload that adds a config endpoint whose name a managed endpoint holds
// is refused, naming it; managed endpoints are untouched by reloads.
func TestReloadRefusesManagedNameClash(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, "")
	d.Admin("POST", "/v1/endpoints", `{"name":"taken","url":"`+rcv.URL+`/t","events":["*"]}`)
	d.rewrite(endpoint("taken", rcv.URL+"/file", `["*"]`, ""))
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), `"taken"`) {
		t.Fatalf("reload: %v", err)
	}
	d.rewrite(endpoint("other", rcv.URL+"/o", `["*"]`, ""))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	d.Event(`{"type":"t","data":1}`)
	rcv.Wait(t, "/t", 1)
	rcv.Wait(t, "/o", 1)
}

// With secrets_key_file the raw database holds no managed secret.
func TestManagedSecretsSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	os.WriteFile(key, []byte(seal.NewKey()+"\n"), 0o600)
	d := mustOpenIn(t, dir, Extra{Storage: fmt.Sprintf("secrets_key_file = %q", key)}, "", nil)
	_, ep := d.Admin("POST", "/v1/endpoints", `{"name":"s","url":"http://127.0.0.1:9/","events":["*"]}`)
	_, h := d.Admin("POST", "/v1/endpoints", `{"name":"h","url":"http://127.0.0.1:9/","events":["*"],"signing":{"scheme":"hmac-sha256"}}`)
	d.Close()
	raw := readRaw(t, filepath.Join(dir, "hookd.db"))
	for _, s := range []string{ep["secret"].(string), strings.TrimPrefix(ep["secret"].(string), "whsec_"), h["secret"].(string)} {
		if strings.Contains(raw, s) {
			t.Fatalf("the database file holds a secret in clear")
		}
	}
	d = mustOpenIn(t, dir, Extra{Storage: fmt.Sprintf("secrets_key_file = %q", key)}, "", nil)
	if _, got := d.Admin("GET", "/v1/endpoints/s/secret", ""); got["secret"] != ep["secret"] {
		t.Fatalf("after restart: %v", got)
	}
}

// [defaults.signing] is the config file's: its secret and previous_secrets
// sign the operator's own endpoints and never a managed one, whose secrets
// are its own (created, rotated, revealed through the API).
func TestManagedEndpointsInheritNoSecretsFromDefaults(t *testing.T) {
	rcv := NewReceiver(t)
	const operatorOld = "whsec_b3BlcmF0b3Igb2xkIHNlY3JldCBvZiAzMiBieXRlcy4uLi4="
	d := MustOpenDaemon(t, "\n[defaults.signing]\nsecret = \""+testSecret+"\"\nprevious_secrets = [\""+operatorOld+"\"]\n")
	status, ep := d.Admin("POST", "/v1/endpoints", `{"name":"m1","url":"`+rcv.URL+`/m1","events":["*"],"tenant":"t1"}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, ep)
	}
	if _, sec := d.Admin("GET", "/v1/endpoints/m1/secret", ""); len(sec["previous"].([]any)) != 0 {
		t.Fatalf("previous: %v", sec)
	}
	d.Event(`{"type":"x","tenant":"t1","data":1}`)
	if n := verifyAmong(t, rcv.Wait(t, "/m1", 1)[0], ep["secret"].(string)); n != 1 {
		t.Fatalf("a never-rotated managed endpoint's request carries %d signatures", n)
	}
	for _, body := range []string{
		`{"name":"h1","url":"` + rcv.URL + `/h1","events":["*"],"signing":{"scheme":"hmac-sha256"}}`,
		`{"name":"n1","url":"` + rcv.URL + `/n1","events":["*"],"signing":{"scheme":"none"}}`,
	} {
		if status, out := d.Admin("POST", "/v1/endpoints", body); status != 201 {
			t.Fatalf("%s: %d %v", body, status, out)
		}
	}
	d.Event(`{"type":"y","data":2}`)
	if r := rcv.Wait(t, "/n1", 1)[0]; r.Header.Get("webhook-signature") != "" {
		t.Fatalf("scheme none signed with the defaults' secret: %v", r.Header)
	}
}
