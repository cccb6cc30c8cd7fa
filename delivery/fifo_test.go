package delivery

import (
	"slices"
	"testing"
	"time"

	"hookd/store"
)

// fifoEndpoint is testEndpoint with ordering = "fifo" and a generous
// max_in_flight, which ordering must override.
func fifoEndpoint(t testing.TB, name string) *Endpoint {
	t.Helper()
	ep, err := NewEndpoint(EndpointConfig{
		Name: name, Events: []string{"*"}, Envelope: &StandardEnvelope, Signing: &SigningConfig{Scheme: "none"},
		Policy: &Policy{Schedule: []time.Duration{time.Minute, time.Minute}}, Timeout: time.Second, MaxInFlight: 16,
		MaxResponseBytes: 4096, Ordering: OrderingFIFO,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// queueOrdered puts ordered deliveries for endpoint with the given ids and
// sequence numbers and tells the scheduler, in the order given.
func (h *harness) queueOrdered(endpoint string, ids []string, seqs []uint64) {
	var es []store.QueueEntry
	for i, id := range ids {
		es = append(es, h.st.putOrdered(id, endpoint, seqs[i], h.clock.Now()))
	}
	h.OnQueued(es)
}

// One delivery at a time, lowest sequence number first whatever the order
// the scheduler heard of them, and the next only once the previous
// outcome is committed.
func TestFIFOOneAtATimeAfterCommit(t *testing.T) {
	h := newHarness(t, Options{Workers: 8}, fifoEndpoint(t, "f"))
	h.st.hold = true
	h.queueOrdered("f", []string{"c", "a", "b"}, []uint64{30, 10, 20})
	var sent []string
	for range 3 {
		h.step()
		got := h.dispatched()
		if len(got) != 1 {
			t.Fatalf("dispatched %v after %v: want exactly one", ids(got), sent)
		}
		h.attempt(got[0])
		h.step()
		if more := h.dispatched(); len(more) != 0 {
			t.Fatalf("dispatched %v before %v's outcome was committed", ids(more), ids(got))
		}
		h.st.commit()
		sent = append(sent, ids(got)...)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(sent, want) || !slices.Equal(h.send.sent, want) {
		t.Fatalf("sent %v, want %v", h.send.sent, want)
	}
	h.step()
	if len(h.fifos) != 0 {
		t.Fatalf("FIFOs %v left after the last delivery", h.fifos)
	}
}

// A failing head is retried on its schedule, later than the deliveries
// behind it are due, and holds them back meanwhile; other endpoints go on.
// blocked_since is its first failure, until it is delivered.
func TestFIFOFailingHeadHoldsBack(t *testing.T) {
	h := newHarness(t, Options{Workers: 8}, fifoEndpoint(t, "f"), testEndpoint(t, "n", "", 4, time.Second))
	h.prove("n")
	h.send.status["f"] = 500
	h.queueOrdered("f", []string{"a", "b", "c"}, []uint64{1, 2, 3})
	h.step()
	first := h.dispatched()
	if want := []string{"a"}; !slices.Equal(ids(first), want) {
		t.Fatalf("dispatched %v, want %v", ids(first), want)
	}
	h.attempt(first[0])
	failedAt := h.st.outcomes[0].Attempt.At
	h.queue("n", 3, h.clock.Now(), nil)
	h.step()
	others := h.dispatched()
	if got, want := ids(others), []string{"n0", "n1", "n2"}; !slices.Equal(got, want) {
		t.Fatalf("dispatched %v while f's head waits for its retry, want %v", got, want)
	}
	for _, it := range others {
		h.attempt(it)
	}
	if b := h.Stats()["f"].BlockedSince; !b.Equal(failedAt) {
		t.Fatalf("blocked since %v, want %v", b, failedAt)
	}
	// b and c have been due all along; the head's retry comes a minute
	// later, beyond the horizon, and the scan brings it back.
	h.clock.Advance(40 * time.Second)
	h.needScan = true
	h.step()
	if got := h.dispatched(); len(got) != 0 {
		t.Fatalf("dispatched %v before the head's retry", ids(got))
	}
	h.clock.Advance(20 * time.Second)
	h.step()
	retry := h.dispatched()
	if want := []string{"a"}; !slices.Equal(ids(retry), want) {
		t.Fatalf("at the retry dispatched %v, want %v", ids(retry), want)
	}
	h.send.status["f"] = 200
	h.attempt(retry[0])
	if b := h.Stats()["f"].BlockedSince; !b.IsZero() {
		t.Fatalf("still blocked since %v after the head was delivered", b)
	}
	for _, want := range []string{"b", "c"} {
		h.step()
		got := h.dispatched()
		if !slices.Equal(ids(got), []string{want}) {
			t.Fatalf("dispatched %v, want %s", ids(got), want)
		}
		h.attempt(got[0])
	}
	if want := []string{"a", "n0", "n1", "n2", "a", "b", "c"}; !slices.Equal(h.send.sent, want) {
		t.Fatalf("sent %v, want %v", h.send.sent, want)
	}
}

// A head that fails its last attempt is parked and the next one goes.
func TestFIFOUndeliverableHeadReleasesNext(t *testing.T) {
	ep := fifoEndpoint(t, "f")
	ep.Policy.Schedule = nil // no retries
	h := newHarness(t, Options{Workers: 2}, ep)
	h.send.status["f"] = 500
	h.queueOrdered("f", []string{"a", "b"}, []uint64{1, 2})
	h.step()
	h.attempt(h.dispatched()[0])
	h.step()
	next := h.dispatched()
	if want := []string{"b"}; !slices.Equal(ids(next), want) {
		t.Fatalf("dispatched %v, want %v", ids(next), want)
	}
	if st := h.st.state(store.DeliveryKey("a", "f")); st != store.Undeliverable {
		t.Fatalf("the head is %v", st)
	}
}

// A redelivery joins the tail: redelivering the waiting head lets the
// next one go first, and the old head is not sent at its old retry time.
func TestFIFORedeliveryJoinsTail(t *testing.T) {
	h := newHarness(t, Options{Workers: 4}, fifoEndpoint(t, "f"))
	h.send.status["f"] = 500
	h.queueOrdered("f", []string{"a", "b"}, []uint64{1, 2})
	h.step()
	h.attempt(h.dispatched()[0])
	h.step() // a waits a minute for its retry
	h.send.status["f"] = 200
	h.OnQueued([]store.QueueEntry{h.st.redeliver(store.DeliveryKey("a", "f"), 3, h.clock.Now())})
	var sent []string
	for range 2 {
		h.step()
		got := h.dispatched()
		if len(got) != 1 {
			t.Fatalf("dispatched %v after %v", ids(got), sent)
		}
		sent = append(sent, ids(got)...)
		h.attempt(got[0])
	}
	h.clock.Advance(time.Minute)
	h.needScan = true
	h.step()
	if want := []string{"b", "a"}; !slices.Equal(sent, want) || len(h.dispatched()) != 0 {
		t.Fatalf("sent %v (then %v), want %v", sent, h.send.sent, want)
	}
}

// After a start the scheduler finds the ordered endpoints and their heads
// in the store, with no word from ingest.
func TestFIFOHeadsFoundAtStart(t *testing.T) {
	h := newHarness(t, Options{Workers: 4}, fifoEndpoint(t, "f"), fifoEndpoint(t, "g"))
	h.st.putOrdered("f2", "f", 2, h.clock.Now())
	h.st.putOrdered("f1", "f", 1, h.clock.Now())
	h.st.putOrdered("g1", "g", 7, h.clock.Now().Add(-time.Hour))
	h.step()
	got := ids(h.dispatched())
	slices.Sort(got)
	if want := []string{"f1", "g1"}; !slices.Equal(got, want) {
		t.Fatalf("dispatched %v at start, want %v", got, want)
	}
}

// Disabling a FIFO endpoint parks its deliveries; its waiting head is let
// go at once, not at its retry time, and blocked_since is cleared.
func TestFIFODisabledDropsWaitingHead(t *testing.T) {
	h := newHarness(t, Options{Workers: 4}, fifoEndpoint(t, "f"))
	h.send.status["f"] = 500
	h.queueOrdered("f", []string{"a", "b"}, []uint64{1, 2})
	h.step()
	h.attempt(h.dispatched()[0])
	h.step()
	if err := h.SetDisabled(t.Context(), "f", true, "disabled by operator", store.ByOperator); err != nil {
		t.Fatal(err)
	}
	h.step()
	if len(h.fifos) != 0 || len(h.far) != 0 || !h.Stats()["f"].BlockedSince.IsZero() {
		t.Fatalf("after parking: FIFOs %v, far heads %d, blocked since %v", h.fifos, len(h.far), h.Stats()["f"].BlockedSince)
	}
}

// An endpoint removed by a reload has its deliveries parked by the daemon;
// added again, its new deliveries do not wait for the old head's retry.
func TestFIFOReAddedEndpointDropsParkedHead(t *testing.T) {
	ep := fifoEndpoint(t, "f")
	h := newHarness(t, Options{Workers: 4}, ep)
	h.send.status["f"] = 500
	h.queueOrdered("f", []string{"a"}, []uint64{1})
	h.step()
	h.attempt(h.dispatched()[0])
	h.step() // a waits a minute for its retry
	h.UpdateTable(func(t *Table) *Table { return t.WithConfig(nil) })
	if _, err := h.st.ParkEndpoint(t.Context(), "f", "endpoint removed"); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.UpdateTable(func(t *Table) *Table { return t.WithConfig([]*Endpoint{ep}) }, ep.ID)
	h.send.status["f"] = 200
	h.queueOrdered("f", []string{"b"}, []uint64{2})
	h.step()
	if got := ids(h.dispatched()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("dispatched %v after the endpoint came back, want [b]", got)
	}
}
