package tests

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hookd/config"
)

// liveKeyCase changes one live key by a reload and shows the daemon acting
// on the new value.
type liveKeyCase struct {
	before, after Extra  // section lines before and after the reload
	endpoints     string // tables after the sections, before the reload (RCV is the receiver's URL)
	after2        string // ... and after it, when they change
	check         func(t *testing.T, d *Daemon, rcv *Receiver, phase string)
}

// Every live key takes effect after a reload (SIGHUP calls Reload): the
// table must cover each key config classes as live, so a new live key
// without a test fails here.
func TestReloadEveryLiveKeyTakesEffect(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("from-file\n"), 0o600)
	post := func(d *Daemon, body string, headers ...string) int {
		status, _, _ := d.Post("/v1/events", "application/json", body, headers...)
		return status
	}
	adminStatus := func(d *Daemon, path string, headers ...string) int {
		status, _, _ := do(t, "GET", "http://"+d.AdminAddr()+path, "", "", headers...)
		return status
	}
	ingestToken := func(tok string) func(*testing.T, *Daemon, *Receiver, string) {
		return func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
			if phase == "before" {
				if s := post(d, `{"type":"t","data":1}`); s != 202 {
					t.Fatalf("no token needed yet: %d", s)
				}
				return
			}
			if s := post(d, `{"type":"t","data":1}`); s != 401 {
				t.Fatalf("token not required after reload: %d", s)
			}
			if s := post(d, `{"type":"t","data":1}`, "Authorization", "Bearer "+tok); s != 202 {
				t.Fatalf("new token refused: %d", s)
			}
		}
	}
	adminToken := func(tok string) func(*testing.T, *Daemon, *Receiver, string) {
		return func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
			want := 200
			if phase == "after" {
				want = 401
				if s := adminStatus(d, "/v1/endpoints", "Authorization", "Bearer "+tok); s != 200 {
					t.Fatalf("new admin token refused: %d", s)
				}
			}
			if s := adminStatus(d, "/v1/endpoints"); s != want {
				t.Fatalf("%s: admin without token %d, want %d", phase, s, want)
			}
		}
	}
	storedRetention := func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
		// Purges run every minute with whatever d.Config() holds then.
		s := d.Config().Storage
		if phase == "after" && (s.Retention.D().String() != "1h0m0s" || s.UndeliverableRetention.D().String() != "2h0m0s") {
			t.Fatalf("retention not applied: %v %v", s.Retention, s.UndeliverableRetention)
		}
	}
	// The portal's keys: each phase mints a link and follows it.
	const portalOn = "listen = \"127.0.0.1:0\"\n"
	loginAnswer := func(t *testing.T, d *Daemon) (link string, resp *http.Response, body []byte) {
		status, out := d.Admin("POST", "/v1/tenants/T/portal", "")
		if status != 201 {
			t.Fatalf("mint: %d %v", status, out)
		}
		link = out["url"].(string)
		resp, body = raw(t, "GET", "http://"+d.PortalAddr()+link[strings.Index(link, "/login"):], "")
		return link, resp, body
	}
	portalCase := func(after string, check func(t *testing.T, d *Daemon, phase string)) liveKeyCase {
		return liveKeyCase{before: Extra{Portal: portalOn}, after: Extra{Portal: portalOn + after},
			check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) { check(t, d, phase) }}
	}
	cases := map[string]liveKeyCase{
		"admin.allowed_hosts": {after: Extra{Admin: `allowed_hosts = ["hookd.internal"]`}, check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
			req, _ := http.NewRequest("GET", "http://"+d.AdminAddr()+"/v1/endpoints", nil)
			req.Host = "hookd.internal"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := map[string]int{"before": 421, "after": 200}[phase]; resp.StatusCode != want {
				t.Fatalf("%s: Host hookd.internal %d, want %d", phase, resp.StatusCode, want)
			}
		}},
		"portal.public_url": portalCase(`public_url = "https://webhooks.example.com"`, func(t *testing.T, d *Daemon, phase string) {
			link, _, _ := loginAnswer(t, d)
			if got := strings.HasPrefix(link, "https://webhooks.example.com/login?token="); got != (phase == "after") {
				t.Fatalf("%s: link %s", phase, link)
			}
		}),
		"portal.session_ttl": portalCase(`session_ttl = "2h"`, func(t *testing.T, d *Daemon, phase string) {
			_, resp, _ := loginAnswer(t, d)
			cs := resp.Cookies()
			if len(cs) != 1 {
				t.Fatalf("%s: cookies %v", phase, resp.Header["Set-Cookie"])
			}
			left := time.Until(cs[0].Expires)
			if want := map[string]time.Duration{"before": 12 * time.Hour, "after": 2 * time.Hour}[phase]; left > want || left < want-time.Hour {
				t.Fatalf("%s: the session cookie expires in %s, want %s", phase, left, want)
			}
		}),
		"portal.frame_ancestors": portalCase(`frame_ancestors = ["https://app.example.com"]`, func(t *testing.T, d *Daemon, phase string) {
			_, resp, _ := loginAnswer(t, d)
			csp := resp.Header.Get("Content-Security-Policy")
			if got := strings.Contains(csp, "frame-ancestors https://app.example.com"); got != (phase == "after") {
				t.Fatalf("%s: CSP %s", phase, csp)
			}
		}),
		"portal.title": portalCase(`title = "Acme Webhooks"`, func(t *testing.T, d *Daemon, phase string) {
			resp, body := raw(t, "GET", "http://"+d.PortalAddr()+"/login?token=altered", "")
			if got := strings.Contains(string(body), "Acme Webhooks"); resp.StatusCode != 401 || got != (phase == "after") {
				t.Fatalf("%s: %d %s", phase, resp.StatusCode, body)
			}
		}),
		"ingest.token":      {after: Extra{Ingest: `token = "t1"`}, check: ingestToken("t1")},
		"ingest.token_file": {after: Extra{Ingest: `token_file = "` + tokenFile + `"`}, check: ingestToken("from-file")},
		"admin.token":       {after: Extra{Admin: `token = "a1"`}, check: adminToken("a1")},
		"admin.token_file":  {after: Extra{Admin: `token_file = "` + tokenFile + `"`}, check: adminToken("from-file")},
		"admin.pprof": {after: Extra{Admin: `pprof = true`}, check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
			want := map[string]int{"before": 404, "after": 200}[phase]
			if s := adminStatus(d, "/debug/pprof/"); s != want {
				t.Fatalf("%s: pprof %d, want %d", phase, s, want)
			}
		}},
		"storage.retention":               {after: Extra{Storage: "retention = \"1h\"\nundeliverable_retention = \"2h\"\ndedup_window = \"1h\""}, check: storedRetention},
		"storage.undeliverable_retention": {after: Extra{Storage: "retention = \"1h\"\nundeliverable_retention = \"2h\"\ndedup_window = \"1h\""}, check: storedRetention},
		"storage.dedup_window": {after: Extra{Storage: `dedup_window = "0s"`}, check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
			// Beside an id in the body, a key is kept for the window only
			// (alone, it is the event's id, a duplicate while it is stored).
			key := "key-" + phase
			first := post(d, `{"id":"`+key+`-1","type":"t","data":1}`, "Idempotency-Key", key)
			second := post(d, `{"id":"`+key+`-2","type":"t","data":1}`, "Idempotency-Key", key)
			want := map[string]int{"before": 200, "after": 202}[phase] // a 0 window keeps no key
			if first != 202 || second != want {
				t.Fatalf("%s: %d then %d, want 202 then %d", phase, first, second, want)
			}
		}},
		"storage.max_pending": {after: Extra{Storage: `max_pending = 1`}, endpoints: endpoint("slow", "http://127.0.0.1:9/", `["*"]`, `schedule = ["1h"]`),
			check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
				if phase == "before" {
					return
				}
				post(d, `{"type":"t","data":1}`) // the first may be the one allowed
				if s := post(d, `{"type":"t","data":1}`); s != 429 {
					t.Fatalf("max_pending 1 not applied: %d", s)
				}
			}},
		"storage.min_free_bytes": {after: Extra{Storage: `min_free_bytes = "1000000GiB"`}, check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
			if phase == "after" {
				eventually(t, "ingest refused for disk space", func() bool { return post(d, `{"type":"t","data":1}`) == 503 })
			}
		}},
		"tenants.max_endpoints": {after: Extra{Tenants: "deny_networks = []\nmax_endpoints = 1"}, check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
			create := func(name string) int {
				status, _ := d.Admin("POST", "/v1/endpoints", `{"name":"`+name+`","url":"http://127.0.0.1:9/","events":["*"],"tenant":"T"}`)
				return status
			}
			if phase == "before" {
				if s := create("one"); s != 201 {
					t.Fatalf("create: %d", s)
				}
				return
			}
			if s := create("two"); s != 409 {
				t.Fatalf("second endpoint under max_endpoints 1: %d", s)
			}
		}},
		"tenants.max_pending": {after: Extra{Tenants: "deny_networks = []\nmax_pending = 1"}, endpoints: endpoint("slowt", "http://127.0.0.1:9/", `["*"]`, "tenant = \"T\"\nschedule = [\"1h\"]"),
			check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
				want := map[string]int{"before": 202, "after": 429}[phase]
				post(d, `{"type":"t","tenant":"T","data":1}`)
				if s := post(d, `{"type":"t","tenant":"T","data":1}`); s != want {
					t.Fatalf("%s: tenant event %d, want %d", phase, s, want)
				}
				if s := post(d, `{"type":"t","tenant":"U","data":1}`); s != 202 {
					t.Fatalf("another tenant refused: %d", s)
				}
			}},
		"event_types": {after2: catalogue, check: func(t *testing.T, d *Daemon, _ *Receiver, phase string) {
			_, out := d.Admin("GET", "/v1/event-types", "")
			if want := map[string]int{"before": 0, "after": 2}[phase]; len(out["items"].([]any)) != want {
				t.Fatalf("%s: %v", phase, out)
			}
		}},
		// The log keys are checked below, by what the log holds after the
		// reload (baseConfig logs at debug).
		"log.level":  {check: func(*testing.T, *Daemon, *Receiver, string) {}},
		"log.format": {check: func(*testing.T, *Daemon, *Receiver, string) {}},
		"defaults": {endpoints: "\n[defaults]\nheaders = { \"X-Gen\" = \"one\" }\n" + endpoint("a", "RCV/a", `["*"]`, ""),
			after2: "\n[defaults]\nheaders = { \"X-Gen\" = \"two\" }\n" + endpoint("a", "RCV/a", `["*"]`, ""),
			check: func(t *testing.T, d *Daemon, rcv *Receiver, phase string) {
				n := map[string]int{"before": 1, "after": 2}[phase]
				d.Event(`{"type":"t","data":1}`)
				got := rcv.Wait(t, "/a", n)[n-1].Header.Get("X-Gen")
				if want := map[string]string{"before": "one", "after": "two"}[phase]; got != want {
					t.Fatalf("%s: X-Gen %q, want %q", phase, got, want)
				}
			}},
		"endpoints": {endpoints: endpoint("a", "RCV/a", `["*"]`, ""), after2: endpoint("a", "RCV/b", `["*"]`, ""),
			check: func(t *testing.T, d *Daemon, rcv *Receiver, phase string) {
				d.Event(`{"type":"t","data":1}`)
				rcv.Wait(t, map[string]string{"before": "/a", "after": "/b"}[phase], 1)
			}},
		"notify": {endpoints: endpoint("a", "RCV/fail", `["*"]`, `schedule = []`),
			after2: endpoint("a", "RCV/fail", `["*"]`, `schedule = []`) + "\n[notify]\nurl = \"RCV/alerts\"\n",
			check: func(t *testing.T, d *Daemon, rcv *Receiver, phase string) {
				rcv.Status("/fail", 500, 1000)
				d.Event(`{"type":"t","data":1}`)
				if phase == "after" {
					got := rcv.Wait(t, "/alerts", 1)
					if !strings.Contains(string(got[0].Body), "hookd.delivery.undeliverable") {
						t.Fatalf("notification: %s", got[0].Body)
					}
				}
			}},
	}
	for _, k := range config.Keys() {
		if config.ClassOf(k) != config.Live {
			continue
		}
		c, ok := cases[k]
		if !ok {
			t.Errorf("live key %s has no reload test", k)
			continue
		}
		t.Run(k, func(t *testing.T) {
			rcv := NewReceiver(t)
			fill := func(s string) string { return strings.ReplaceAll(s, "RCV", rcv.URL) }
			d := MustOpenDaemonExtra(t, c.before, fill(c.endpoints), nil)
			c.check(t, d, rcv, "before")
			d.extra = c.after
			after := c.endpoints
			if c.after2 != "" {
				after = c.after2
			}
			extraLog := ""
			if k == "log.level" || k == "log.format" {
				extraLog = map[string]string{"log.level": "\n[log]\nlevel = \"error\"\n", "log.format": "\n[log]\nlevel = \"debug\"\nformat = \"console\"\n"}[k]
			}
			d.rewrite(fill(after))
			if extraLog != "" {
				writeRaw(t, d.cfgPath, strings.Replace(readRaw(t, d.cfgPath), "[log]\nlevel = \"debug\"\n", "", 1)+extraLog)
			}
			if err := d.Reload(); err != nil {
				t.Fatalf("reload: %v", err)
			}
			c.check(t, d, rcv, "after")
			switch k {
			case "log.level":
				mark := len(d.logs.String())
				d.Event(`{"type":"t","data":1}`)
				d.Admin("GET", "/v1/endpoints", "")
				if tail := d.logs.String()[mark:]; strings.Contains(tail, `"level":"debug"`) || strings.Contains(tail, `"level":"info"`) {
					t.Fatalf("level error still logs lower levels:\n%s", tail)
				}
			case "log.format":
				mark := len(d.logs.String())
				d.Reload() // logs "config reloaded" in the new format
				tail := strings.TrimSpace(d.logs.String()[mark:])
				if tail == "" || json.Valid([]byte(strings.Split(tail, "\n")[0])) || !strings.Contains(tail, "config reloaded") {
					t.Fatalf("log.format console not applied:\n%s", tail)
				}
			}
		})
	}
}
