package tests

// Regression tests for what black-box hostile testing found (issue 11):
// each failed on the daemon before its fix.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/config"
	"hookd/daemon"
)

// bodyLog collects what a receiver got, by webhook-id, first attempt only.
type bodyLog struct {
	mu    sync.Mutex
	first map[string][]byte
}

func newBodyLog(t *testing.T) (*bodyLog, *Receiver) {
	return &bodyLog{first: map[string][]byte{}}, NewReceiver(t)
}

// collect reads the receiver's requests into first bodies by webhook-id.
func (bl *bodyLog) collect(rcv *Receiver) map[string][]byte {
	bl.mu.Lock()
	defer bl.mu.Unlock()
	for _, r := range rcv.Requests("/r") {
		id := r.Header.Get("webhook-id")
		if _, ok := bl.first[id]; !ok {
			bl.first[id] = r.Body
		}
	}
	return bl.first
}

// sent is what an emitter posted, to compare with what arrived.
type sent struct {
	id      string
	payload bool
	raw     string // the payload, or the data
}

// checkBodies waits for every sent event and compares its first delivered
// body byte for byte: a payload is the body; data ends the envelope.
func checkBodies(t *testing.T, bl *bodyLog, rcv *Receiver, all []sent) {
	t.Helper()
	eventually(t, "every event delivered", func() bool { return len(bl.collect(rcv)) >= len(all) })
	got := bl.collect(rcv)
	bad := 0
	for _, s := range all {
		body := got[s.id]
		ok := string(body) == s.raw
		if !s.payload {
			ok = bytes.HasPrefix(body, []byte(`{"id":"`+s.id+`"`)) && bytes.HasSuffix(body, []byte(`"data":`+s.raw+`}`))
		}
		if !ok {
			bad++
			if bad <= 5 {
				t.Errorf("event %s (payload %v): sent %s, first attempt carried %q", s.id, s.payload, s.raw, body)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d first attempts carried other bytes", bad, len(all))
	}
}

// Item 1: a payload's first attempt must carry its own bytes, not those of
// the next request on the same keep-alive connection.
func TestPayloadBytesOwnedAcrossKeepAlive(t *testing.T) {
	bl, rcv := newBodyLog(t)
	d := MustOpenDaemon(t, endpoint("r", rcv.URL+"/r", `["*"]`, standardSigning(testSecret)))
	conn, err := net.Dial("tcp", d.IngestAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	post := func(path, body string) map[string]any {
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v %v", path, body, resp.StatusCode, out, err)
		}
		return out
	}
	var all []sent
	for i := range 10 {
		p := fmt.Sprintf(`"P%d-AAAA"`, i)
		out := post("/v1/events", `{"type":"t.p","payload":`+p+`}`)
		all = append(all, sent{out["id"].(string), true, p})
		data := `"` + strings.Repeat("Z", 8+i) + `"`
		out = post("/v1/events", `{"type":"t.d","data":`+data+`}`)
		all = append(all, sent{out["id"].(string), false, data})
		// A batch after a payload, and payloads inside a batch.
		bp := fmt.Sprintf(`{"k":"B%d"}`, i)
		out = post("/v1/events/batch", `[{"type":"t.p","payload":`+bp+`},{"type":"t.d","data":[`+fmt.Sprint(i)+`]}]`)
		res := out["results"].([]any)
		all = append(all, sent{res[0].(map[string]any)["id"].(string), true, bp},
			sent{res[1].(map[string]any)["id"].(string), false, fmt.Sprintf("[%d]", i)})
	}
	checkBodies(t, bl, rcv, all)
}

// Item 1, as a property: random interleavings of payload, data and batch
// requests from several emitters over few shared connections; every
// delivered body equals what its emitter sent.
func TestPayloadBytesPropertyRandomInterleavings(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	bl, rcv := newBodyLog(t)
	d := MustOpenDaemon(t, endpoint("r", rcv.URL+"/r", `["*"]`, standardSigning(testSecret)))
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 2, MaxIdleConnsPerHost: 2}}
	randJSON := func(r *rand.Rand) string {
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf(`"%s"`, strings.Repeat(string(rune('a'+r.IntN(26))), 1+r.IntN(300)))
		case 1:
			return fmt.Sprint(r.Int64())
		case 2:
			return fmt.Sprintf(`{"n":%d,"s":"%s"}`, r.IntN(1000), strings.Repeat("q", r.IntN(50)))
		}
		return fmt.Sprintf(`[%d,true,null]`, r.IntN(9))
	}
	type job struct {
		path, body string
		items      []sent // ids filled from the answer
	}
	var jobs []job
	for range 120 {
		n := 1
		batch := rng.IntN(3) == 0
		if batch {
			n = 1 + rng.IntN(5)
		}
		var parts []string
		var items []sent
		for range n {
			raw, payload := randJSON(rng), rng.IntN(2) == 0
			field := "data"
			if payload {
				field = "payload"
			}
			parts = append(parts, fmt.Sprintf(`{"type":"t","%s":%s}`, field, raw))
			items = append(items, sent{payload: payload, raw: raw})
		}
		if batch {
			jobs = append(jobs, job{"/v1/events/batch", "[" + strings.Join(parts, ",") + "]", items})
		} else {
			jobs = append(jobs, job{"/v1/events", parts[0], items})
		}
	}
	var (
		mu  sync.Mutex
		all []sent
		wg  sync.WaitGroup
	)
	next := atomic.Int64{}
	for range 4 { // four emitters over two connections
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				j := jobs[i]
				resp, err := client.Post("http://"+d.IngestAddr()+j.path, "application/json", strings.NewReader(j.body))
				if err != nil {
					t.Error(err)
					return
				}
				var out struct {
					ID      string `json:"id"`
					Results []struct {
						ID string `json:"id"`
					} `json:"results"`
				}
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if j.path == "/v1/events" {
					j.items[0].id = out.ID
				} else {
					for k := range j.items {
						j.items[k].id = out.Results[k].ID
					}
				}
				mu.Lock()
				all = append(all, j.items...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	checkBodies(t, bl, rcv, all)
}

// Item 2: malformed requests carrying a token leave no trace of it (or of
// the body) in the log or the answer, and get the JSON error.
func TestMalformedRequestsLeakNothing(t *testing.T) {
	const token, marker = "tok-SECRET-5f1d", "BODY-MARKER-77"
	d := MustOpenDaemonExtra(t, Extra{Ingest: `token = "` + token + `"`, Admin: `token = "` + token + `"`}, "", nil)
	auth := "Authorization: Bearer " + token + "\r\n"
	body := `{"type":"t","data":"` + marker + `"}`
	reqs := map[string]string{
		"duplicate Content-Length": "POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"bad chunk size":           "POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz" + marker + "\r\n" + body + "\r\n0\r\n\r\n",
		"NUL in a header":          "POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth + "X-Bad: a\x00b" + marker + "\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"no Host":                  "POST /v1/events HTTP/1.1\r\n" + auth + "Content-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"garbage request line":     "P\x01ST /v1/events" + marker + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
	}
	for _, addr := range []string{d.IngestAddr(), d.AdminAddr()} {
		for name, raw := range reqs {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, raw)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				conn.Close()
				t.Errorf("%s: %v", name, err)
				continue
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			conn.Close()
			if strings.Contains(string(got), token) || strings.Contains(string(got), marker) {
				t.Errorf("%s: the answer repeats the request: %s", name, got)
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if resp.StatusCode >= 400 && (json.Unmarshal(got, &e) != nil || e.Error.Code == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")) {
				t.Errorf("%s: %d %q is not the JSON error", name, resp.StatusCode, got)
			}
		}
	}
	d.Close()
	logs := d.logs.String()
	if strings.Contains(logs, token) || strings.Contains(logs, marker) {
		t.Fatalf("the log holds the token or the body:\n%s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("a log line is not JSON: %q", line)
		}
	}
}

// Item 3: ingest holds at most max_inflight_bytes of requests at once; one
// more gets 503 busy with Retry-After and changes nothing.
func TestIngestByteBudget(t *testing.T) {
	rcv := NewReceiver(t)
	var armed atomic.Bool
	release := make(chan struct{})
	d := MustOpenDaemonExtra(t, Extra{Ingest: `max_inflight_bytes = "64KiB"`}, endpoint("a", rcv.URL+"/a", `["*"]`, ""),
		func(d *daemon.Daemon) {
			d.StoreHooks.BeforeCommit = func() error {
				if armed.CompareAndSwap(true, false) {
					<-release // the first log sync stalls, holding its request's bytes
				}
				return nil
			}
		})
	batch := func(tag string) string {
		var items []string
		for i := range 4 {
			items = append(items, fmt.Sprintf(`{"id":"%s-%d","type":"t","data":"%s"}`, tag, i, strings.Repeat("x", 10_000)))
		}
		return "[" + strings.Join(items, ",") + "]" // ~40 KB
	}
	armed.Store(true)
	first := make(chan int, 1)
	go func() {
		status, _, _ := do(t, "POST", "http://"+d.IngestAddr()+"/v1/events/batch", "application/json", batch("first"))
		first <- status
	}()
	eventually(t, "the first batch to hold the budget", func() bool { return !armed.Load() })
	status, out, hdr := d.Post("/v1/events/batch", "application/json", batch("second"))
	if status != 503 || hdr.Get("Retry-After") == "" || out["error"].(map[string]any)["code"] != "busy" {
		t.Fatalf("over the budget: %d %v %v", status, out, hdr)
	}
	// A small event still fits next to the first batch (it then waits for
	// the stalled log like any other).
	small := make(chan int, 1)
	go func() {
		status, _, _ := do(t, "POST", "http://"+d.IngestAddr()+"/v1/events", "application/json", `{"id":"small","type":"t","data":1}`)
		small <- status
	}()
	close(release)
	if s := <-first; s != 200 {
		t.Fatalf("first batch: %d", s)
	}
	if s := <-small; s != 202 {
		t.Fatalf("small event under the budget: %d", s)
	}
	if status, _ := d.Admin("GET", "/v1/events/second-0", ""); status != 404 {
		t.Fatal("a refused batch was stored")
	}
	if status, _, _ := d.Post("/v1/events/batch", "application/json", batch("third")); status != 200 {
		t.Fatalf("under the budget again: %d", status)
	}
	rcv.Wait(t, "/a", 9)
}

// Item 4: an empty or blank secret from any source is a config error
// naming the key, never an unsigned endpoint.
func TestEmptySecretIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.secret")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	t.Setenv("HOOKD_BLANK_SECRET", "  ")
	for name, signing := range map[string]string{
		"secret_file": fmt.Sprintf("secret_file = %q", empty),
		"secret":      `secret = ""`,
		"secret_env":  `secret_env = "HOOKD_BLANK_SECRET"`,
	} {
		path := filepath.Join(dir, name+".toml")
		writeConfig(t, path, dir, Extra{}, endpoint("a", "http://127.0.0.1:9/a", `["*"]`, "  [endpoints.signing]\n  scheme = \"hmac-sha256\"\n  "+signing))
		_, err := config.Load(path)
		if err == nil || !strings.Contains(err.Error(), "endpoints[0].signing."+name) || !matchRe(`\.toml:\d+:`, err.Error()) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Item 5: ids follow SPEC §3's grammar, so every accepted id can be looked
// up; anything else is a 400 naming the field.
func TestIDGrammar(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, ""))
	for _, id := range []string{"", "x/y", ".", "..", "../../etc/passwd", "a b", "é", strings.Repeat("x", 129), "a%2Fb", "a?b"} {
		body, _ := json.Marshal(map[string]any{"id": id, "type": "t", "data": 1})
		status, out, _ := d.Post("/v1/events", "application/json", string(body))
		if status != 400 || !strings.Contains(fmt.Sprint(out), "id:") {
			t.Errorf("id %q: %d %v", id, status, out)
		}
		status, out, _ = d.Post("/v1/events", "application/json", `{"type":"t","data":1}`, "Idempotency-Key", id)
		if id != "é" && (status != 400 || !strings.Contains(fmt.Sprint(out), "Idempotency-Key")) {
			t.Errorf("Idempotency-Key %q: %d %v", id, status, out)
		}
	}
	// Two keys: a proxy in front may dedup on the other one (the first was taken).
	req, _ := http.NewRequest("POST", "http://"+d.IngestAddr()+"/v1/events", strings.NewReader(`{"type":"t","data":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("Idempotency-Key", "k2")
	req.Header.Add("Idempotency-Key", "k3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("two Idempotency-Keys: %d", resp.StatusCode)
	}
	for _, id := range []string{"evt_1", "a.b:c-d_e", "...", "x.", strings.Repeat("y", 128)} {
		got := d.Event(fmt.Sprintf(`{"id":%q,"type":"t","data":1}`, id))
		if status, ev := d.Admin("GET", "/v1/events/"+got, ""); status != 200 || ev["id"] != id {
			t.Errorf("id %q cannot be looked up: %d %v", id, status, ev)
		}
	}
}

// Item 6: past max_connections a client gets the JSON 503 busy with
// Retry-After, and connections that never send a request give their slot
// back after idle_timeout, not read_timeout.
func TestConnectionCap(t *testing.T) {
	d := MustOpenDaemonExtra(t, Extra{Ingest: "max_connections = 2\nread_timeout = \"60s\"\nidle_timeout = \"500ms\""}, "", nil)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", d.IngestAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Two slow clients, each in the middle of its headers, hold both slots.
	var slow []net.Conn
	for range 2 {
		c := dial()
		fmt.Fprint(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\n")
		slow = append(slow, c)
	}
	eventually(t, "a third connection refused", func() bool {
		c := dial()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 {
			return false
		}
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Code != "busy" || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("refusal is not the JSON busy error: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		return true
	})
	for _, c := range slow {
		c.Close()
	}
	eventually(t, "the slots to free up", func() bool {
		// A refused connection may also be cut before an answer: retry.
		resp, err := http.Post("http://"+d.IngestAddr()+"/v1/events", "application/json", strings.NewReader(`{"type":"t","data":1}`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 202
	})
	// Connections that send nothing are closed after idle_timeout; the
	// read deadline here is a third of read_timeout.
	for range 2 {
		c := dial()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if got, err := io.ReadAll(c); err != nil || !strings.Contains(string(got), "408") {
			t.Fatalf("a connection that sent nothing was kept: %v (got %q)", err, got)
		}
	}
}

// Item 7: ingest and admin on one address is refused by validation,
// naming both keys.
func TestSameListenAddressRefused(t *testing.T) {
	for _, pair := range [][2]string{{"127.0.0.1:8600", "127.0.0.1:8600"}, {"0.0.0.0:8600", "127.0.0.1:8600"}, {"localhost:8600", "127.0.0.1:8600"}, {"unix:/tmp/h.sock", "unix:/tmp/h.sock"}} {
		cfg := fmt.Sprintf("[ingest]\nlisten = %q\n[admin]\nlisten = %q\n", pair[0], pair[1])
		_, err := config.Parse("t.toml", []byte(cfg))
		if err == nil || !strings.Contains(err.Error(), "admin.listen") || !strings.Contains(err.Error(), "ingest.listen") {
			t.Errorf("%v: %v", pair, err)
		}
	}
	if _, err := config.Parse("t.toml", []byte("[ingest]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n")); err != nil {
		t.Errorf("two ephemeral ports: %v", err)
	}
}

// Item 8: unspecified addresses reach loopback, so denying loopback
// denies them too, for queued deliveries and test sends.
func TestDenyNetworksUnspecified(t *testing.T) {
	rcv := NewReceiver(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rcv.URL, "http://"))
	d := MustOpenDaemonExtra(t, Extra{Delivery: `deny_networks = ["127.0.0.0/8", "::1/128"]`},
		endpoint("v4", "http://0.0.0.0:"+port+"/r", `["*"]`, `schedule = []`)+
			endpoint("v6", "http://[::]:"+port+"/r", `["*"]`, `schedule = []`), nil)
	id := d.Event(`{"type":"t","data":1}`)
	for _, ep := range []string{"v4", "v6"} {
		dl := d.waitState(id, ep, "undeliverable")
		if !strings.Contains(fmt.Sprint(dl), "deny_networks") {
			t.Errorf("%s: %v", ep, dl)
		}
		status, out := d.Admin("POST", "/v1/endpoints/"+ep+"/test", "")
		if status != 200 || out["ok"] != false || !strings.Contains(fmt.Sprint(out["attempt"]), "deny_networks") {
			t.Errorf("%s test: %d %v", ep, status, out)
		}
	}
	if n := len(rcv.Requests("")); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
}

// Item 9: an empty endpoints list is refused, never a fan-out to all.
func TestEmptyEndpointsListRefused(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, ""))
	for _, body := range []string{`{"id":"e1","type":"t","data":1,"endpoints":[]}`, `{"id":"e1","type":"t","data":1,"endpoints":null}`} {
		status, out, _ := d.Post("/v1/events", "application/json", body)
		if status != 400 || !strings.Contains(fmt.Sprint(out), "endpoints") {
			t.Errorf("%s: %d %v", body, status, out)
		}
	}
	status, out, _ := d.Post("/v1/events/batch", "application/json", `[{"id":"e2","type":"t","data":1,"endpoints":[]}]`)
	if status != 200 || out["results"].([]any)[0].(map[string]any)["status"].(float64) != 400 {
		t.Errorf("batch: %d %v", status, out)
	}
	for _, id := range []string{"e1", "e2"} {
		if status, _ := d.Admin("GET", "/v1/events/"+id, ""); status != 404 {
			t.Errorf("%s was stored", id)
		}
	}
}

// Item 10: /readyz says not ready while ingest cannot write, and ready
// again once it can, without an event having to go through first.
func TestReadyzReflectsWritability(t *testing.T) {
	var broken atomic.Bool
	d := MustOpenDaemonExtra(t, Extra{}, "", func(d *daemon.Daemon) {
		d.StoreHooks.BeforeCommit = func() error {
			if broken.Load() {
				return errors.New("read-only file system")
			}
			return nil
		}
	})
	ready := func() int {
		status, _, _ := do(t, "GET", "http://"+d.IngestAddr()+"/readyz", "", "")
		return status
	}
	if s := ready(); s != 200 {
		t.Fatalf("readyz %d", s)
	}
	broken.Store(true)
	if status, _, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":1}`); status != 503 {
		t.Fatalf("ingest on a broken log: %d", status)
	}
	if s := ready(); s != 503 {
		t.Fatalf("readyz while ingest fails: %d", s)
	}
	broken.Store(false)
	if s := ready(); s != 200 {
		t.Fatalf("readyz after recovery: %d", s)
	}
	d.Event(`{"type":"t","data":1}`)
}

// Also found: a bulk redeliver for an unknown endpoint is a 404 like the
// single-event redeliver, and duplicate keys inside data are refused.
func TestUnknownEndpointRedeliverAndDuplicateKeys(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, ""))
	id := d.Event(`{"type":"t","data":1}`)
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"nope"}`); status != 404 || !strings.Contains(fmt.Sprint(out), "nope") {
		t.Errorf("bulk redeliver to an unknown endpoint: %d %v", status, out)
	}
	if status, out := d.Admin("POST", "/v1/events/"+id+"/redeliver", `{"endpoint":"nope"}`); status != 404 || !strings.Contains(fmt.Sprint(out), "nope") {
		t.Errorf("redeliver to an unknown endpoint: %d %v", status, out)
	}
	for _, body := range []string{
		`{"type":"t","data":{"a":1,"a":2}}`,
		`{"type":"t","data":{"x":[{"k":1,"j":2,"k":3}]}}`,
		`{"type":"t","payload":{"a":1,"\u0061":2}}`,
	} {
		status, out, _ := d.Post("/v1/events", "application/json", body)
		if status != 400 || !strings.Contains(fmt.Sprint(out), "duplicate key") {
			t.Errorf("%s: %d %v", body, status, out)
		}
	}
	// Equal keys in different objects are fine.
	d.Event(`{"type":"t","data":{"a":{"a":1},"b":[{"a":1},{"a":2}]}}`)
}

// A first request that trickles in for longer than idle_timeout, but within
// read_timeout, is answered: idle_timeout is for a connection that sends
// nothing (it was cut off at idle_timeout: found by black-box testing).
func TestSlowFirstRequestGetsReadTimeout(t *testing.T) {
	d := MustOpenDaemonExtra(t, Extra{Ingest: "read_timeout = \"20s\"\nidle_timeout = \"300ms\""}, "", nil)
	c, err := net.Dial("tcp", d.IngestAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"type":"t","data":"` + strings.Repeat("x", 100) + `"}`
	fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	for i := 0; i < len(body); i += 10 { // ~1.2 s, four idle_timeouts
		time.Sleep(100 * time.Millisecond)
		if _, err := c.Write([]byte(body[i:min(i+10, len(body))])); err != nil {
			t.Fatalf("cut off after %d bytes: %v", i, err)
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// An escaped "/" or ".." in a name or id is part of that one segment: it
// never reaches another route. (fasthttp's decoded path resolved
// "..%2Ftenants%2Fvictim" to /v1/tenants/victim, so deleting an endpoint
// so named deleted a tenant, and an event id read an endpoint's secret.)
func TestEscapedSegmentsStayArguments(t *testing.T) {
	d, _ := portalDaemon(t, Extra{})
	for _, c := range []struct{ method, path string }{
		{"DELETE", "/v1/endpoints/..%2Ftenants%2Fa"},
		{"GET", "/v1/events/..%2Fendpoints%2Fa1%2Fsecret"},
		{"POST", "/v1/endpoints/x%2F..%2F..%2Ftenants%2Fa%2Fportal"},
		{"DELETE", "/v1/tenants/..%2Fendpoints%2Fb1"},
		{"GET", "/v1/endpoints/a1%2F..%2Fb1"},
	} {
		status, out := d.Admin(c.method, c.path, "")
		if status != 404 && status != 405 || strings.Contains(fmt.Sprint(out), "whsec_") || out["url"] != nil {
			t.Errorf("%s %s: %d %v", c.method, c.path, status, out)
		}
	}
	for _, name := range []string{"a1", "b1"} {
		if status, _ := d.Admin("GET", "/v1/endpoints/"+name, ""); status != 200 {
			t.Errorf("%s after the attempts: %d", name, status)
		}
	}
	// Repeated slashes and dot segments as sent are cleaned up as before
	// (an emitter's base URL ending in "/"), encoded ones are not.
	// (Plain requests: the harness checks answers against api/openapi.yaml
	// by the path as written.)
	send := func(method, url, body string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for path, want := range map[string]int{"//v1/endpoints/a1": 200, "/v1/./endpoints//a1": 200, "/v1/x/../endpoints/a1": 200, "/v1/endpoints/%2E%2E": 404} {
		if status := send("GET", "http://"+d.AdminAddr()+path, ""); status != want {
			t.Errorf("GET %s: %d, want %d", path, status, want)
		}
	}
	if status := send("POST", "http://"+d.IngestAddr()+"//v1/events", `{"type":"t","data":1}`); status != 202 {
		t.Errorf("POST //v1/events: %d", status)
	}
	// The portal matches its routes the same way.
	a := login(t, d, "a", nil)
	if status, out := a.call("GET", "/api/endpoints/a1%2F..%2Fa1", ""); status != 404 {
		t.Errorf("portal: %d %v", status, out)
	}
	if status, out := a.call("GET", "/api/endpoints/a%31", ""); status != 200 || out["name"] != "a1" {
		t.Errorf("an escaped ordinary character: %d %v", status, out)
	}
}
