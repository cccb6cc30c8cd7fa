package tests

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rewrite replaces the daemon's config file (same base sections).
func (d *Daemon) rewrite(cfg string) {
	d.tb.Helper()
	writeConfig(d.tb, d.cfgPath, d.dir, d.extra, cfg)
}

func TestReloadRejectsBadFilesAndKeepsOldConfig(t *testing.T) {
	rcv := NewReceiver(t)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, "")
	d := MustOpenDaemon(t, cfg)
	for name, bad := range map[string]string{
		"syntax":      cfg + "\n[[endpoints]\n",
		"unknown key": cfg + "colour = \"red\"\n",
		"bad value":   endpoint("a", rcv.URL+"/a", `["*"]`, `timeout = "forever"`),
		"secret file": endpoint("a", rcv.URL+"/a", `["*"]`, "  [endpoints.signing]\n  secret_file = \"/nonexistent/secret\"\n"),
	} {
		d.rewrite(bad)
		if err := d.Reload(); err == nil {
			t.Fatalf("%s: reload accepted", name)
		}
		if !strings.Contains(d.logs.String(), "reload failed; keeping the running config") {
			t.Fatalf("%s: no log line", name)
		}
		d.Event(`{"type":"t","data":{}}`)
	}
	rcv.Wait(t, "/a", 4) // still delivering with the old config
	if n := strings.Count(d.logs.String(), `"reload failed`); n != 4 {
		t.Fatalf("%d reload-failed lines, want 4", n)
	}
	if !strings.Contains(d.logs.String(), `hookd.toml:`) {
		t.Fatal("reload error does not name the file and line")
	}
}

func TestReloadRefusesListenAndStorageChanges(t *testing.T) {
	rcv := NewReceiver(t)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, "")
	d := MustOpenDaemon(t, cfg)
	d.extra = Extra{Delivery: "workers = 3"}
	d.rewrite(cfg)
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "delivery.workers") {
		t.Fatalf("workers change: %v", err)
	}
	d.extra = Extra{}
	// Listen address: edit the written file's listen line.
	d.rewrite(cfg)
	raw := readRaw(t, d.cfgPath)
	writeRaw(t, d.cfgPath, strings.Replace(raw, `listen = "127.0.0.1:0"`, `listen = "127.0.0.1:1"`, 1))
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "ingest.listen") || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("listen change: %v", err)
	}
	writeRaw(t, d.cfgPath, strings.Replace(raw, "hookd.db", "other.db", 1))
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "storage.path") {
		t.Fatalf("storage change: %v", err)
	}
	d.Event(`{"type":"t","data":{}}`)
	rcv.Wait(t, "/a", 1)
}

func TestReloadAddChangeRemoveEndpoints(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/b", 500, 1000)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a1", `["*"]`, "")+endpoint("b", rcv.URL+"/b", `["*"]`, `schedule = ["1h"]`))
	id := d.Event(`{"type":"t","data":{}}`)
	rcv.Wait(t, "/a1", 1)
	d.waitState(id, "b", "pending") // failed once, retry in an hour

	// Change a's URL and secret, remove b, add c.
	d.rewrite(endpoint("a", rcv.URL+"/a2", `["*"]`, standardSigning(testSecret)) + endpoint("c", rcv.URL+"/c", `["t"]`, ""))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	dl := d.waitState(id, "b", "undeliverable")
	if dl["reason"] != "endpoint removed" {
		t.Fatalf("removed endpoint's delivery: %v", dl)
	}
	id2 := d.Event(`{"type":"t","data":{}}`)
	verifyStandard(t, rcv.Wait(t, "/a2", 1)[0], testSecret)
	rcv.Wait(t, "/c", 1)
	d.waitState(id2, "c", "delivered")
	if d.deliveryState(id2, "b") != nil {
		t.Fatal("removed endpoint got a new delivery")
	}

	// Re-adding b and redelivering its parked delivery works.
	rcv.Status("/b", 200, 0)
	d.rewrite(endpoint("a", rcv.URL+"/a2", `["*"]`, "") + endpoint("b", rcv.URL+"/b", `["*"]`, ""))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if status, out := d.Admin("POST", "/v1/undeliverable/redeliver", `{"endpoint":"b"}`); status != 202 || out["redelivered"] != 1.0 {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	d.waitState(id, "b", "delivered")
}

func TestReloadChangesRetryPolicy(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1)
	d := MustOpenDaemon(t, endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["200ms"]`))
	d.rewrite(endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = []`))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	id := d.Event(`{"type":"t","data":{}}`)
	dl := d.waitState(id, "a", "undeliverable")
	if dl["attempts"] != 1.0 {
		t.Fatalf("new schedule not applied: %v", dl)
	}
}

func TestReloadLogLevel(t *testing.T) {
	rcv := NewReceiver(t)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, "")
	d := MustOpenDaemon(t, cfg)
	raw := readRaw(t, d.cfgPath)
	writeRaw(t, d.cfgPath, strings.Replace(raw, `level = "debug"`, `level = "error"`, 1))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(d.logs.String(), `"delivered"`)
	d.Event(`{"type":"t","data":{}}`)
	rcv.Wait(t, "/a", 1)
	time.Sleep(100 * time.Millisecond)
	if after := strings.Count(d.logs.String(), `"delivered"`); after != before {
		t.Fatal("debug lines still logged after reload to level error")
	}
	writeRaw(t, d.cfgPath, raw)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
}

// Reloads racing each other and heavy ingest: nothing is lost, nothing
// races (run with -race).
func TestReloadUnderIngest(t *testing.T) {
	rcv := NewReceiver(t)
	cfgA := endpoint("a", rcv.URL+"/a", `["*"]`, "")
	cfgB := endpoint("a", rcv.URL+"/a", `["*"]`, `headers = { "X-V" = "b" }`)
	d := MustOpenDaemon(t, cfgA)
	var stop atomic.Bool
	var acked atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 300; i++ {
				status, _, _ := d.Post("/v1/events", "application/json", fmt.Sprintf(`{"id":"w%d-%d","type":"t","data":{}}`, w, i))
				if status == 202 {
					acked.Add(1)
				}
			}
		}()
	}
	for i := range 20 {
		if i%2 == 0 {
			d.rewrite(cfgB)
		} else {
			d.rewrite(cfgA)
		}
		var rw sync.WaitGroup
		for range 2 {
			rw.Add(1)
			go func() { defer rw.Done(); d.Reload() }()
		}
		rw.Wait()
	}
	stop.Store(true)
	wg.Wait()
	rcv.Wait(t, "/a", int(acked.Load()))
}

// An endpoint removed from the file while hookd was stopped has its pending
// deliveries parked at the start, as a reload would, not at their next
// attempt hours later (found by black-box testing).
func TestRestartParksRemovedEndpoint(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/gone", 500, 1000)
	keep := endpoint("keep", rcv.URL+"/keep", `["*"]`, "")
	d := MustOpenDaemon(t, keep+endpoint("gone", rcv.URL+"/gone", `["*"]`, `schedule = ["1h"]`))
	id := d.Event(`{"type":"t","data":1}`)
	rcv.Wait(t, "/gone", 1)
	d.waitState(id, "gone", "pending")
	d = d.Restart(keep)
	if dl := d.waitState(id, "gone", "undeliverable"); dl["reason"] != "endpoint removed" {
		t.Fatalf("after the restart: %v", dl)
	}
}
