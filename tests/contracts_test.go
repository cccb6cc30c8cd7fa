package tests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hookd/config"
)

// MustOpenExample starts the daemon on examples/NAME.toml as shipped,
// except: listeners on 127.0.0.1:0, the database in a temp dir, every url
// pointed at rcv (endpoint URLs at /NAME, [notify] at /notify), and, when
// schedule is not empty, retry delays replaced by short ones so the test
// does not wait minutes.
func MustOpenExample(t *testing.T, name string, rcv *Receiver, schedule string) *Daemon {
	t.Helper()
	raw := readRaw(t, filepath.Join("..", "examples", name+".toml"))
	dir := t.TempDir()
	repl := []struct{ re, with string }{
		{`listen = "[^"]*"`, `listen = "127.0.0.1:0"`},
		{`path = "[^"]*"`, `path = "` + filepath.Join(dir, "hookd.db") + `"`},
		{`(?m)^url = "[^"]*"`, `url = "` + rcv.URL + "/" + name + `"`},
		{`(?m)^\[notify\]\nurl = "[^"]*"`, "[notify]\nurl = \"" + rcv.URL + "/notify\""},
	}
	for _, r := range repl {
		raw = regexp.MustCompile(r.re).ReplaceAllString(raw, r.with)
	}
	if schedule != "" {
		if re := regexp.MustCompile(`(?m)^schedule = \[.*\]`); re.MatchString(raw) {
			raw = re.ReplaceAllString(raw, "schedule = "+schedule)
		} else { // the example uses the default schedule
			raw = regexp.MustCompile(`(?m)^(events = .*)$`).ReplaceAllString(raw, "$1\nschedule = "+schedule)
		}
	}
	// The receiver is on loopback, which tenant endpoints may not reach
	// by default.
	raw += "\n[tenants]\ndeny_networks = []\n"
	path := filepath.Join(dir, "hookd.toml")
	writeRaw(t, path, raw)
	return mustOpenFile(t, dir, path, Extra{}, nil)
}

func hexHMAC(secret, content string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(content))
	return hex.EncodeToString(m.Sum(nil))
}

func TestExamplesKeepTheirSchedules(t *testing.T) {
	want := map[string]string{
		"seny": "[1m0s 5m0s 30m0s 2h0m0s 6h0m0s 24h0m0s]", "savanto": "[1m0s 5m0s 30m0s 2h0m0s]", "sensei": "[]",
		"convosphere": "[1m0s 2m0s 4m0s 8m0s 16m0s]", "hume": "[5s 5m0s 30m0s 2h0m0s 5h0m0s 10h0m0s 10h0m0s]",
	}
	for name, sched := range want {
		c, err := config.Load(filepath.Join("..", "examples", name+".toml"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := fmtDurations(c.Resolved[0].Policy.Schedule); got != sched {
			t.Errorf("%s: schedule %s, want %s", name, got, sched)
		}
	}
}

func fmtDurations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return "[" + strings.Join(s, " ") + "]"
}

// seny: the receiver splits X-Seny-Signature on "=" and compares hex
// digests in constant time, and checks X-Seny-Event / X-Seny-Event-Id.
func TestContractSeny(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/seny", 503, 1)
	d := MustOpenExample(t, "seny", rcv, `["100ms"]`)
	id := d.Event(`{"type":"conversation.ended","tenant":"wgt_abc123","data":{"conversation_id":"c_42","transcript":[{"role":"visitor","text":"Do you ship to Lisbon?"},{"role":"bot","text":"Yes, in 3 days."}]}}`)
	// Another widget's event never reaches this widget's CRM, and neither
	// does one without a widget.
	if status, out, _ := d.Post("/v1/events", "application/json", `{"type":"conversation.ended","tenant":"wgt_other","data":{}}`); status != 202 || out["deliveries"].(float64) != 0 {
		t.Fatalf("another widget's event: %d %v", status, out)
	}
	if status, out, _ := d.Post("/v1/events", "application/json", `{"type":"conversation.ended","data":{}}`); status != 202 || out["deliveries"].(float64) != 0 {
		t.Fatalf("an event without a widget: %d %v", status, out)
	}
	reqs := rcv.Wait(t, "/seny", 2)
	for _, r := range reqs {
		parts := strings.SplitN(r.Header.Get("X-Seny-Signature"), "=", 2)
		if len(parts) != 2 || parts[0] != "sha256" {
			t.Fatalf("X-Seny-Signature %q", r.Header.Get("X-Seny-Signature"))
		}
		got, _ := hex.DecodeString(parts[1])
		want, _ := hex.DecodeString(hexHMAC("seny-example-secret", string(r.Body)))
		if !hmac.Equal(got, want) {
			t.Fatal("seny signature does not verify")
		}
		if r.Header.Get("X-Seny-Event") != "conversation.ended" || r.Header.Get("X-Seny-Event-Id") != id {
			t.Fatalf("seny headers %v", r.Header)
		}
	}
	var env map[string]any
	json.Unmarshal(reqs[1].Body, &env)
	if env["id"] != id || env["event"] != "conversation.ended" || env["widget_id"] != "wgt_abc123" || env["data"].(map[string]any)["conversation_id"] != "c_42" {
		t.Fatalf("seny envelope %s", reqs[1].Body)
	}
	if _, err := time.Parse(time.RFC3339, env["created_at"].(string)); err != nil || len(env) != 5 {
		t.Fatalf("seny envelope %s", reqs[1].Body)
	}
	d.waitState(id, "crm", "delivered")
}

// savanto: the receiver compares the whole "sha256=<hex>" string; after
// the fifth failed attempt the delivery fails and [notify] is told.
func TestContractSavanto(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/savanto", 500, 100)
	d := MustOpenExample(t, "savanto", rcv, `["50ms", "50ms", "50ms", "50ms"]`)
	id := d.Event(`{"type":"chat.message_sent","data":{"chat_id":"ch_9","message":{"role":"assistant","text":"Hello!"}}}`)
	reqs := rcv.Wait(t, "/savanto", 5)
	for _, r := range reqs {
		if r.Header.Get("X-Webhook-Signature") != "sha256="+hexHMAC("savanto-example-secret", string(r.Body)) {
			t.Fatal("savanto signature does not verify")
		}
	}
	var env map[string]any
	json.Unmarshal(reqs[0].Body, &env)
	if env["id"] != id || env["event_type"] != "chat.message_sent" || env["created_at"] == nil || env["data"] == nil || len(env) != 4 {
		t.Fatalf("savanto envelope %s", reqs[0].Body)
	}
	dl := d.waitState(id, "crm", "undeliverable")
	if dl["attempts"] != 5.0 {
		t.Fatalf("attempts %v", dl["attempts"])
	}
	notes := rcv.Wait(t, "/notify", 2) // failing (after 5 failures) and undeliverable
	types := map[string]map[string]any{}
	for _, n := range notes {
		verifyStandard(t, n, testSecret)
		var e map[string]any
		json.Unmarshal(n.Body, &e)
		types[e["type"].(string)] = e["data"].(map[string]any)
	}
	if u := types["hookd.delivery.undeliverable"]; u == nil || u["event_id"] != id || u["endpoint"] != "crm" || u["tenant"] != "" {
		t.Fatalf("undeliverable notification: %v", types)
	}
	if f := types["hookd.endpoint.failing"]; f == nil || f["consecutive_failures"] != 5.0 {
		t.Fatalf("failing notification: %v", types)
	}
	// Test event on demand, and recovery notification once it succeeds.
	rcv.Status("/savanto", 200, 0)
	if status, out := d.Admin("POST", "/v1/endpoints/crm/test", `{}`); status != 200 || out["ok"] != true {
		t.Fatalf("test event: %d %v", status, out)
	}
	d.Admin("POST", "/v1/events/"+id+"/redeliver", "")
	d.waitState(id, "crm", "delivered")
	eventually(t, "recovered notification", func() bool {
		for _, n := range rcv.Requests("/notify") {
			if strings.Contains(string(n.Body), "hookd.endpoint.recovered") {
				return true
			}
		}
		return false
	})
	time.Sleep(100 * time.Millisecond)
	for _, n := range rcv.Requests("/notify") {
		if strings.Contains(string(n.Body), `"endpoint":"hookd-notify"`) {
			t.Fatal("a notification about notifications")
		}
	}
}

// sensei: no signature; a 500 is not retried.
func TestContractSensei(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/sensei", 500, 100)
	d := MustOpenExample(t, "sensei", rcv, "")
	id := d.Event(`{"type":"lead.created","data":{"name":"Ada Lovelace","email":"ada@example.com","phone":null}}`)
	r := rcv.Wait(t, "/sensei", 1)[0]
	for k := range r.Header {
		if strings.Contains(strings.ToLower(k), "signature") || strings.HasPrefix(strings.ToLower(k), "webhook-") {
			t.Fatalf("sensei request carries %s", k)
		}
	}
	if !matchRe(`^\{"event":"lead.created","timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","data":\{"name":"Ada Lovelace","email":"ada@example.com","phone":null\}\}$`, string(r.Body)) {
		t.Fatalf("sensei body %s", r.Body)
	}
	dl := d.waitState(id, "crm", "undeliverable")
	time.Sleep(200 * time.Millisecond)
	if n := len(rcv.Requests("/sensei")); n != 1 || dl["attempts"] != 1.0 {
		t.Fatalf("sensei retried: %d requests", n)
	}
}

// convosphere: standard signature (verified independently and with the
// npm standardwebhooks package), test event on creation, stops on 404,
// retries 429.
func TestContractConvosphere(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenExample(t, "convosphere", rcv, `["50ms", "50ms", "50ms", "50ms", "50ms"]`)
	test := rcv.Wait(t, "/convosphere", 1)[0] // test_on_create
	verifyStandard(t, test, testSecret)
	if !strings.Contains(string(test.Body), `"type":"hookd.test"`) {
		t.Fatalf("first request is not the test event: %s", test.Body)
	}
	rcv.Status("/convosphere", 404, 100)
	id404 := d.Event(`{"type":"message.completed","data":{"conversation_id":"cv_1","message":"Thanks!"}}`)
	dl := d.waitState(id404, "crm", "undeliverable")
	if dl["attempts"] != 1.0 || !strings.Contains(dl["reason"].(string), "404") {
		t.Fatalf("404 not final: %v", dl)
	}
	rcv.Status("/convosphere", 429, rcv.count("/convosphere")+1)
	id429 := d.Event(`{"type":"message.completed","data":{"conversation_id":"cv_2","message":"Bye"}}`)
	d.waitState(id429, "crm", "delivered")
	reqs := rcv.Requests("/convosphere")
	last := reqs[len(reqs)-1]
	verifyStandard(t, last, testSecret)
	verifyWithNode(t, last, testSecret)
}

func (r *Receiver) count(path string) int { return len(r.Requests(path)) }

// hume: the emitter's payload verbatim; HMAC over "{body}.{timestamp}";
// the receiver rejects timestamps older than 3 minutes.
func TestContractHume(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/hume", 500, 1)
	d := MustOpenExample(t, "hume", rcv, `["1100ms"]`)
	payload := `{"event_name":"chat_ended","chat_id":"chat_7","config_id":null,"end_reason":"USER_ENDED", "duration_seconds":93}`
	id := d.Event(`{"type":"chat_ended","payload":` + payload + `}`)
	reqs := rcv.Wait(t, "/hume", 2)
	for _, r := range reqs {
		if string(r.Body) != payload {
			t.Fatalf("payload changed: %s", r.Body)
		}
		ts := r.Header.Get("X-Hume-AI-Webhook-Timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)) > 3*time.Minute {
			t.Fatalf("timestamp %q rejected", ts)
		}
		if !hmac.Equal([]byte(r.Header.Get("X-Hume-AI-Webhook-Signature")), []byte(hexHMAC("hume-example-secret", string(r.Body)+"."+ts))) {
			t.Fatal("hume signature does not verify")
		}
	}
	if reqs[0].Header.Get("X-Hume-AI-Webhook-Timestamp") == reqs[1].Header.Get("X-Hume-AI-Webhook-Timestamp") {
		t.Fatal("retry reused the old timestamp")
	}
	d.waitState(id, "app", "delivered")
}

// verifyWithNode checks a request with the official standardwebhooks and
// svix npm packages. It installs tests/node_modules from
// tests/package-lock.json on first use. Where node is absent the test is
// skipped, and says so, except in CI (CI set), where a missing check must
// not pass for a passed one.
func verifyWithNode(t *testing.T, r Request, secret string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		const why = "node not installed: cannot check the request with the npm standardwebhooks and svix packages"
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	_, err1 := os.Stat("node_modules/standardwebhooks")
	_, err2 := os.Stat("node_modules/svix")
	if err1 != nil || err2 != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatal("node is installed but npm is not")
		}
		if out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund").CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	in, _ := json.Marshal(map[string]any{"secret": secret, "body": string(r.Body), "headers": map[string]string{
		"webhook-id": r.Header.Get("webhook-id"), "webhook-timestamp": r.Header.Get("webhook-timestamp"), "webhook-signature": r.Header.Get("webhook-signature")}})
	cmd := exec.Command(node, "verify-standard.mjs")
	cmd.Stdin = strings.NewReader(string(in))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("standardwebhooks rejected the request: %v\n%s", err, out)
	}
}
