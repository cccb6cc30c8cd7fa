// Package tests holds hookd's end-to-end tests: each starts the real daemon
// (fasthttp listeners on 127.0.0.1:0, bbolt in t.TempDir()) and delivers to
// a real HTTP receiver on loopback.
package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/config"
	"hookd/daemon"
	"hookd/store"
)

// testSecret is the Standard Webhooks test-vector secret.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// baseConfig is prepended to every test config. Each %s takes extra
// lines for its section (see Extra); the storage path is filled in.
const baseConfig = `
[ingest]
listen = "127.0.0.1:0"
%s
[admin]
listen = "127.0.0.1:0"
%s
[storage]
path = %q
%s
[delivery]
workers = 8
shutdown_timeout = "2s"
%s
[tenants]
%s
[log]
level = "debug"
`

// Extra adds lines to baseConfig's sections. Tenants, when empty, lets
// tenant endpoints reach the loopback receivers (deny_networks = []);
// tests of the deny-list set it.
// Portal, when set, is the [portal] section's lines.
type Extra struct{ Ingest, Admin, Storage, Delivery, Tenants, Portal string }

// Daemon is a running daemon under test.
type Daemon struct {
	*daemon.Daemon
	tb      testing.TB
	dir     string
	cfgPath string
	logs    *syncBuffer
	extra   Extra
	noCheck string // why the database is exempt from the check at cleanup
}

// MustOpenDaemon writes cfg (endpoints and overrides, after baseConfig)
// into a temp dir, starts the daemon on ephemeral ports, and when the test
// ends closes it and runs bbolt's consistency check on its database.
func MustOpenDaemon(tb testing.TB, cfg string) *Daemon {
	tb.Helper()
	return mustOpenIn(tb, tb.TempDir(), Extra{}, cfg, nil)
}

// MustOpenDaemonExtra is MustOpenDaemon with extra section lines and a
// setup function that runs before Open (store hooks, notifier).
func MustOpenDaemonExtra(tb testing.TB, x Extra, cfg string, setup func(*daemon.Daemon)) *Daemon {
	tb.Helper()
	return mustOpenIn(tb, tb.TempDir(), x, cfg, setup)
}

func mustOpenIn(tb testing.TB, dir string, x Extra, cfg string, setup func(*daemon.Daemon)) *Daemon {
	tb.Helper()
	path := filepath.Join(dir, "hookd.toml")
	writeConfig(tb, path, dir, x, cfg)
	return mustOpenFile(tb, dir, path, x, setup)
}

// mustOpenFile starts a daemon on the config file at path as it is.
func mustOpenFile(tb testing.TB, dir, path string, x Extra, setup func(*daemon.Daemon)) *Daemon {
	tb.Helper()
	c, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	d := &Daemon{Daemon: daemon.New(c), tb: tb, dir: dir, cfgPath: path, logs: &syncBuffer{}, extra: x}
	d.LogOutput = d.logs
	if setup != nil {
		setup(d.Daemon)
	}
	if err := d.Open(); err != nil {
		tb.Fatal(err)
	}
	var portal []string
	if a := d.PortalAddr(); a != "" {
		portal = append(portal, a)
	}
	registerListeners(tb, d.IngestAddr(), d.AdminAddr(), portal...)
	db := c.Storage.Path
	tb.Cleanup(func() {
		d.Close()
		if d.noCheck != "" {
			tb.Logf("database check skipped: %s", d.noCheck)
			return
		}
		checkDB(tb, db)
	})
	return d
}

// SkipDBCheck exempts the daemon's database from the consistency check at
// cleanup, for a test that damages the file on purpose; reason says how.
func (d *Daemon) SkipDBCheck(reason string) { d.noCheck = reason }

// checkDB fails the test unless the database at path (not in use) passes
// bbolt's consistency check, as bbolt's own test helpers do at cleanup.
func checkDB(tb testing.TB, path string) {
	tb.Helper()
	if _, err := store.Inspect(path); err != nil {
		tb.Errorf("database after the test: %v", err)
	}
}

func writeConfig(tb testing.TB, path, dir string, x Extra, cfg string) {
	tb.Helper()
	tenants := x.Tenants
	if tenants == "" {
		tenants = "deny_networks = []"
	}
	portal := ""
	if x.Portal != "" {
		portal = "[portal]\n" + x.Portal
	}
	full := fmt.Sprintf(baseConfig, x.Ingest, x.Admin, filepath.Join(dir, "hookd.db"), x.Storage, x.Delivery, tenants) + portal + cfg
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// Restart closes the daemon and opens a new one on the same directory.
func (d *Daemon) Restart(cfg string) *Daemon {
	d.tb.Helper()
	if err := d.Close(); err != nil {
		d.tb.Fatal(err)
	}
	return mustOpenIn(d.tb, d.dir, d.extra, cfg, nil)
}

// Post sends a request to the ingest listener.
func (d *Daemon) Post(path, contentType string, body string, headers ...string) (int, map[string]any, http.Header) {
	d.tb.Helper()
	return do(d.tb, "POST", "http://"+d.IngestAddr()+path, contentType, body, headers...)
}

// Event posts one JSON event and requires a 202.
func (d *Daemon) Event(body string) string {
	d.tb.Helper()
	status, out, _ := d.Post("/v1/events", "application/json", body)
	if status != 202 {
		d.tb.Fatalf("ingest %s: %d %v", body, status, out)
	}
	return out["id"].(string)
}

// Admin calls the admin API.
func (d *Daemon) Admin(method, path, body string) (int, map[string]any) {
	d.tb.Helper()
	var auth []string
	if tok := d.Config().AdminToken(); tok != "" {
		auth = []string{"Authorization", "Bearer " + tok}
	}
	status, out, _ := do(d.tb, method, "http://"+d.AdminAddr()+path, "application/json", body, auth...)
	return status, out
}

// do sends a request to a daemon under test and checks the answer
// against api/openapi.yaml (checkAnswer).
func do(tb testing.TB, method, url, contentType, body string, headers ...string) (int, map[string]any, http.Header) {
	tb.Helper()
	return send(tb, method, url, contentType, body, headers, func(req *http.Request, resp *http.Response, b []byte) {
		checkAnswer(tb, req, body, resp, b)
	})
}

func send(tb testing.TB, method, url, contentType, body string, headers []string, check func(*http.Request, *http.Response, []byte)) (int, map[string]any, http.Header) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	check(req, resp, b)
	var out map[string]any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &out); err != nil {
			tb.Fatalf("response %s: %v", b, err)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// Request is one request a Receiver got.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// Receiver is a loopback HTTP server that records every request and
// answers with what its handler for that path returns.
type Receiver struct {
	URL string
	srv *http.Server

	mu       sync.Mutex
	reqs     []Request
	handlers map[string]func(n int, r *http.Request, w http.ResponseWriter)
	changed  chan struct{}
}

// NewReceiver starts a receiver that answers 200 unless told otherwise.
func NewReceiver(tb testing.TB) *Receiver {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Receiver{URL: "http://" + ln.Addr().String(), handlers: map[string]func(int, *http.Request, http.ResponseWriter){}, changed: make(chan struct{}, 1)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(ln)
	tb.Cleanup(func() { r.srv.Close() })
	return r
}

// Handle sets how path is answered; fn gets the 1-based count of requests
// to that path so far.
func (r *Receiver) Handle(path string, fn func(n int, req *http.Request, w http.ResponseWriter)) {
	r.mu.Lock()
	r.handlers[path] = fn
	r.mu.Unlock()
}

// Status makes path answer status for the first n requests, then 200.
func (r *Receiver) Status(path string, status, n int) {
	r.Handle(path, func(i int, _ *http.Request, w http.ResponseWriter) {
		if i <= n {
			w.WriteHeader(status)
			return
		}
		w.WriteHeader(200)
	})
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, Request{Path: req.URL.Path, Header: req.Header.Clone(), Body: body, At: time.Now()})
	n := 0
	for _, x := range r.reqs {
		if x.Path == req.URL.Path {
			n++
		}
	}
	h := r.handlers[req.URL.Path]
	r.mu.Unlock()
	if h != nil {
		h(n, req, w)
	} else {
		w.WriteHeader(200)
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Requests returns what path received so far ("" for all paths).
func (r *Receiver) Requests(path string) []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Request
	for _, x := range r.reqs {
		if path == "" || x.Path == path {
			out = append(out, x)
		}
	}
	return out
}

// Wait blocks until path has received at least n requests.
func (r *Receiver) Wait(tb testing.TB, path string, n int) []Request {
	tb.Helper()
	deadline := time.After(waitLimit)
	for {
		if got := r.Requests(path); len(got) >= n {
			return got
		}
		select {
		case <-r.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			tb.Fatalf("%s: got %d requests, want %d", path, len(r.Requests(path)), n)
		}
	}
}

// waitLimit bounds every wait for observable state. It is a liveness
// bound, not a speed claim: generous, because -race on a loaded 2-core
// machine runs the daemon several times slower.
const waitLimit = 60 * time.Second

// eventually polls cond until it is true or waitLimit passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deliveryState reads an event's delivery to endpoint through the admin API.
func (d *Daemon) deliveryState(id, endpoint string) map[string]any {
	d.tb.Helper()
	status, ev := d.Admin("GET", "/v1/events/"+id, "")
	if status != 200 {
		d.tb.Fatalf("get event %s: %d %v", id, status, ev)
	}
	for _, x := range ev["deliveries"].([]any) {
		dl := x.(map[string]any)
		if dl["endpoint"] == endpoint {
			return dl
		}
	}
	return nil
}

func (d *Daemon) waitState(id, endpoint, state string) map[string]any {
	d.tb.Helper()
	var dl map[string]any
	eventually(d.tb, id+" "+endpoint+" "+state, func() bool {
		dl = d.deliveryState(id, endpoint)
		return dl != nil && dl["state"] == state
	})
	return dl
}

// syncBuffer collects log output safely across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func readRaw(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func writeRaw(tb testing.TB, path, s string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// inspect runs store.Inspect (bbolt's consistency check) on a closed db.
func inspect(path string) (map[string]int, error) { return store.Inspect(path) }
