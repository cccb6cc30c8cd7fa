package tests

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/config"
	"hookd/daemon"
	"hookd/seal"
)

// Hundreds of tenants at once: an event of tenant A reaches A's endpoints
// and the platform endpoints, never B's; an event without a tenant reaches
// platform endpoints only.
func TestTenantIsolation(t *testing.T) {
	const tenants = 300
	rcv := NewReceiver(t)
	var cfg strings.Builder
	cfg.WriteString(endpoint("platform", rcv.URL+"/platform", `["*"]`, ""))
	for i := range tenants {
		cfg.WriteString(endpoint(fmt.Sprintf("t%03d", i), fmt.Sprintf("%s/t%03d", rcv.URL, i), `["*"]`, fmt.Sprintf(`tenant = "wgt_%03d"`, i)))
	}
	d := MustOpenDaemon(t, cfg.String())
	var (
		mu     sync.Mutex
		sentTo = map[string]string{} // event id → tenant ("" for none)
		wg     sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 100 {
				tenant := ""
				body := `{"type":"conversation.ended","data":{}}`
				if rng.IntN(10) > 0 {
					tenant = fmt.Sprintf("wgt_%03d", rng.IntN(tenants))
					body = `{"type":"conversation.ended","tenant":"` + tenant + `","data":{}}`
				}
				status, out, _ := d.Post("/v1/events", "application/json", body)
				want := 2.0
				if tenant == "" {
					want = 1
				}
				if status != 202 || out["deliveries"].(float64) != want {
					t.Errorf("%s: %d %v", body, status, out)
					return
				}
				mu.Lock()
				sentTo[out["id"].(string)] = tenant
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	withTenant := 0
	for _, tenant := range sentTo {
		if tenant != "" {
			withTenant++
		}
	}
	rcv.Wait(t, "/platform", len(sentTo))
	eventually(t, "every tenant event delivered", func() bool { return len(rcv.Requests(""))-len(rcv.Requests("/platform")) >= withTenant })
	for _, r := range rcv.Requests("") {
		if r.Path == "/platform" {
			continue
		}
		var id string
		for _, h := range []string{"webhook-id"} {
			id = r.Header.Get(h)
		}
		if id == "" { // unsigned: the id is in the standard envelope
			id = strings.SplitN(strings.TrimPrefix(string(r.Body), `{"id":"`), `"`, 2)[0]
		}
		want := "/t" + strings.TrimPrefix(sentTo[id], "wgt_")
		if r.Path != want {
			t.Fatalf("event %s of tenant %q reached %s", id, sentTo[id], r.Path)
		}
	}
	if n := len(rcv.Requests("")) - len(rcv.Requests("/platform")); n != withTenant {
		t.Fatalf("%d tenant deliveries for %d tenant events", n, withTenant)
	}
}

// endpoints in an event may only name endpoints its tenant can reach;
// another tenant's endpoint gets the same 400 as an unknown one.
func TestEventEndpointsFollowTenants(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("platform", rcv.URL+"/p", `["*"]`, "")+
		endpoint("a", rcv.URL+"/a", `["*"]`, `tenant = "A"`)+endpoint("b", rcv.URL+"/b", `["*"]`, `tenant = "B"`))
	cases := []struct {
		body   string
		status int
		n      float64
	}{
		{`{"type":"t","tenant":"A","data":1,"endpoints":["a"]}`, 202, 1},
		{`{"type":"t","tenant":"A","data":1,"endpoints":["platform","a"]}`, 202, 2},
		{`{"type":"t","tenant":"A","data":1,"endpoints":["b"]}`, 400, 0},
		{`{"type":"t","data":1,"endpoints":["a"]}`, 400, 0},
		{`{"type":"t","tenant":"A","data":1,"endpoints":["nope"]}`, 400, 0},
		{`{"type":"t","tenant":"A/..","data":1}`, 400, 0},
		{`{"type":"t","tenant":"C","data":1}`, 202, 1},
	}
	for _, c := range cases {
		status, out, _ := d.Post("/v1/events", "application/json", c.body)
		if status != c.status || (status == 202 && out["deliveries"].(float64) != c.n) {
			t.Errorf("%s: %d %v", c.body, status, out)
		}
		if status == 400 && strings.Contains(fmt.Sprint(out), `"b"`) && !strings.Contains(fmt.Sprint(out), "reach") {
			t.Errorf("%s: %v", c.body, out)
		}
	}
	// The same message for another tenant's and an unknown endpoint.
	_, foreign, _ := d.Post("/v1/events", "application/json", `{"type":"t","tenant":"A","data":1,"endpoints":["b"]}`)
	_, unknown, _ := d.Post("/v1/events", "application/json", `{"type":"t","tenant":"A","data":1,"endpoints":["zz"]}`)
	f := strings.ReplaceAll(fmt.Sprint(foreign), `"b"`, "X")
	u := strings.ReplaceAll(fmt.Sprint(unknown), `"zz"`, "X")
	if f != u {
		t.Errorf("foreign and unknown differ: %v / %v", foreign, unknown)
	}
}

// A redelivery follows the routing rule too, for operators as for tenants:
// an event is never resent to another tenant's endpoint, nor a platform
// event to a tenant's.
func TestRedeliveryFollowsTenants(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("platform", rcv.URL+"/p", `["*"]`, "")+
		endpoint("a", rcv.URL+"/a", `["*"]`, `tenant = "A"`)+endpoint("b", rcv.URL+"/b", `["*"]`, `tenant = "B"`))
	for _, body := range []string{`{"id":"evB","type":"t","tenant":"B","data":{"secret":"of B"}}`, `{"id":"evP","type":"t","data":1}`} {
		if status, out, _ := d.Post("/v1/events", "application/json", body); status != 202 {
			t.Fatalf("%s: %d %v", body, status, out)
		}
	}
	rcv.Wait(t, "/b", 1)
	rcv.Wait(t, "/p", 2)
	for _, c := range []struct{ event, endpoint string }{{"evB", "a"}, {"evP", "a"}, {"evP", "b"}} {
		status, out := d.Admin("POST", "/v1/events/"+c.event+"/redeliver", `{"endpoint":"`+c.endpoint+`"}`)
		if status != 400 || !strings.Contains(fmt.Sprint(out), "reach") {
			t.Errorf("%s to %s: %d %v", c.event, c.endpoint, status, out)
		}
	}
	for _, c := range []struct{ event, endpoint string }{{"evB", "b"}, {"evB", "platform"}, {"evP", "platform"}} {
		if status, out := d.Admin("POST", "/v1/events/"+c.event+"/redeliver", `{"endpoint":"`+c.endpoint+`"}`); status != 202 {
			t.Errorf("%s to %s: %d %v", c.event, c.endpoint, status, out)
		}
	}
	rcv.Wait(t, "/b", 2)
	rcv.Wait(t, "/p", 4)
	// A blank endpoint is not "every endpoint" (it was: found by black-box testing).
	for _, path := range []string{"/v1/events/evB/redeliver", "/v1/undeliverable/redeliver"} {
		for _, body := range []string{`{"endpoint":""}`, `{"endpoint":null}`} {
			if status, out := d.Admin("POST", path, body); status != 400 || !strings.Contains(fmt.Sprint(out), "endpoint: must not be empty or null") {
				t.Errorf("%s %s: %d %v", path, body, status, out)
			}
		}
	}
	if n := rcv.count("/a"); n != 0 {
		t.Errorf("tenant A's endpoint got %d requests", n)
	}
}

// An event routed to a disabled endpoint is kept as undeliverable with
// reason "endpoint disabled" (no notification), and enable + bulk
// redeliver replays everything it missed.
func TestDisabledEndpointKeepsItsEvents(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, `tenant = "A"`)+"\n[notify]\nurl = \""+rcv.URL+"/alerts\"\n")
	if status, _ := d.Admin("POST", "/v1/endpoints/a/disable", ""); status != 200 {
		t.Fatal("disable")
	}
	var ids []string
	for range 3 {
		status, out, _ := d.Post("/v1/events", "application/json", `{"type":"t","tenant":"A","data":1}`)
		if status != 202 || out["deliveries"].(float64) != 1 {
			t.Fatalf("event to a disabled endpoint: %d %v", status, out)
		}
		ids = append(ids, out["id"].(string))
	}
	// At once after the 202s, as every read after an acknowledgement
	// (black-box testing: the list lagged the 202 by up to 20 ms).
	if status, out := d.Admin("GET", "/v1/undeliverable?endpoint=a", ""); status != 200 || len(out["items"].([]any)) != 3 {
		t.Fatalf("undeliverable list: %d %v", status, out)
	}
	for _, id := range ids {
		dl := d.waitState(id, "a", "undeliverable")
		if dl["reason"] != "endpoint disabled" {
			t.Fatalf("reason %v", dl)
		}
	}
	parkedOfA := func() any {
		_, out := d.Admin("GET", "/v1/tenants", "")
		return out["items"].([]any)[0].(map[string]any)["undeliverable"]
	}
	if n := parkedOfA(); n != 3.0 {
		t.Fatalf("tenant A's undeliverable count %v, want 3", n)
	}
	d.Admin("POST", "/v1/endpoints/a/enable", "")
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"a"}`); status != 202 || out["redelivered"].(float64) != 3 {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	rcv.Wait(t, "/a", 3)
	for _, id := range ids {
		d.waitState(id, "a", "delivered")
	}
	if n := parkedOfA(); n != 0.0 {
		t.Fatalf("tenant A's undeliverable count %v after the redelivery, want 0", n)
	}
	if n := len(rcv.Requests("/alerts")); n != 0 {
		t.Fatalf("%d notifications for deliveries parked by a disabled endpoint", n)
	}
}

// A database sealed with one secrets key refuses to start with another or
// none, with an error that names the key file setting.
func TestSecretsKeyBindsTheDatabase(t *testing.T) {
	dir := t.TempDir()
	keyA, keyB := filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key")
	os.WriteFile(keyA, []byte(seal.NewKey()+"\n"), 0o600)
	os.WriteFile(keyB, []byte(seal.NewKey()+"\n"), 0o600)
	d := mustOpenIn(t, dir, Extra{Storage: fmt.Sprintf("secrets_key_file = %q", keyA)}, "", nil)
	d.Close()
	for name, extra := range map[string]string{"another key": fmt.Sprintf("secrets_key_file = %q", keyB), "no key": ""} {
		path := filepath.Join(dir, "hookd.toml")
		writeConfig(t, path, dir, Extra{Storage: extra}, "")
		c, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		err = daemon.New(c).Open()
		if err == nil || !strings.Contains(err.Error(), "secrets_key_file") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	d = mustOpenIn(t, dir, Extra{Storage: fmt.Sprintf("secrets_key_file = %q", keyA)}, "", nil)
	d.Event(`{"type":"t","data":1}`)
}

const catalogue = `
[[event_types]]
name = "conversation.ended"
description = "A conversation closed."
example = '{"conversation_id":"conv_1","duration_seconds":127}'
[[event_types]]
name = "lead.created"
`

// The event type catalogue: listed, examples in test events, and patterns
// that match no catalogued type refused in the file and the API.
func TestEventTypeCatalogue(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("crm", rcv.URL+"/crm", `["conversation.*"]`, "")+catalogue)
	status, out := d.Admin("GET", "/v1/event-types", "")
	items, _ := out["items"].([]any)
	if status != 200 || len(items) != 2 || items[0].(map[string]any)["example"].(map[string]any)["conversation_id"] != "conv_1" {
		t.Fatalf("event types: %d %v", status, out)
	}
	if status, out := d.Admin("POST", "/v1/endpoints/crm/test", `{"type":"conversation.ended"}`); status != 200 || out["ok"] != true {
		t.Fatalf("test: %d %v", status, out)
	}
	if body := string(rcv.Wait(t, "/crm", 1)[0].Body); !strings.Contains(body, `"data":{"conversation_id":"conv_1","duration_seconds":127}`) {
		t.Fatalf("a test event of a catalogued type carries its example: %s", body)
	}
	for _, events := range []string{`["lead.creatd"]`, `["conversation.ended","x.*"]`} {
		status, out := d.Admin("POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":`+events+`}`)
		if status != 400 || !strings.Contains(out["error"].(map[string]any)["message"].(string), "events") {
			t.Errorf("%s: %d %v", events, status, out)
		}
	}
	if status, _ := d.Admin("POST", "/v1/endpoints", `{"url":"http://127.0.0.1:9/","events":["lead.*","*"]}`); status != 201 {
		t.Errorf("matching patterns refused: %d", status)
	}
	path := filepath.Join(t.TempDir(), "c.toml")
	writeConfig(t, path, filepath.Dir(path), Extra{}, endpoint("typo", "http://127.0.0.1:9/", `["conversation.endd"]`, "")+catalogue)
	if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), "endpoints[0].events") {
		t.Fatalf("typo in the file: %v", err)
	}
	// Ingest is not restricted by the catalogue.
	if status, _, _ := d.Post("/v1/events", "application/json", `{"type":"not.catalogued","data":1}`); status != 202 {
		t.Fatalf("ingest of an uncatalogued type: %d", status)
	}
	// An endpoint whose type a reload took out of the catalogue can still
	// be edited with its events as they are, which the portal's form
	// sends (it could not be saved; black-box testing); a change of them
	// is checked.
	if status, out := d.Admin("POST", "/v1/endpoints", `{"name":"leads","url":"http://127.0.0.1:9/","events":["lead.created"]}`); status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	writeRaw(t, d.cfgPath, strings.Replace(readRaw(t, d.cfgPath), "[[event_types]]\nname = \"lead.created\"\n", "", 1))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, out := d.Admin("GET", "/v1/event-types", ""); len(out["items"].([]any)) != 1 {
		t.Fatalf("after the reload: %v", out)
	}
	if status, out := d.Admin("PATCH", "/v1/endpoints/leads", `{"url":"http://127.0.0.1:9/x","events":["lead.created"]}`); status != 200 {
		t.Fatalf("edit with the events unchanged: %d %v", status, out)
	}
	if status, out := d.Admin("PATCH", "/v1/endpoints/leads", `{"events":["lead.created","lead.updated"]}`); status != 400 {
		t.Fatalf("uncatalogued events: %d %v", status, out)
	}
}

// disable_after disables an endpoint that has failed every attempt for
// that long, with a notification; its later events are kept, not sent.
func TestDisableAfter(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/down", 500, 1<<30)
	d := MustOpenDaemon(t, "\n[defaults]\ndisable_after = \"300ms\"\n"+
		endpoint("down", rcv.URL+"/down", `["*"]`, `schedule = ["50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms"]`)+
		"\n[notify]\nurl = \""+rcv.URL+"/alerts\"\n")
	d.Event(`{"type":"t","data":1}`)
	eventually(t, "the endpoint disabled", func() bool {
		_, out := d.Admin("GET", "/v1/endpoints/down", "")
		reason, _ := out["disabled_reason"].(string) // written just after the state flips
		return out["state"] == "disabled" && strings.Contains(reason, "disable_after") && out["disabled_by"] == "hookd"
	})
	eventually(t, "the notification", func() bool {
		for _, r := range rcv.Requests("/alerts") {
			if strings.Contains(string(r.Body), "hookd.endpoint.disabled") {
				return true
			}
		}
		return false
	})
	id := d.Event(`{"type":"t","data":2}`)
	if dl := d.waitState(id, "down", "undeliverable"); dl["reason"] != "endpoint disabled" {
		t.Fatalf("after auto-disable: %v", dl)
	}
}

// GET /v1/tenants lists tenants with counts; DELETE deletes a tenant's
// managed endpoints (pending → undeliverable) and keeps config ones.
func TestTenantsListAndDelete(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1<<30)
	d := MustOpenDaemon(t, endpoint("fileep", rcv.URL+"/f", `["*"]`, `tenant = "A"`))
	for _, body := range []string{
		`{"name":"a1","url":"` + rcv.URL + `/a","events":["*"],"tenant":"A","schedule":["1h"]}`,
		`{"name":"b1","url":"` + rcv.URL + `/b","events":["*"],"tenant":"B"}`,
	} {
		if status, out := d.Admin("POST", "/v1/endpoints", body); status != 201 {
			t.Fatalf("create: %d %v", status, out)
		}
	}
	id := d.Event(`{"type":"t","tenant":"A","data":1}`)
	// fileep's delivery counts as pending until it is made: wait for it,
	// so that A has exactly one pending (a1's, which fails for an hour).
	d.waitState(id, "fileep", "delivered")
	status, out := d.Admin("GET", "/v1/tenants?limit=1", "")
	items := out["items"].([]any)
	if status != 200 || len(items) != 1 || items[0].(map[string]any)["tenant"] != "A" || items[0].(map[string]any)["endpoints"] != 2.0 || out["next_cursor"] != "A" {
		t.Fatalf("tenants page 1: %d %v", status, out)
	}
	_, out = d.Admin("GET", "/v1/tenants?cursor=A", "")
	if items := out["items"].([]any); len(items) != 1 || items[0].(map[string]any)["tenant"] != "B" {
		t.Fatalf("tenants page 2: %v", out)
	}
	if code, text, errs := runCLI(t, "tenants", "-admin", "http://"+d.AdminAddr()); code != 0 || !matchRe(`(?m)^A\s+2\s+1\s`, text) || !matchRe(`(?m)^B\s+1\s`, text) {
		t.Fatalf("hookd tenants: %d\n%s%s", code, text, errs)
	}
	status, out = d.Admin("DELETE", "/v1/tenants/A", "")
	if status != 200 || fmt.Sprint(out["deleted"]) != "[a1]" || fmt.Sprint(out["kept"]) != "[fileep]" {
		t.Fatalf("delete tenant: %d %v", status, out)
	}
	// The deleted endpoint's deliveries show its internal id.
	_, ev := d.Admin("GET", "/v1/events/"+id, "")
	parked := false
	for _, x := range ev["deliveries"].([]any) {
		dl := x.(map[string]any)
		parked = parked || (dl["state"] == "undeliverable" && dl["reason"] == "endpoint deleted")
	}
	if !parked || ev["tenant"] != "A" {
		t.Fatalf("pending delivery of a deleted tenant endpoint, or the event's tenant: %v", ev)
	}
	if status, _ := d.Admin("GET", "/v1/endpoints/a1", ""); status != 404 {
		t.Fatal("a1 survived its tenant's deletion")
	}
	if status, out := d.Admin("DELETE", "/v1/tenants/nobody", ""); status != 404 || !strings.Contains(fmt.Sprint(out), `tenant "nobody": no endpoints and no portal sessions`) {
		t.Fatalf("deleting an unknown tenant: %d %v", status, out)
	}
}

// The deliveries log through the API and the CLI: newest first, filtered
// by tenant, endpoint, status, type and time.
func TestDeliveriesLog(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/b", 500, 1<<30)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, `tenant = "A"`)+endpoint("b", rcv.URL+"/b", `["*"]`, "tenant = \"B\"\nschedule = []"))
	var ids []string
	for i := range 6 {
		tenant := []string{"A", "B"}[i%2]
		ids = append(ids, d.Event(fmt.Sprintf(`{"id":"log-%d","type":"t.%s","tenant":%q,"data":%d}`, i, tenant, tenant, i)))
	}
	d.waitState(ids[5], "b", "undeliverable")
	d.waitState(ids[4], "a", "delivered")
	_, out := d.Admin("GET", "/v1/deliveries?since=7d", "") // days, as the config file takes them
	items := out["items"].([]any)
	if len(items) != 6 || items[0].(map[string]any)["event_id"] != "log-5" || items[5].(map[string]any)["event_id"] != "log-0" {
		t.Fatalf("all, newest first: %v", out)
	}
	_, out = d.Admin("GET", "/v1/deliveries?status=undeliverable&since=1h", "")
	for _, x := range out["items"].([]any) {
		it := x.(map[string]any)
		if it["endpoint"] != "b" || it["tenant"] != "B" || it["last_attempt"].(map[string]any)["status"] != 500.0 {
			t.Fatalf("undeliverable: %v", it)
		}
	}
	if n := len(out["items"].([]any)); n != 3 {
		t.Fatalf("%d undeliverable", n)
	}
	_, out = d.Admin("GET", "/v1/deliveries?tenant=A&endpoint=b", "")
	if n := len(out["items"].([]any)); n != 0 {
		t.Fatalf("another tenant's endpoint: %v", out)
	}
	_, out = d.Admin("GET", "/v1/deliveries?type=t.A&limit=2", "")
	if n := len(out["items"].([]any)); n != 2 || out["next_cursor"] == "" {
		t.Fatalf("type, paged: %v", out)
	}
	_, out = d.Admin("GET", "/v1/deliveries?until=1h", "")
	if n := len(out["items"].([]any)); n != 0 {
		t.Fatalf("until an hour ago: %v", out)
	}
	code, text, errs := runCLI(t, "deliveries", "-admin", "http://"+d.AdminAddr(), "-status", "undeliverable")
	if code != 0 || strings.Count(text, "undeliverable") != 3 || !strings.Contains(text, "log-5") {
		t.Fatalf("hookd deliveries: %d\n%s%s", code, text, errs)
	}
}

// A config endpoint given another tenant in the file is another endpoint:
// deliveries routed to it for the old tenant are parked as removed, never
// sent to the new tenant's URL, on their next retry or by a bulk redeliver
// of the endpoint's name (found by black-box testing: both sent tenant A's
// data to tenant B's receiver).
func TestConfigEndpointTenantChange(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1000)
	d := MustOpenDaemon(t, endpoint("cfg", rcv.URL+"/a", `["*"]`, `tenant = "A"`+"\nschedule = [\"1s\", \"1s\"]"))
	if status, out, _ := d.Post("/v1/events", "application/json", `{"id":"evA","type":"t","tenant":"A","data":{"secret":"of A"}}`); status != 202 {
		t.Fatalf("event: %d %v", status, out)
	}
	rcv.Wait(t, "/a", 1)
	d.rewrite(endpoint("cfg", rcv.URL+"/b", `["*"]`, `tenant = "B"`+"\nschedule = [\"1s\", \"1s\"]"))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	var parked map[string]any
	eventually(t, "evA parked", func() bool {
		_, ev := d.Admin("GET", "/v1/events/evA", "")
		dls, _ := ev["deliveries"].([]any)
		if len(dls) != 1 {
			return false
		}
		parked = dls[0].(map[string]any)
		return parked["state"] == "undeliverable"
	})
	if parked["reason"] != "endpoint removed" || parked["endpoint"] != "cfg@A" {
		t.Errorf("evA's delivery: %v", parked)
	}
	// The log finds it by the removed endpoint's id, with its tenant too.
	for _, q := range []string{"endpoint=cfg@A", "endpoint=cfg@A&tenant=A"} {
		if status, out := d.Admin("GET", "/v1/deliveries?"+q, ""); status != 200 || len(out["items"].([]any)) != 1 {
			t.Errorf("deliveries?%s: %d %v", q, status, out)
		}
	}
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"cfg"}`); status != 202 || out["redelivered"] != 0.0 {
		t.Errorf("bulk redeliver of cfg: %d %v", status, out)
	}
	if status, out := d.Admin("POST", "/v1/events/evA/redeliver", `{"endpoint":"cfg"}`); status != 400 {
		t.Errorf("redeliver evA to cfg: %d %v", status, out)
	}
	d.Post("/v1/events", "application/json", `{"id":"evB","type":"t","tenant":"B","data":{}}`)
	rcv.Wait(t, "/b", 1)
	time.Sleep(1500 * time.Millisecond) // past evA's next retry
	for _, r := range rcv.Requests("/b") {
		if strings.Contains(string(r.Body), "evA") {
			t.Fatalf("tenant B's URL got tenant A's event: %s", r.Body)
		}
	}
}

// A config endpoint's id was its name before name@tenant: its stored state
// moves to the new id once, so a disabled endpoint stays disabled (here
// through a platform endpoint given a tenant, which makes the same move).
func TestConfigEndpointStateMovesToItsID(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("cfg", rcv.URL+"/a", `["*"]`, ""))
	if status, out := d.Admin("POST", "/v1/endpoints/cfg/disable", ""); status != 200 {
		t.Fatalf("disable: %d %v", status, out)
	}
	d = d.Restart(endpoint("cfg", rcv.URL+"/a", `["*"]`, `tenant = "A"`))
	if _, ep := d.Admin("GET", "/v1/endpoints/cfg", ""); ep["state"] != "disabled" || ep["id"] != "cfg@A" {
		t.Fatalf("after the move: %v", ep)
	}
	d.Event(`{"type":"t","tenant":"A","data":1}`)
	d = d.Restart(endpoint("cfg", rcv.URL+"/a", `["*"]`, `tenant = "B"`))
	if _, ep := d.Admin("GET", "/v1/endpoints/cfg", ""); ep["state"] == "disabled" {
		t.Fatalf("another tenant's endpoint inherited the state: %v", ep)
	}
	if n := rcv.count("/a"); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
}

// A parked notification is listed under hookd-notify, and an operator can
// resend it by that name (found by black-box testing: it was "no such
// endpoint").
func TestParkedNotificationResentByName(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1000)
	rcv.Status("/alerts", 500, 1)
	d := MustOpenDaemon(t, "[defaults]\nschedule = []\n"+endpoint("a", rcv.URL+"/a", `["*"]`, "")+"\n[notify]\nurl = \""+rcv.URL+"/alerts\"\n")
	d.Event(`{"type":"t","data":1}`)
	rcv.Wait(t, "/alerts", 1)
	eventually(t, "the notification parked", func() bool {
		_, out := d.Admin("GET", "/v1/undeliverable?endpoint=hookd-notify", "")
		items, _ := out["items"].([]any)
		return len(items) == 1
	})
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"hookd-notify"}`); status != 202 || out["redelivered"] != 1.0 {
		t.Fatalf("resend: %d %v", status, out)
	}
	rcv.Wait(t, "/alerts", 2)
}
