package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"hookd/api"
	"hookd/daemon"
)

// TestAPITour calls every route api/openapi.yaml describes, so that each
// answer shape is checked against the file (do does that) even where no
// other test needs the route.
func TestAPITour(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/b", 500, 1000)
	d := MustOpenDaemonExtra(t, Extra{Portal: `listen = "127.0.0.1:0"`}, endpoint("a", rcv.URL+"/a", `["tour.*"]`, standardSigning(testSecret))+
		endpoint("b", rcv.URL+"/b", `["tour.*"]`, "schedule = []"), nil)
	expect := func(what string, status, want int, out any) {
		t.Helper()
		if status != want {
			t.Fatalf("%s: %d %v, want %d", what, status, out, want)
		}
	}
	ingest := func(method, path, body string) (int, map[string]any) {
		status, out, _ := do(t, method, "http://"+d.IngestAddr()+path, "application/json", body)
		return status, out
	}

	s, out := ingest("GET", "/healthz", "")
	expect("healthz", s, 200, out)
	s, out = ingest("GET", "/readyz", "")
	expect("readyz", s, 200, out)
	s, out = ingest("POST", "/readyz", "") // it answered 200 (black-box testing)
	expect("readyz posted", s, 405, out)
	s, out = ingest("POST", "/v1/events", `{"id":"t1","type":"tour.started","data":{"n":1},"endpoints":["a","b"]}`)
	expect("event", s, 202, out)
	s, out = ingest("POST", "/v1/events", `{"id":"t1","type":"tour.started","data":{"n":1}}`)
	expect("duplicate", s, 200, out)
	s, out = ingest("POST", "/v1/events", `{"id":"t0","type":"other","tenant":"wgt_1","payload":[1]}`)
	expect("event without deliveries", s, 202, out)
	s, out = ingest("POST", "/v1/events/batch", `[{"id":"t2","type":"tour.batched","data":null},{"id":"t1","type":"tour.started","data":1},{"type":"no spaces"}]`)
	expect("batch", s, 200, out)

	d.waitState("t1", "a", "delivered")
	d.waitState("t1", "b", "undeliverable")
	s, out = d.Admin("GET", "/v1/events/t1", "")
	expect("event", s, 200, out)
	s, out = d.Admin("GET", "/v1/undeliverable?endpoint=b&limit=1", "")
	expect("undeliverable", s, 200, out)
	s, out = d.Admin("GET", "/v1/deliveries?status=undeliverable&since=1h&limit=5", "")
	expect("deliveries", s, 200, out)
	// Times before 1970 are 1970: a since found nothing and an until
	// bounded nothing (black-box testing).
	if _, out := d.Admin("GET", "/v1/deliveries?since=1900-01-01T00:00:00Z", ""); len(out["items"].([]any)) == 0 {
		t.Fatalf("since 1900: %v", out)
	}
	if _, out := d.Admin("GET", "/v1/deliveries?until=1969-12-31T23:59:59Z", ""); len(out["items"].([]any)) != 0 {
		t.Fatalf("until 1969: %v", out)
	}
	s, out = d.Admin("GET", "/v1/deliveries?status=lost", "")
	expect("deliveries with a bad status", s, 400, out)
	// Durations ago, as in the log's query: parked just now is not "until
	// an hour ago".
	s, out = d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"b","until":"1h"}`)
	expect("redeliver undeliverable until an hour ago", s, 202, out)
	if out["redelivered"] != 0.0 {
		t.Errorf("until an hour ago redelivered %v", out["redelivered"])
	}
	s, out = d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"b","since":"2000-01-01T00:00:00Z"}`)
	expect("redeliver undeliverable", s, 202, out)
	s, out = d.Admin("POST", "/v1/events/t1/redeliver", `{"endpoint":"a"}`)
	expect("redeliver", s, 202, out)
	s, out = d.Admin("POST", "/v1/events/t0/redeliver", "")
	expect("redeliver an event without deliveries", s, 202, out)
	s, out = d.Admin("GET", "/v1/endpoints", "")
	expect("endpoints", s, 200, out)
	s, out = d.Admin("POST", "/v1/endpoints/a/test", `{"type":"tour.test","data":{"x":1}}`)
	expect("test", s, 200, out)
	// A route without a body takes an empty one or {}, and refuses a bad
	// one without making the change (it ignored `{` and `{"until":"1h"}`).
	for _, body := range []string{"{", `{"until":"1h"}`, "null"} {
		s, out = d.Admin("POST", "/v1/endpoints/a/disable", body)
		expect("disable with "+body, s, 400, out)
	}
	if _, ep := d.Admin("GET", "/v1/endpoints/a", ""); ep["state"] == "disabled" {
		t.Fatal("a refused disable disabled the endpoint")
	}
	s, out = d.Admin("POST", "/v1/endpoints/a/disable", "{}")
	expect("disable", s, 200, out)
	s, out = d.Admin("POST", "/v1/endpoints/a/enable", "")
	expect("enable", s, 200, out)
	s, out = d.Admin("POST", "/v1/endpoints", `{"name":"m","tenant":"wgt_1","url":"`+rcv.URL+`/m","events":["tour.*"],"description":"tour","metadata":{"k":"v"},`+
		`"envelope":{"type":"event","tenant":"widget_id"},"signing":{"scheme":"hmac-sha256"},"schedule":["1s"],"max_response_bytes":"4KiB"}`)
	expect("create endpoint", s, 201, out)
	s, out = d.Admin("GET", "/v1/endpoints/m", "")
	expect("endpoint", s, 200, out)
	s, out = d.Admin("GET", "/v1/endpoints?tenant=wgt_1&limit=10", "")
	expect("tenant's endpoints", s, 200, out)
	s, out = d.Admin("PATCH", "/v1/endpoints/m", `{"schedule":null,"description":"tour, patched"}`)
	expect("patch endpoint", s, 200, out)
	s, out = d.Admin("POST", "/v1/endpoints/m/rotate-secret", `{"overlap":"0s"}`)
	expect("rotate secret", s, 200, out)
	s, out = d.Admin("GET", "/v1/endpoints/m/secret", "")
	expect("secret", s, 200, out)
	s, out = d.Admin("DELETE", "/v1/endpoints/m", "")
	expect("delete endpoint", s, 204, out)
	s, out = d.Admin("POST", "/v1/endpoints", `{"name":"n","tenant":"wgt_2","url":"`+rcv.URL+`/n","events":["*"],"disabled":true}`)
	expect("create endpoint", s, 201, out)
	s, out = d.Admin("GET", "/v1/tenants?limit=5", "")
	expect("tenants", s, 200, out)
	s, out = d.Admin("DELETE", "/v1/tenants/wgt_2", "")
	expect("delete tenant", s, 200, out)
	s, out = d.Admin("GET", "/v1/event-types", "")
	expect("event types", s, 200, out)
	s, out = d.Admin("GET", "/v1/event-types?limit=1", "") // one page: it answered all, as if paged
	expect("event types with a limit", s, 400, out)
	s, out = d.Admin("GET", "/v1/backup", "")
	expect("backup", s, 200, out)
	s, out = d.Admin("GET", "/metrics", "")
	expect("metrics", s, 200, out)
	s, out = d.Admin("GET", "/debug/pprof/", "")
	expect("pprof while admin.pprof is off", s, 404, out)
	s, out = d.Admin("GET", "/debug/pprof/heap", "")
	expect("pprof while admin.pprof is off", s, 404, out)
	s, out = d.Admin("GET", "/openapi.yaml", "")
	expect("openapi.yaml", s, 200, out)
	resp, err := http.Get("http://" + d.AdminAddr() + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(served, api.OpenAPI) {
		t.Error("GET /openapi.yaml is not api/openapi.yaml")
	}

	portalTour(t, d, rcv)

	sp, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	served2 := servedRoutes()
	for path, item := range sp.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if _, ok := exercised.Load(op.OperationID); !ok && served2[method+" "+param.ReplaceAllString(path, "{}")] {
				t.Errorf("%s %s (%s): not exercised; add it to this tour", method, path, op.OperationID)
			}
		}
	}
}

var param = regexp.MustCompile(`\{[^}/]+\}`)

func servedRoutes() map[string]bool {
	m := map[string]bool{}
	for _, r := range daemon.Routes() {
		m[r.Method+" "+r.Path] = true
	}
	return m
}

// The ingest listener serves its routes and no other of the file's paths
// (the ingest routes daemon.Routes lists are the paths of handleIngest's
// switch; this holds the switch to them). The admin listener dispatches
// on the very table Routes reads, so it needs no such probe.
func TestIngestServesOnlyItsRoutes(t *testing.T) {
	d := MustOpenDaemon(t, "")
	sp, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	ingest := map[string]bool{}
	for _, r := range daemon.Routes() {
		if r.Listener == "ingest" {
			ingest[r.Path] = true
		}
	}
	for path := range sp.doc.Paths.Map() {
		concrete := param.ReplaceAllString(path, "x")
		for _, method := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(method, "http://"+d.IngestAddr()+concrete, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e struct{ Error struct{ Code string } }
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			served := resp.StatusCode != 404 || e.Error.Code != "not_found"
			if served != ingest[path] {
				t.Errorf("%s %s on the ingest listener: %d %s; an ingest route: %v", method, concrete, resp.StatusCode, e.Error.Code, ingest[path])
			}
		}
	}
}
