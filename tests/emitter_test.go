package tests

import (
	"context"
	"errors"
	"flag"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/client"
	"hookd/daemon"
)

// The outage TestEmitterRidesOutOutage drives; the README's figures come
// from a longer one: go test ./tests -run TestEmitterRidesOutOutage -v -args -outage=10s -outage-max-wait=0
var (
	outageFor     = flag.Duration("outage", time.Second, "TestEmitterRidesOutOutage: how long the daemon's storage fails (ingest answers 503)")
	outageMaxWait = flag.Duration("outage-max-wait", 500*time.Millisecond, "TestEmitterRidesOutOutage: the emitters' client.Options.MaxRetryWait (0: honour Retry-After in full)")
)

// An emitter on client.Ingest keeps sending through a storage outage
// (every commit fails, so ingest answers 503 storage_unavailable): every
// event it sends is acknowledged once the daemon recovers, stored once and
// delivered.
func TestEmitterRidesOutOutage(t *testing.T) {
	rcv := NewReceiver(t)
	var failing atomic.Bool
	d := MustOpenDaemonExtra(t, Extra{}, endpoint("a", rcv.URL+"/a", `["*"]`, `schedule = ["100ms", "100ms", "100ms", "1s", "1s", "1s"]`+"\n"+standardSigning(testSecret)), func(d *daemon.Daemon) {
		d.StoreHooks.BeforeCommit = func() error {
			if failing.Load() {
				return errors.New("injected: the disk cannot be written")
			}
			return nil
		}
	})
	ingest := client.NewIngest(d.IngestAddr(), client.Options{MaxRetryWait: *outageMaxWait})

	// An emitter that makes 100 events a second, each sent on its own
	// goroutine as it happens: during the outage they pile up, retrying.
	var (
		mu                     sync.Mutex
		sent, acked, dupAcks   int
		failed                 []error
		ackedAt                = map[string]time.Time{}
		madeAt                 = map[string]time.Time{}
		outageStart, outageEnd time.Time
		firstAckAfter          time.Duration
		stop                   = make(chan struct{})
		wg                     sync.WaitGroup
	)
	send := func(n int) {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), *outageFor+time.Minute)
		defer cancel()
		ev := client.NewEvent{ID: client.NewEventID(), Type: "t", Data: n}
		made := time.Now()
		ack, err := ingest.Send(ctx, ev)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = append(failed, err)
			return
		}
		acked++
		ackedAt[ack.ID], madeAt[ack.ID] = time.Now(), made
		if ack.Duplicate {
			dupAcks++
		}
		if !outageEnd.IsZero() && firstAckAfter == 0 {
			firstAckAfter = time.Since(outageEnd)
		}
	}
	generated := make(chan struct{}) // closed when no more events are made
	go func() {
		defer close(generated)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock()
			sent++
			mu.Unlock()
			wg.Add(1)
			go send(n)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	failing.Store(true)
	outageStart = time.Now()
	mu.Unlock()
	time.Sleep(*outageFor)
	mu.Lock()
	failing.Store(false)
	outageEnd = time.Now()
	mu.Unlock()
	time.Sleep(time.Second)
	close(stop)
	<-generated
	wg.Wait()

	if len(failed) > 0 || acked != sent {
		t.Fatalf("sent %d, acknowledged %d, errors %v", sent, acked, failed)
	}
	eventually(t, "every acknowledged event delivered", func() bool {
		seen := map[string]bool{}
		for _, r := range rcv.Requests("/a") {
			seen[r.Header.Get("webhook-id")] = true
		}
		for id := range ackedAt {
			if !seen[id] {
				return false
			}
		}
		return true
	})
	got := map[string]int{}
	for _, r := range rcv.Requests("/a") {
		got[r.Header.Get("webhook-id")]++
	}
	var backlog time.Duration // until the last event made before recovery was acknowledged
	for id, at := range ackedAt {
		if madeAt[id].Before(outageEnd) {
			backlog = max(backlog, at.Sub(outageEnd))
		}
	}
	again, againBefore := 0, 0
	for id, n := range got {
		if n > 1 {
			again++
			if ackedAt[id].Before(outageStart) {
				againBefore++
			}
		}
	}
	// Figures for the README. Receiving an event twice is allowed
	// (at-least-once: an attempt made while the outcome could not be
	// committed is made again); losing one is not.
	t.Logf("outage %s, MaxRetryWait %s: sent %d events, %d acknowledged (%d as duplicates of a lost answer), %d errors; "+
		"first acknowledgement %s after recovery, the last event made before it %s after; receiver got %d distinct, %d of them more than once (%d acknowledged before the outage)",
		*outageFor, *outageMaxWait, sent, acked, dupAcks, len(failed), firstAckAfter.Round(time.Millisecond), backlog.Round(time.Millisecond),
		len(got), again, againBefore)
	if len(got) != acked {
		t.Fatalf("receiver got %d distinct events, %d were acknowledged", len(got), acked)
	}
}

// A batch over the ingest listener's body limit (64 × max_event_bytes) is
// refused before its body is sent (the client asks first), and SendBatch
// sends it again in halves: every event is stored, none twice. Refused
// mid-body, the request used to end in a reset the client took for hookd
// down, retrying the same batch.
func TestSendBatchOverTheBodyLimitIsSplit(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{Ingest: `max_event_bytes = "2KiB"`}, endpoint("a", rcv.URL+"/a", `["*"]`, ""), nil)
	events := make([]client.NewEvent, 1000)
	for i := range events {
		events[i] = client.NewEvent{Type: "t", Data: strings.Repeat("x", 200)}
	}
	before := counterValue(t, d, "hookd_ingest_rejected_total", "413")
	res, err := client.NewIngest(d.IngestAddr(), client.Options{}).SendBatch(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !r.Stored() || r.Duplicate != nil && *r.Duplicate {
			t.Fatalf("event %d: %+v", i, r)
		}
	}
	if after := counterValue(t, d, "hookd_ingest_rejected_total", "413"); after == before {
		t.Fatal("the batch was never over the limit: the test tests nothing")
	}
	rcv.Wait(t, "/a", 1000)
}
