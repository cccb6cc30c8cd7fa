package tests

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"hookd/daemon"
)

func TestIngestErrors(t *testing.T) {
	rcv := NewReceiver(t)
	var diskFull atomic.Bool
	d := MustOpenDaemonExtra(t, Extra{Ingest: "token = \"ingest-token\"\nmax_event_bytes = 1024", Storage: "max_pending = 3"},
		endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["1h"]`)+endpoint("b", rcv.URL+"/b", `["*"]`, `schedule = ["1h"]`),
		func(d *daemon.Daemon) {
			d.StoreHooks.BeforeCommit = func() error {
				if diskFull.Load() {
					return errors.New("no space left on device")
				}
				return nil
			}
		})
	rcv.Status("/a", 500, 1000)
	rcv.Status("/b", 500, 1000)
	auth := []string{"Authorization", "Bearer ingest-token"}
	cases := []struct {
		name, method, path, ct, body string
		headers                      []string
		status                       int
		mention                      string
	}{
		{"no token", "POST", "/v1/events", "application/json", `{"type":"t","data":1}`, nil, 401, "token"},
		{"wrong token", "POST", "/v1/events", "application/json", `{"type":"t","data":1}`, []string{"Authorization", "Bearer nope"}, 401, "token"},
		{"another scheme", "POST", "/v1/events", "application/json", `{"type":"t","data":1}`, []string{"Authorization", "Basic ingest-token"}, 401, "token"},
		{"the scheme in lower case", "POST", "/v1/events", "application/json", `{"type":"x"}`, []string{"Authorization", "bearer ingest-token"}, 400, "data"}, // past the token check
		{"bad json", "POST", "/v1/events", "application/json", `{"type":`, auth, 400, "valid"},
		{"missing type", "POST", "/v1/events", "application/json", `{"data":1}`, auth, 400, "type"},
		{"bad type", "POST", "/v1/events", "application/json", `{"type":"a b","data":1}`, auth, 400, "type"},
		{"type not string", "POST", "/v1/events", "application/json", `{"type":5,"data":1}`, auth, 400, "type"},
		{"half a surrogate pair", "POST", "/v1/events", "application/json", `{"type":"t","data":"\ud800"}`, auth, 400, "surrogate"},
		{"missing data", "POST", "/v1/events", "application/json", `{"type":"t"}`, auth, 400, "data"},
		{"bad id", "POST", "/v1/events", "application/json", `{"id":"has space","type":"t","data":1}`, auth, 400, "id"},
		{"unknown field", "POST", "/v1/events", "application/json", `{"type":"t","data":1,"colour":1}`, auth, 400, "colour"},
		{"unknown endpoint", "POST", "/v1/events", "application/json", `{"type":"t","data":1,"endpoints":["zz"]}`, auth, 400, "endpoints"},
		{"GET", "GET", "/v1/events", "", ``, auth, 405, "POST"},
		{"too large", "POST", "/v1/events", "application/json", `{"type":"t","data":"` + strings.Repeat("x", 2000) + `"}`, auth, 413, "max_event_bytes"},
		{"form content", "POST", "/v1/events", "application/x-www-form-urlencoded", `type=t`, auth, 415, "Content-Type"},
		{"utf-16 declared", "POST", "/v1/events", "application/json; charset=utf-16", `{"type":"t","data":{}}`, auth, 415, "charset"},
		{"gzip", "POST", "/v1/events", "application/json", "\x1f\x8b\x08\x00", append([]string{"Content-Encoding", "gzip"}, auth...), 415, "Content-Encoding"},
		{"br on a plain body", "POST", "/v1/events", "application/json", `{"type":"t","data":{}}`, append([]string{"Content-Encoding", "identity, br"}, auth...), 415, "Content-Encoding"},
		{"unknown path", "POST", "/v1/nope", "application/json", `{}`, auth, 404, ""},
		{"invalid UTF-8", "POST", "/v1/events", "application/json", "{\"type\":\"t\",\"data\":\"\xff\xfe\"}", auth, 400, "UTF-8"},
		{"duplicate key", "POST", "/v1/events", "application/json", `{"type":"a","type":"b","data":1}`, auth, 400, "type: given twice"},
		{"deep nesting", "POST", "/v1/events", "application/json", `{"type":"t","data":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, auth, 400, "nested deeper"},
		{"very deep nesting", "POST", "/v1/events", "application/json", `{"type":"t","data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, auth, 413, "max_event_bytes"},
		{"trailing data", "POST", "/v1/events", "application/json", `{"type":"t","data":1} {"type":"t"}`, auth, 400, "trailing"},
		{"array body", "POST", "/v1/events", "application/json", `[{"type":"t","data":1}]`, auth, 400, "JSON object"},
		{"endpoints not strings", "POST", "/v1/events", "application/json", `{"type":"t","data":1,"endpoints":[1]}`, auth, 400, "endpoints"},
	}
	for _, c := range cases {
		call := do
		if c.path == "/v1/nope" {
			call = doUnlisted
		}
		status, out, _ := call(t, c.method, "http://"+d.IngestAddr()+c.path, c.ct, c.body, c.headers...)
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%v)", c.name, status, c.status, out)
			continue
		}
		e, _ := out["error"].(map[string]any)
		if e == nil || e["code"] == "" || !strings.Contains(e["message"].(string), c.mention) {
			t.Errorf("%s: error body %v should mention %q", c.name, out, c.mention)
		}
	}
	// 10 MB: past the server's body limit fasthttp answers 413 and drops
	// the connection, so the client may see the reset before the answer.
	req, _ := http.NewRequest("POST", "http://"+d.IngestAddr()+"/v1/events", strings.NewReader(`{"id":"tenmb","type":"t","data":"`+strings.Repeat("x", 10<<20)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer ingest-token")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("10 MB body: %d", resp.StatusCode)
		}
	}
	if status, _ := d.Admin("GET", "/v1/events/tenmb", ""); status != 404 {
		t.Fatal("10 MB event was stored")
	}
	// A client that asks first (Expect: 100-continue: curl for a body
	// over 1 MiB, the Go client over 64 KiB) gets the same JSON 413
	// before it sends the body (it had an empty body).
	conn, err := net.Dial("tcp", d.IngestAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ingest-token\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", 10<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var tooLarge map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&tooLarge); err != nil || resp.StatusCode != 413 || !strings.Contains(errMessage(tooLarge), "max_event_bytes") {
		t.Fatalf("10 MB body announced with Expect: %d %v %v", resp.StatusCode, tooLarge, err)
	}

	// Nothing above was stored.
	if _, list := d.Admin("GET", "/v1/undeliverable", ""); len(list["items"].([]any)) != 0 {
		t.Fatal("rejected requests changed state")
	}

	// Storage failure: 503 with Retry-After, nothing stored, recovers.
	diskFull.Store(true)
	status, out, h := do(t, "POST", "http://"+d.IngestAddr()+"/v1/events", "application/json", `{"id":"df","type":"t","data":1}`, auth...)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("disk full: %d %v", status, out)
	}
	diskFull.Store(false)
	if status, _ := d.Admin("GET", "/v1/events/df", ""); status != 404 {
		t.Fatalf("failed commit is visible: %d", status)
	}

	// max_pending = 3, reached, not passed: events with two deliveries
	// each are taken while fewer than 3 are pending (2, then 4), and the
	// third is refused.
	for i := range 2 {
		if status, out, _ := do(t, "POST", "http://"+d.IngestAddr()+"/v1/events", "application/json", `{"type":"t","data":1}`, auth...); status != 202 {
			t.Fatalf("event %d: %d %v", i, status, out)
		}
	}
	status, out, h = do(t, "POST", "http://"+d.IngestAddr()+"/v1/events", "application/json", `{"type":"t","data":1}`, auth...)
	if status != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("max_pending: %d %v", status, out)
	}

}

// While in-flight attempts finish during shutdown, ingest answers 503.
func TestShutdownRefusesIngest(t *testing.T) {
	rcv := NewReceiver(t)
	release := make(chan struct{})
	rcv.Handle("/a", func(int, *http.Request, http.ResponseWriter) { <-release })
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, ""))
	d.Event(`{"type":"t","data":{}}`)
	rcv.Wait(t, "/a", 1)
	closed := make(chan error)
	go func() { closed <- d.Close() }()
	eventually(t, "503 while shutting down", func() bool {
		status, out, h := d.Post("/v1/events", "application/json", `{"type":"t","data":{}}`)
		return status == 503 && h.Get("Retry-After") != "" && out["error"].(map[string]any)["code"] == "shutting_down"
	})
	if status, _, _ := do(t, "GET", "http://"+d.IngestAddr()+"/readyz", "", ""); status != 503 {
		t.Fatalf("readyz %d while shutting down", status)
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
