package tests

import (
	"fmt"
	"net/http"
	"testing"
	"time"
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
