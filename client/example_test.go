package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"hookd/client"
)

// An emitter: one call per event. Send retries while hookd is busy,
// restarting or briefly unreachable, always with the same event id, so the
// event is stored exactly once; it returns an error only for an event
// hookd refuses (a 4xx) or when the deadline passes first.
func ExampleIngest_Send() {
	hookd := fakeHookd() // stands in for [ingest] listen, e.g. "127.0.0.1:8525"
	defer hookd.Close()

	ingest := client.NewIngest(hookd.URL, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ack, err := ingest.Send(ctx, client.NewEvent{
		ID:   "order-1001-paid", // optional: a generated evt_<ULID> otherwise
		Type: "order.paid",
		Data: map[string]any{"order": 1001, "amount": 4200},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ack.ID, ack.Deliveries)
	// Output: order-1001-paid 2
}

// fakeHookd answers the first request as a busy hookd would (503 with no
// Retry-After, so the example is quick), then stores the event.
func fakeHookd() *httptest.Server {
	var calls atomic.Int32
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"busy","message":"retry shortly"}}`)
			return
		}
		var ev client.NewEvent
		json.NewDecoder(r.Body).Decode(&ev)
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(client.Ack{ID: ev.ID, Deliveries: 2})
	}))
}
