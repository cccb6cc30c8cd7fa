package tests

import (
	"net/http"
	"testing"
)

// shutdown_timeout (2s here) bounds Close even when an endpoint's timeout
// is 60s: the attempt still waiting at the deadline is cancelled, its
// connection closed and nothing recorded; the delivery stays pending and is
// delivered after the restart, at its first recorded attempt.
func TestShutdownCancelsAttemptsPastShutdownTimeout(t *testing.T) {
	rcv := NewReceiver(t)
	hungUp := make(chan struct{}, 1)
	rcv.Handle("/slow", func(n int, req *http.Request, w http.ResponseWriter) {
		if n == 1 {
			<-req.Context().Done() // never answers the first attempt
			hungUp <- struct{}{}
		}
	})
	cfg := endpoint("slow", rcv.URL+"/slow", `["*"]`, `timeout = "60s"`)
	d := MustOpenDaemon(t, cfg)
	id := d.Event(`{"type":"t","data":{}}`)
	rcv.Wait(t, "/slow", 1)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	<-hungUp
	d = d.Restart(cfg)
	if dl := d.waitState(id, "slow", "delivered"); dl["attempts"] != 1.0 {
		t.Fatalf("delivered after %v recorded attempts, want 1: the cancelled one must not count", dl["attempts"])
	}
}
