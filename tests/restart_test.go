package tests

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hookd/daemon"
)

func TestRestartDeliversPending(t *testing.T) {
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["2s"]`)
	d := MustOpenDaemon(t, cfg)
	id := d.Event(`{"type":"t","data":{}}`)
	rcv.Wait(t, "/a", 1)
	d.waitState(id, "a", "pending")
	d = d.Restart(cfg)
	d.waitState(id, "a", "delivered")
}

// Closing while attempts are in flight loses nothing: every acknowledged
// event is delivered after a restart.
func TestCloseWithInFlightLosesNothing(t *testing.T) {
	rcv := NewReceiver(t)
	release := make(chan struct{})
	rcv.Handle("/a", func(n int, _ *http.Request, w http.ResponseWriter) {
		select {
		case <-release:
		case <-time.After(300 * time.Millisecond):
		}
		w.WriteHeader(200)
	})
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, "timeout = \"1s\"\nschedule = [\"100ms\"]\nmax_in_flight = 4")
	d := MustOpenDaemon(t, cfg)
	var ids []string
	for i := range 40 {
		ids = append(ids, d.Event(fmt.Sprintf(`{"id":"e%d","type":"t","data":{}}`, i)))
	}
	rcv.Wait(t, "/a", 1)
	d = d.Restart(cfg)
	close(release)
	for _, id := range ids {
		d.waitState(id, "a", "delivered")
	}
}

// A notification raised by the last outcome before a graceful stop is not
// lost: it is stored before the database closes and sent after a restart.
// The attempt's commit is held until Close has shut the listeners, so the
// outcome is recorded during the stop (as one is in the last 50 ms before
// it).
func TestNotificationSurvivesShutdown(t *testing.T) {
	rcv := NewReceiver(t)
	var hold atomic.Bool
	rcv.Handle("/a", func(_ int, _ *http.Request, w http.ResponseWriter) {
		hold.Store(true)
		w.WriteHeader(500)
	})
	cfg := fmt.Sprintf("[notify]\nurl = %q\n", rcv.URL+"/notify") + endpoint("a", rcv.URL+"/a", `["*"]`, "schedule = []")
	var admin atomic.Pointer[string]
	d := MustOpenDaemonExtra(t, Extra{}, cfg, func(d *daemon.Daemon) {
		d.StoreHooks.BeforeCommit = func() error {
			for hold.Load() && listening(*admin.Load()) {
				time.Sleep(5 * time.Millisecond)
			}
			return nil
		}
	})
	addr := d.AdminAddr()
	admin.Store(&addr)
	id := d.Event(`{"type":"t","data":{}}`)
	rcv.Wait(t, "/a", 1)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d.Restart(cfg)
	note := rcv.Wait(t, "/notify", 1)[0]
	if !strings.Contains(string(note.Body), `"type":"hookd.delivery.undeliverable"`) || !strings.Contains(string(note.Body), id) {
		t.Fatalf("notification %s", note.Body)
	}
}

// listening reports whether addr still accepts connections.
func listening(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err == nil
}
