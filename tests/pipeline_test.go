package tests

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd/config"
	"hookd/daemon"
)

// verifyStandard checks a request the way a Standard Webhooks receiver
// does, independently of hookd's signer: one signature, a fresh timestamp.
func verifyStandard(t *testing.T, r Request, secret string) {
	t.Helper()
	if n := verifyAmong(t, r, secret); n != 1 {
		t.Fatalf("%d signatures, want 1", n)
	}
	ts := r.Header.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Fatalf("timestamp %q", ts)
	}
}

// verifyAmong checks that one of a request's v1 signatures verifies with
// secret, and returns how many it carried (more than one while a rotated
// secret still signs).
func verifyAmong(t *testing.T, r Request, secret string) int {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("secret: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	sigs := strings.Fields(r.Header.Get("webhook-signature"))
	for _, s := range sigs {
		if s == want {
			return len(sigs)
		}
	}
	t.Fatalf("no signature verifies with the secret: %v", sigs)
	return 0
}

func matchRe(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func endpoint(name, url, events, extra string) string {
	return fmt.Sprintf("\n[[endpoints]]\nname = %q\nurl = %q\nevents = %s\n%s\n", name, url, events, extra)
}

func standardSigning(secret string) string {
	return fmt.Sprintf("  [endpoints.signing]\n  secret = %q\n", secret)
}

func TestFanOutByPatternAndSignature(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t,
		endpoint("crm", rcv.URL+"/crm", `["conversation.*"]`, standardSigning(testSecret))+
			endpoint("all", rcv.URL+"/all", `["*"]`, `headers = { "X-Event" = "{type}", "X-Event-Id" = "{id}" }`)+
			endpoint("forms", rcv.URL+"/forms", `["form.submitted"]`, ""))
	status, out, _ := d.Post("/v1/events", "application/json", `{"type":"conversation.ended","data":{"transcript":["hi"]}}`)
	if status != 202 || out["deliveries"] != 2.0 || out["duplicate"] != false {
		t.Fatalf("ingest: %d %v", status, out)
	}
	id := out["id"].(string)
	if !strings.HasPrefix(id, "evt_") {
		t.Fatalf("generated id %q", id)
	}
	crm := rcv.Wait(t, "/crm", 1)[0]
	all := rcv.Wait(t, "/all", 1)[0]
	verifyStandard(t, crm, testSecret)
	if crm.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(crm.Header.Get("User-Agent"), "hookd/") {
		t.Fatalf("headers %v", crm.Header)
	}
	if all.Header.Get("X-Event") != "conversation.ended" || all.Header.Get("X-Event-Id") != id || all.Header.Get("webhook-signature") != "" {
		t.Fatalf("static headers / unsigned endpoint: %v", all.Header)
	}
	var env map[string]any
	if err := json.Unmarshal(crm.Body, &env); err != nil {
		t.Fatal(err)
	}
	if env["id"] != id || env["type"] != "conversation.ended" || env["data"].(map[string]any)["transcript"] == nil {
		t.Fatalf("envelope %s", crm.Body)
	}
	if _, err := time.Parse(time.RFC3339, env["timestamp"].(string)); err != nil {
		t.Fatalf("timestamp %v", env["timestamp"])
	}
	d.waitState(id, "crm", "delivered")
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.Requests("/forms")); n != 0 {
		t.Fatalf("forms got %d requests", n)
	}
}

func TestEnvelopeForms(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t,
		endpoint("seny", rcv.URL+"/seny", `["*"]`, `envelope = { id = "id", type = "event", time = "created_at", time_format = "rfc3339", static = { widget_id = "wgt_1" } }`)+
			endpoint("sensei", rcv.URL+"/sensei", `["*"]`, `envelope = { id = "", type = "event", time = "timestamp", time_format = "rfc3339ms" }`)+
			endpoint("unix", rcv.URL+"/unix", `["*"]`, `envelope = { time = "ts", time_format = "unix", data = "payload" }`))
	d.Event(`{"id":"evt_1","type":"lead.created","data":{"phone":null}}`)
	want := map[string]string{
		"/seny":   `^\{"id":"evt_1","event":"lead.created","widget_id":"wgt_1","created_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ","data":\{"phone":null\}\}$`,
		"/sensei": `^\{"event":"lead.created","timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","data":\{"phone":null\}\}$`,
		"/unix":   `^\{"id":"evt_1","type":"lead.created","ts":\d{10},"payload":\{"phone":null\}\}$`,
	}
	for path, re := range want {
		body := string(rcv.Wait(t, path, 1)[0].Body)
		if !matchRe(re, body) {
			t.Errorf("%s: %s does not match %s", path, body, re)
		}
	}
}

func TestPayloadPassthrough(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("hume", rcv.URL+"/hume", `["*"]`, standardSigning(testSecret)))
	payload := "{ \"event_name\" : \"chat_ended\",\n  \"chat_id\": \"c1\", \"n\": 1.50 }"
	d.Event(`{"type":"chat_ended","payload":` + payload + `}`)
	got := rcv.Wait(t, "/hume", 1)[0]
	if string(got.Body) != payload {
		t.Fatalf("payload changed:\n got %q\nwant %q", got.Body, payload)
	}
	verifyStandard(t, got, testSecret)
}

func TestDedup(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, ""))
	d.Event(`{"id":"same","type":"t","data":1}`)
	status, out, _ := d.Post("/v1/events", "application/json", `{"id":"same","type":"t","data":2}`)
	if status != 200 || out["duplicate"] != true || out["id"] != "same" {
		t.Fatalf("duplicate id: %d %v", status, out)
	}
	s1, o1, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":1}`, "Idempotency-Key", "k-1")
	s2, o2, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":1}`, "Idempotency-Key", "k-1")
	if s1 != 202 || s2 != 200 || o2["duplicate"] != true || o1["id"] != "k-1" || o2["id"] != "k-1" {
		t.Fatalf("idempotency key: %d %v / %d %v", s1, o1, s2, o2)
	}
	// The key is treated as the id, both ways.
	if status, out, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":3}`, "Idempotency-Key", "same"); status != 200 || out["id"] != "same" {
		t.Fatalf("key naming a stored event's id: %d %v", status, out)
	}
	if status, out, _ := d.Post("/v1/events", "application/json", `{"id":"k-1","type":"t","data":3}`); status != 200 || out["duplicate"] != true {
		t.Fatalf("id naming a stored key: %d %v", status, out)
	}
	// With an id in the body, the key is a key of its own.
	s3, o3, _ := d.Post("/v1/events", "application/json", `{"id":"own-1","type":"t","data":1}`, "Idempotency-Key", "k-2")
	s4, o4, _ := d.Post("/v1/events", "application/json", `{"id":"own-2","type":"t","data":1}`, "Idempotency-Key", "k-2")
	if s3 != 202 || s4 != 200 || o4["id"] != "own-1" {
		t.Fatalf("key beside an id: %d %v / %d %v", s3, o3, s4, o4)
	}
	rcv.Wait(t, "/a", 3)
	time.Sleep(200 * time.Millisecond)
	if n := len(rcv.Requests("/a")); n != 3 {
		t.Fatalf("receiver got %d requests, want 3", n)
	}
}

func TestRetryThenSuccessKeepsIDFreshTimestamp(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 2)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["1100ms", "100ms"]`+"\n"+standardSigning(testSecret)))
	id := d.Event(`{"type":"t","data":{}}`)
	reqs := rcv.Wait(t, "/a", 3)
	for _, r := range reqs {
		verifyStandard(t, r, testSecret)
		if r.Header.Get("webhook-id") != id || string(r.Body) != string(reqs[0].Body) {
			t.Fatalf("id or body changed between attempts")
		}
	}
	if reqs[0].Header.Get("webhook-timestamp") == reqs[1].Header.Get("webhook-timestamp") {
		t.Fatal("timestamp not refreshed on retry")
	}
	dl := d.waitState(id, "a", "delivered")
	hist := dl["history"].([]any)
	if len(hist) != 3 || hist[0].(map[string]any)["status"] != 500.0 || hist[2].(map[string]any)["status"] != 200.0 {
		t.Fatalf("history %v", hist)
	}
}

func TestExhaustedUndeliverableRedeliver(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 503, 3)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["50ms", "50ms"]`))
	id := d.Event(`{"type":"t","data":{}}`)
	dl := d.waitState(id, "a", "undeliverable")
	if !strings.Contains(dl["reason"].(string), "exhausted after 3 attempts") {
		t.Fatalf("reason %v", dl["reason"])
	}
	status, list := d.Admin("GET", "/v1/undeliverable?endpoint=a", "")
	items := list["items"].([]any)
	if status != 200 || len(items) != 1 || items[0].(map[string]any)["event_id"] != id {
		t.Fatalf("undeliverable list %d %v", status, list)
	}
	last := items[0].(map[string]any)["last_attempt"].(map[string]any)
	if last["status"] != 503.0 || last["n"] != 3.0 {
		t.Fatalf("last attempt %v", last)
	}
	if status, out := d.Admin("POST", "/v1/events/"+id+"/redeliver", `{}`); status != 202 {
		t.Fatalf("redeliver %d %v", status, out)
	}
	d.waitState(id, "a", "delivered")
	if _, list := d.Admin("GET", "/v1/undeliverable", ""); len(list["items"].([]any)) != 0 {
		t.Fatalf("still listed: %v", list)
	}
}

func TestStopOn4xx(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 404, 100)
	rcv.Status("/b", 408, 1)
	d := MustOpenDaemon(t,
		endpoint("a", rcv.URL+"/a", `["*"]`, "schedule = [\"50ms\"]\nstop_on_4xx = true")+
			endpoint("b", rcv.URL+"/b", `["*"]`, "schedule = [\"50ms\"]\nstop_on_4xx = true"))
	id := d.Event(`{"type":"t","data":{}}`)
	dl := d.waitState(id, "a", "undeliverable")
	if !strings.Contains(dl["reason"].(string), "stop_on_4xx") || dl["attempts"] != 1.0 {
		t.Fatalf("404: %v", dl)
	}
	d.waitState(id, "b", "delivered") // 408 is retried
}

func TestRetryAfterHonoured(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Handle("/a", func(n int, _ *http.Request, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		w.WriteHeader(200)
	})
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["10ms"]`))
	id := d.Event(`{"type":"t","data":{}}`)
	reqs := rcv.Wait(t, "/a", 2)
	if gap := reqs[1].At.Sub(reqs[0].At); gap < time.Second {
		t.Fatalf("retried after %v despite Retry-After: 1", gap)
	}
	d.waitState(id, "a", "delivered")
}

func TestTimeoutIsFailure(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Handle("/slow", func(n int, _ *http.Request, w http.ResponseWriter) {
		if n == 1 {
			time.Sleep(600 * time.Millisecond)
		}
		w.WriteHeader(200)
	})
	d := MustOpenDaemon(t, endpoint("slow", rcv.URL+"/slow", `["*"]`, "timeout = \"200ms\"\nschedule = [\"50ms\"]"))
	id := d.Event(`{"type":"t","data":{}}`)
	dl := d.waitState(id, "slow", "delivered")
	first := dl["history"].([]any)[0].(map[string]any)
	if first["status"] != 0.0 || !strings.Contains(first["error"].(string), "timeout") {
		t.Fatalf("first attempt %v", first)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Handle("/old", func(_ int, r *http.Request, w http.ResponseWriter) {
		http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
	})
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/old", `["*"]`, `schedule = []`))
	id := d.Event(`{"type":"t","data":{}}`)
	dl := d.waitState(id, "a", "undeliverable")
	if n := len(rcv.Requests("/new")); n != 0 {
		t.Fatalf("redirect followed %d times", n)
	}
	if dl["attempts"] != 1.0 || !strings.Contains(dl["reason"].(string), "HTTP 307") {
		t.Fatalf("delivery %v", dl)
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/gone", 410, 100)
	d := MustOpenDaemon(t, endpoint("gone", rcv.URL+"/gone", `["*"]`, `schedule = ["10s"]`))
	id := d.Event(`{"type":"t","data":{}}`)
	d.waitState(id, "gone", "undeliverable")
	eventually(t, "endpoint disabled", func() bool {
		_, out := d.Admin("GET", "/v1/endpoints", "")
		return out["items"].([]any)[0].(map[string]any)["state"] == "disabled"
	})
	// A disabled endpoint keeps its events: recorded as undeliverable, not sent.
	status, out, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":{}}`)
	if status != 202 || out["deliveries"] != 1.0 {
		t.Fatalf("event for a disabled endpoint: %v", out)
	}
	if dl := d.waitState(out["id"].(string), "gone", "undeliverable"); dl["reason"] != "endpoint disabled" {
		t.Fatalf("parked with %v", dl)
	}
	if n := len(rcv.Requests("/gone")); n != 1 {
		t.Fatalf("the disabled endpoint got %d requests", n)
	}
	if status, _ := d.Admin("POST", "/v1/endpoints/gone/enable", ""); status != 200 {
		t.Fatal("enable", status)
	}
}

func TestBatch(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, ""))
	status, out, _ := d.Post("/v1/events/batch", "application/json", `[{"type":"t","data":1},{"data":2},{"id":"x","type":"t","data":3},{"id":"x","type":"t","data":4}]`)
	if status != 200 {
		t.Fatalf("batch %d %v", status, out)
	}
	res := out["results"].([]any)
	want := []float64{202, 400, 202, 200}
	for i, w := range want {
		if got := res[i].(map[string]any)["status"]; got != w {
			t.Fatalf("item %d: %v", i, res[i])
		}
	}
	if msg := res[1].(map[string]any)["error"].(map[string]any)["message"]; !strings.Contains(msg.(string), "type") {
		t.Fatalf("error does not name the field: %v", msg)
	}
	rcv.Wait(t, "/a", 2)
}

// rate_limit holds an endpoint to its requests per second (after a burst
// of one second's worth), without holding up other endpoints.
func TestRateLimit(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("slow", rcv.URL+"/slow", `["*"]`, "rate_limit = 5")+endpoint("fast", rcv.URL+"/fast", `["*"]`, ""))
	for range 10 {
		d.Event(`{"type":"t","data":{}}`)
	}
	fast := rcv.Wait(t, "/fast", 10)
	slow := rcv.Wait(t, "/slow", 10)
	if span := slow[9].At.Sub(slow[0].At); span < 900*time.Millisecond {
		t.Fatalf("10 requests at 5/s (burst 5) took only %v", span)
	}
	if !fast[9].At.Before(slow[9].At) {
		t.Fatal("the rate-limited endpoint held up the other one")
	}
}

// The ingest listener also takes a unix socket (for emitters that prefer
// file permissions to a token).
func TestUnixSocketIngest(t *testing.T) {
	rcv := NewReceiver(t)
	sock := filepath.Join(t.TempDir(), "ingest.sock")
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, "")
	d := MustOpenDaemon(t, cfg)
	raw := readRaw(t, d.cfgPath)
	d.Close()
	writeRaw(t, d.cfgPath, strings.Replace(raw, `listen = "127.0.0.1:0"`, `listen = "unix:`+sock+`"`, 1))
	d = mustOpenFile(t, d.dir, d.cfgPath, Extra{}, nil)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Post("http://hookd/v1/events", "application/json", strings.NewReader(`{"type":"t","data":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rcv.Wait(t, "/a", 1)

	// A second hookd, on another database, does not take the socket (it
	// did, and removed it at its stop; black-box testing).
	other := filepath.Join(t.TempDir(), "other.toml")
	writeRaw(t, other, strings.Replace(strings.Replace(raw, `listen = "127.0.0.1:0"`, `listen = "unix:`+sock+`"`, 1), filepath.Join(d.dir, "hookd.db"), filepath.Join(filepath.Dir(other), "other.db"), 1))
	c, err := config.Load(other)
	if err != nil {
		t.Fatal(err)
	}
	second := daemon.New(c)
	if err := second.Open(); err == nil || !strings.Contains(err.Error(), "another process listens on it") {
		second.Close()
		t.Fatalf("a second daemon on the socket: %v", err)
	}
	if resp, err := hc.Post("http://hookd/v1/events", "application/json", strings.NewReader(`{"type":"t","data":{}}`)); err != nil || resp.StatusCode != 202 {
		t.Fatalf("the first daemon after the second's try: %v", err)
	}
}

// "endpoints" in an event restricts fan-out to those names.
func TestEndpointsRestriction(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, "")+endpoint("b", rcv.URL+"/b", `["*"]`, ""))
	status, out, _ := d.Post("/v1/events", "application/json", `{"type":"t","data":{},"endpoints":["b"]}`)
	if status != 202 || out["deliveries"] != 1.0 {
		t.Fatalf("%d %v", status, out)
	}
	d.waitState(out["id"].(string), "b", "delivered")
	if d.deliveryState(out["id"].(string), "a") != nil || len(rcv.Requests("/a")) != 0 {
		t.Fatal("delivered to an endpoint the event excluded")
	}
}

// A 410 parks the endpoint's other pending deliveries too, and enabling it
// again lets them be redelivered.
func TestGoneParksPending(t *testing.T) {
	rcv := NewReceiver(t)
	release := make(chan struct{})
	rcv.Handle("/gone", func(n int, _ *http.Request, w http.ResponseWriter) {
		if n == 1 {
			<-release // until the others are queued behind max_in_flight = 1
			w.WriteHeader(410)
			return
		}
		w.WriteHeader(200)
	})
	d := MustOpenDaemon(t, endpoint("gone", rcv.URL+"/gone", `["*"]`, "max_in_flight = 1\nschedule = [\"1h\"]"))
	ids := []string{d.Event(`{"type":"t","data":{}}`)}
	rcv.Wait(t, "/gone", 1)
	for range 4 {
		ids = append(ids, d.Event(`{"type":"t","data":{}}`))
	}
	close(release)
	for _, id := range ids {
		d.waitState(id, "gone", "undeliverable")
	}
	if n := len(rcv.Requests("/gone")); n != 1 {
		t.Fatalf("%d requests reached a gone endpoint", n)
	}
	d.Admin("POST", "/v1/endpoints/gone/enable", "")
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"gone"}`); status != 202 || out["redelivered"] != 5.0 {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	for _, id := range ids {
		d.waitState(id, "gone", "delivered")
	}
}

// A storm of 410s, one from each of many endpoints at once, disables each
// of them by hookd with its own reason and parks its delivery, while a
// healthy endpoint of the same events keeps receiving. (The disables no
// longer wait for each other's commits: TestStateChangesWaitOnlyForTheirEndpoint.)
func TestGoneStormDisablesEachEndpoint(t *testing.T) {
	const n = 40
	rcv := NewReceiver(t)
	cfg := endpoint("healthy", rcv.URL+"/ok", `["*"]`, "")
	for i := range n {
		path := fmt.Sprintf("/gone%d", i)
		rcv.Status(path, 410, 100)
		cfg += endpoint(fmt.Sprintf("gone%d", i), rcv.URL+path, `["*"]`, fmt.Sprintf(`tenant = "t%d"`, i))
	}
	d := MustOpenDaemonExtra(t, Extra{Tenants: "deny_networks = []"}, cfg, nil)
	ids := make([]string, n)
	for i := range n {
		ids[i] = d.Event(fmt.Sprintf(`{"type":"t","tenant":"t%d","data":%d}`, i, i))
	}
	for i, id := range ids {
		if dl := d.waitState(id, fmt.Sprintf("gone%d", i), "undeliverable"); !strings.Contains(fmt.Sprint(dl["reason"]), "410") {
			t.Fatalf("gone%d parked with %v", i, dl["reason"])
		}
	}
	for i := range n {
		_, ep := d.Admin("GET", fmt.Sprintf("/v1/endpoints/gone%d", i), "")
		if ep["state"] != "disabled" || ep["disabled_by"] != "hookd" || !strings.Contains(fmt.Sprint(ep["disabled_reason"]), "410") {
			t.Fatalf("gone%d: %v", i, ep)
		}
	}
	rcv.Wait(t, "/ok", n)
}

// A redeliver while an attempt is in flight is sent after it, even when
// that attempt succeeds: the resend was asked for once the first send had
// begun (black-box testing: the 2xx marked it delivered and the redeliver,
// answered 202, sent nothing). Such an attempt is recorded but superseded:
// its 2xx is not counted delivered, and a failure that would have parked
// the delivery neither counts as undeliverable nor raises the notification
// (they did, while the delivery stayed pending for the resend).
func TestRedeliverDuringAnAttemptSendsAgain(t *testing.T) {
	rcv := NewReceiver(t)
	release := make(chan struct{})
	hold := func(status int) func(int, *http.Request, http.ResponseWriter) {
		return func(n int, _ *http.Request, w http.ResponseWriter) {
			if n == 1 {
				<-release
				w.WriteHeader(status)
			}
		}
	}
	rcv.Handle("/ok", hold(200))
	rcv.Handle("/park", hold(500)) // schedule = []: its first failure parks
	rcv.Status("/marker", 500, 1)
	d := MustOpenDaemon(t, fmt.Sprintf("[notify]\nurl = %q\n", rcv.URL+"/notify")+
		endpoint("ok", rcv.URL+"/ok", `["t"]`, "")+
		endpoint("park", rcv.URL+"/park", `["t"]`, "schedule = []")+
		endpoint("marker", rcv.URL+"/marker", `["m"]`, "schedule = []"))
	want := map[string]float64{"ok delivered": 1, "ok superseded": 1, "park delivered": 1, "park superseded": 1, "park undeliverable": 0}
	before := outcomeCounts(t, d)
	id := d.Event(`{"type":"t","data":1}`)
	rcv.Wait(t, "/ok", 1) // the first attempts are in flight
	rcv.Wait(t, "/park", 1)
	for _, ep := range []string{"ok", "park"} {
		if status, out := d.Admin("POST", "/v1/events/"+id+"/redeliver", `{"endpoint":"`+ep+`"}`); status != 202 {
			t.Fatalf("redeliver to %s: %d %v", ep, status, out)
		}
	}
	close(release)
	rcv.Wait(t, "/ok", 2)
	rcv.Wait(t, "/park", 2)
	d.waitState(id, "ok", "delivered")
	d.waitState(id, "park", "delivered")

	// Outcomes are counted once committed: the state may be read first.
	// The series are the test binary's: other tests count too.
	eventually(t, "the outcomes counted", func() bool {
		got := outcomeCounts(t, d)
		for k, v := range want {
			if got[k]-before[k] != v {
				return false
			}
		}
		return true
	})
	// Notifications are stored in the order they are raised: once the
	// marker's has arrived, one raised by the superseded failure would be
	// in the notification endpoint's deliveries too.
	marker := d.Event(`{"type":"m","data":1}`)
	eventually(t, "the marker's notification", func() bool {
		for _, r := range rcv.Requests("/notify") {
			if strings.Contains(string(r.Body), marker) {
				return true
			}
		}
		return false
	})
	status, out := d.Admin("GET", "/v1/deliveries?endpoint="+config.NotifyEndpoint+"&type=hookd.delivery.undeliverable", "")
	if status != 200 || len(out["items"].([]any)) != 1 {
		t.Fatalf("undeliverable notifications: %d %v", status, out)
	}
	if !strings.Contains(d.logs.String(), "attempt recorded; the delivery had been redelivered") {
		t.Errorf("no log of the superseded attempts:\n%s", d.logs.String())
	}
}
