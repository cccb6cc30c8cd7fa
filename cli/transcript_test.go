package cli

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// adminAnswers are canned admin API answers, shaped like the daemon's.
var adminAnswers = map[string]struct {
	status int
	body   string
}{
	"GET /v1/events/evt_1": {200, `{"id":"evt_1","type":"lead.created","created_at":"2026-11-25T09:00:00.5Z","data":{"name":"Ada"},"deliveries":[
		{"endpoint":"crm","state":"delivered","attempts":2,"delivered_at":"2026-11-25T09:00:07.25+01:00","history":[
			{"n":1,"at":"2026-11-25T09:00:01Z","status":500,"latency_ms":12.345,"error":"HTTP 500","response":{"oops":true}},
			{"n":2,"at":"2026-11-25T09:00:07Z","status":200,"latency_ms":3,"response":"ok"}]},
		{"endpoint":"erp","state":"pending","attempts":1,"next_attempt_at":"2026-11-25T09:05:00Z","history":[
			{"n":1,"at":"2026-11-25T09:00:01Z","status":0,"latency_ms":5000,"error":"timeout"}]},
		{"endpoint":"old","state":"undeliverable","attempts":0,"reason":"endpoint removed","parked_at":"2026-11-25T09:01:00Z"}]}`},
	"GET /v1/events/evt_2":            {200, `{"id":"evt_2","type":"raw","created_at":"2026-11-25T09:00:00Z","payload":[1,2],"deliveries":[]}`},
	"GET /v1/events/nope":             {404, `{"error":{"code":"not_found","message":"no such resource"}}`},
	"POST /v1/events/evt_1/redeliver": {202, `{"id":"evt_1","endpoints":["crm","erp"]}`},
	"GET /v1/undeliverable?endpoint=crm&limit=2": {200, `{"items":[
		{"event_id":"evt_1","event_type":"lead.created","created_at":"2026-11-25T09:00:00Z","endpoint":"crm","state":"undeliverable","attempts":8,"reason":"retry schedule exhausted after 8 attempts; last: HTTP 502","parked_at":"2026-11-25T09:12:03.1Z",
		 "last_attempt":{"n":8,"at":"2026-11-25T09:12:03Z","status":502,"latency_ms":41.2,"error":"HTTP 502"}},
		{"event_id":"evt_3","event_type":"t","created_at":"2026-11-25T09:00:00Z","endpoint":"crm","state":"undeliverable","attempts":0,"reason":"disabled by operator","parked_at":"2026-11-25T09:13:00Z"}],
		"next_cursor":"Y3Vyc29y"}`},
	"GET /v1/undeliverable?limit=100":  {200, `{"items":[],"next_cursor":""}`},
	"POST /v1/undeliverable/redeliver": {202, `{"redelivered":3}`},
	"GET /v1/endpoints": {200, `{"endpoints":[
		{"name":"crm","url":"https://crm.example.com/hooks","events":["*"],"state":"failing","signing_scheme":"standard","pending":12,"in_flight":1,"consecutive_failures":7,"last_failure_at":"2026-11-25T09:12:03.1Z","last_failure_status":502,"last_failure_error":"HTTP 502","ordering":"fifo","blocked_since":"2026-11-25T09:05:00Z"},
		{"name":"erp","url":"http://erp/x","events":null,"state":"disabled","disabled_reason":"410 Gone","signing_scheme":"none","pending":0,"in_flight":0,"consecutive_failures":0,"last_success_at":"2026-11-25T08:00:00Z","ordering":"none","filter":"data.total > 100"}]}`},
	"POST /v1/endpoints/crm/test":  {200, `{"id":"evt_t1","endpoint":"crm","ok":true,"attempt":{"n":1,"at":"2026-11-25T09:20:00Z","status":200,"latency_ms":41.2,"response":{"ok":1}}}`},
	"POST /v1/endpoints/erp/test":  {200, `{"id":"evt_t2","endpoint":"erp","ok":false,"attempt":{"n":1,"at":"2026-11-25T09:20:00Z","status":0,"latency_ms":0.5,"error":"dial tcp: connection refused"}}`},
	"POST /v1/endpoints/nope/test": {404, `{"error":{"code":"not_found","message":"no such resource"}}`},
}

func fakeAdmin(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer t" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"missing or wrong bearer token"}}`)
			return
		}
		key := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			key += "?" + r.URL.RawQuery
		}
		a, ok := adminAnswers[key]
		if !ok {
			t.Errorf("unexpected request %s", key)
			a.status, a.body = 404, `{"error":{"code":"not_found","message":"no such resource"}}`
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

var transcriptCommands = [][]string{
	{"events", "show", "evt_1"},
	{"events", "show", "evt_1", "-json"},
	{"events", "show", "evt_2"},
	{"events", "show", "evt_2", "-json"},
	{"events", "show", "nope"},
	{"redeliver", "evt_1"},
	{"redeliver", "evt_1", "-json"},
	{"undeliverable", "list", "-endpoint", "crm", "-limit", "2"},
	{"undeliverable", "list", "-endpoint", "crm", "-limit", "2", "-json"},
	{"undeliverable", "list"},
	{"undeliverable", "list", "-json"},
	{"undeliverable", "redeliver", "-since", "2026-11-25T08:00:00Z"},
	{"undeliverable", "redeliver", "-json"},
	{"endpoints"},
	{"endpoints", "-json"},
	{"test", "crm"},
	{"test", "crm", "-json"},
	{"test", "erp"},
	{"test", "erp", "-json"},
	{"test", "nope"},
	{"events"},
	{"undeliverable", "redeliver", "-until", "yesterday"},
	{"test", "crm", "-data", "{"},
}

// The admin subcommands print what they printed before they moved out of
// package daemon and onto package client: testdata/admin.golden was
// recorded from that version. Regenerate it with -update only for an
// intended change of output.
var update = flag.Bool("update", false, "rewrite testdata/admin.golden")

func TestAdminOutput(t *testing.T) {
	got := transcript(t, Run)
	const golden = "testdata/admin.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("output differs from %s at line %d:\ngot  %q\nwant %q", golden, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("output differs from %s in length: %d lines, want %d", golden, len(gl), len(wl))
	}
}

// transcript runs every command against the fake admin API and records
// exit code, stdout and stderr.
func transcript(t *testing.T, run func(string, []string, io.Writer, io.Writer) int) string {
	srv := fakeAdmin(t)
	var b strings.Builder
	for _, c := range transcriptCommands {
		var out, errb bytes.Buffer
		code := run(c[0], append(c[1:], "-admin", srv.URL, "-token", "t"), &out, &errb)
		fmt.Fprintf(&b, "$ hookd %s\nexit %d\n--- stdout\n%s--- stderr\n%s\n", strings.Join(c, " "), code, out.String(), errb.String())
	}
	var out, errb bytes.Buffer
	code := run("endpoints", []string{"-admin", srv.URL, "-token", "wrong"}, &out, &errb)
	fmt.Fprintf(&b, "$ hookd endpoints -token wrong\nexit %d\n--- stdout\n%s--- stderr\n%s\n", code, out.String(), errb.String())
	return b.String()
}
