package tests

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// orderReceiver answers a FIFO endpoint: it fails some attempts, chosen by
// a seeded generator (reproducible), and records every arrival's index (ids
// are "e<index>", posted in index order).
type orderReceiver struct {
	*Receiver
	mu       sync.Mutex
	rnd      *rand.Rand
	failPct  int
	arrivals []int        // every request, in arrival order
	ok       map[int]int  // answered 2xx, how often
	attempts map[int]int  // per index
	failFor  map[int]bool // always fail these (a blocked head)
}

func newOrderReceiver(t *testing.T, seed uint64, failPct int) *orderReceiver {
	r := &orderReceiver{Receiver: NewReceiver(t), rnd: rand.New(rand.NewPCG(seed, seed)), failPct: failPct,
		ok: map[int]int{}, attempts: map[int]int{}, failFor: map[int]bool{}}
	r.Handle("/fifo", func(_ int, req *http.Request, w http.ResponseWriter) {
		n, err := strconv.Atoi(strings.TrimPrefix(req.Header.Get("webhook-id"), "e"))
		if err != nil {
			w.WriteHeader(200) // a test event
			return
		}
		r.mu.Lock()
		r.arrivals = append(r.arrivals, n)
		r.attempts[n]++
		// At most three failures in a row, so the schedule is never exhausted.
		fail := r.failFor[n] || (r.attempts[n] <= 3 && r.rnd.IntN(100) < r.failPct)
		if !fail {
			r.ok[n]++
		}
		r.mu.Unlock()
		if fail {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	})
	return r
}

// check fails the test unless every arrival so far is in order: no index
// arrives after a higher one (so never head, next, head), and the first
// arrivals are exactly 0..n-1. It returns how many arrivals repeated the
// previous index.
func (r *orderReceiver) check(t *testing.T, n int) (repeats int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var first []int
	for i, a := range r.arrivals {
		if i > 0 && a < r.arrivals[i-1] {
			t.Fatalf("arrival %d is e%d after e%d: out of order (arrivals %v…)", i, a, r.arrivals[i-1], r.arrivals[max(0, i-5):i+1])
		}
		if i > 0 && a == r.arrivals[i-1] {
			repeats++
			continue
		}
		first = append(first, a)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(first, want) {
		t.Fatalf("first arrivals %d, want e0..e%d in order", len(first), n-1)
	}
	return repeats
}

func (r *orderReceiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ok)
}

// twice counts the events answered 2xx more than once.
func (r *orderReceiver) twice() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range r.ok {
		if k > 1 {
			n++
		}
	}
	return n
}

// waitDelivered waits until n events were delivered. A FIFO endpoint
// drains a backlog one event at a time, so rather than a fixed deadline
// it gives up only when no event was delivered for 20s.
func (r *orderReceiver) waitDelivered(t *testing.T, n int) {
	t.Helper()
	last, since := -1, time.Now()
	for {
		got := r.delivered()
		if got >= n {
			return
		}
		if got != last {
			last, since = got, time.Now()
		}
		if time.Since(since) > 20*time.Second {
			t.Fatalf("%d of %d events delivered; none for 20s", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fifoEndpoint is an ordered endpoint on a short schedule, signed so the
// receiver reads each event's id from webhook-id.
func fifoEndpoint(name, url, schedule string, extra ...string) string {
	return endpoint(name, url, `["*"]`, "ordering = \"fifo\"\nschedule = "+schedule+"\n"+strings.Join(extra, "\n")+"\n"+standardSigning(testSecret))
}

const fifoSchedule = `["10ms", "20ms", "20ms", "20ms", "20ms", "20ms"]`

// 1,000 events to a FIFO endpoint whose receiver fails at random (seeded)
// arrive strictly in order: every id, first arrivals in acknowledgement
// order, a failing head retried until it is delivered before the next.
func TestFIFOOrderWithFailures(t *testing.T) {
	const n = 1000
	rcv := newOrderReceiver(t, 16, 20)
	d := MustOpenDaemon(t, fifoEndpoint("crm", rcv.URL+"/fifo", fifoSchedule))
	// Batches are acknowledged in order, and so are the events of one.
	for b := 0; b < n; b += 100 {
		var items []string
		for i := b; i < b+100; i++ {
			items = append(items, fmt.Sprintf(`{"id":"e%d","type":"t","data":{"n":%d}}`, i, i))
		}
		if status, out, _ := d.Post("/v1/events/batch", "application/json", "["+strings.Join(items, ",")+"]"); status != 200 {
			t.Fatalf("batch: %d %v", status, out)
		}
	}
	rcv.waitDelivered(t, n)
	rcv.check(t, n)
	rcv.mu.Lock()
	retried := len(rcv.arrivals) - n
	rcv.mu.Unlock()
	if retried == 0 {
		t.Fatal("no attempt failed: the test shows nothing about failing heads")
	}
	t.Logf("%d events, %d failed attempts retried, all in order", n, retried)
}

// A FIFO endpoint whose head keeps failing holds back its own deliveries
// only: a normal endpoint's events are all delivered meanwhile, and the
// endpoint view shows since when it is blocked.
func TestBlockedFIFODoesNotHoldOthers(t *testing.T) {
	rcv := newOrderReceiver(t, 1, 0)
	rcv.failFor[0] = true
	other := NewReceiver(t)
	d := MustOpenDaemon(t, fifoEndpoint("crm", rcv.URL+"/fifo", `["50ms", "1h"]`)+
		endpoint("all", other.URL+"/all", `["*"]`, ""))
	for i := range 3 {
		d.Event(fmt.Sprintf(`{"id":"e%d","type":"t","data":{}}`, i))
	}
	eventually(t, "the head's retry", func() bool { rcv.mu.Lock(); defer rcv.mu.Unlock(); return rcv.attempts[0] == 2 })
	for i := 3; i < 50; i++ {
		d.Event(fmt.Sprintf(`{"id":"e%d","type":"t","data":{}}`, i))
	}
	other.Wait(t, "/all", 50)
	rcv.mu.Lock()
	arrivals := slices.Clone(rcv.arrivals)
	rcv.mu.Unlock()
	if slices.ContainsFunc(arrivals, func(a int) bool { return a != 0 }) {
		t.Fatalf("the FIFO endpoint got %v while its head was failing", arrivals)
	}
	_, eps := d.Admin("GET", "/v1/endpoints", "")
	var crm map[string]any
	for _, e := range eps["items"].([]any) {
		if e.(map[string]any)["name"] == "crm" {
			crm = e.(map[string]any)
		}
	}
	if crm["ordering"] != "fifo" || crm["blocked_since"] == nil || crm["pending"] != 50.0 || crm["in_flight"] != 0.0 {
		t.Fatalf("endpoint view %v: want fifo, blocked_since set, 50 pending, none in flight", crm)
	}

	// Redelivering the blocked head moves it to the tail: the next one goes.
	rcv.mu.Lock()
	rcv.failFor[0] = false
	rcv.mu.Unlock()
	if status, out := d.Admin("POST", "/v1/events/e0/redeliver", `{"endpoint":"crm"}`); status != 202 {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	eventually(t, "all 50 delivered", func() bool { return rcv.delivered() == 50 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	firsts := []int{}
	for i, a := range rcv.arrivals {
		if i == 0 || a != rcv.arrivals[i-1] {
			firsts = append(firsts, a)
		}
	}
	if firsts[0] != 0 || firsts[1] != 1 || firsts[len(firsts)-1] != 0 || len(firsts) != 51 {
		t.Fatalf("arrivals %v: want e0 (failing), e1..e49, then e0 from the tail", firsts)
	}
}

// Order holds across kill -9, SIGHUP and SIGTERM: a hookd process gets
// events posted one after the other (so acknowledgement order is index
// order) for a FIFO endpoint whose receiver fails at random, while it is
// killed, reloaded and stopped in turn and restarted. No event arrives
// after a later one: after a crash only the last head may come again.
// HOOKD_FIFO_CYCLES runs more cycles.
func TestFIFOOrderAcrossCrashes(t *testing.T) {
	cycles := envInt("HOOKD_FIFO_CYCLES", 3)
	rcv := newOrderReceiver(t, 9, 20)
	p := StartProc(t, t.TempDir(), fifoEndpoint("crm", rcv.URL+"/fifo", fifoSchedule))
	var (
		mu    sync.Mutex
		addr  = p.ingest
		acked int
	)
	stop := make(chan struct{})
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		for i := 0; ; i++ {
			body := fmt.Sprintf(`{"id":"e%d","type":"t","data":{"n":%d}}`, i, i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				a := addr
				mu.Unlock()
				// Resent with the same id until acknowledged: a request cut
				// off by the kill may have been logged (then it is a
				// duplicate, with its first place) or not.
				if status, _, err := tryPost(a, body); err == nil && (status == 202 || status == 200) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			mu.Lock()
			acked = i + 1
			mu.Unlock()
		}
	}()
	rnd := rand.New(rand.NewPCG(3, 3))
	stops := 0 // kills and SIGTERMs: each may repeat the head it cut off
	for c := range cycles {
		time.Sleep(time.Duration(200+rnd.IntN(400)) * time.Millisecond)
		switch c % 3 {
		case 0:
			p.cmd.Process.Kill()
			<-p.exited
			stops++
			p.Restart()
		case 1:
			p.cmd.Process.Signal(syscall.SIGHUP)
			eventually(t, "reloaded", func() bool { _, ok := p.findLog("config reloaded"); return ok })
		case 2:
			if code := p.Stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d after SIGTERM", code)
			}
			stops++
			p.Restart()
		}
		mu.Lock()
		addr = p.ingest
		mu.Unlock()
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-posted
	mu.Lock()
	n := acked
	mu.Unlock()
	rcv.waitDelivered(t, n)
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// An event whose request was cut off unanswered at the stop may have
	// been logged all the same: n or n+1 events.
	if got := rcv.delivered(); got > n {
		n = got
	}
	repeats := rcv.check(t, n)
	// Only the head a stop cut off can be delivered again: the next one
	// is sent after the head's outcome is committed.
	if twice := rcv.twice(); twice > stops+1 { // +1: the final SIGTERM
		t.Fatalf("%d events delivered twice across %d stops", twice, stops+1)
	}
	t.Logf("%d cycles (kill -9, SIGHUP, SIGTERM); %d events in order; %d arrivals repeated the one before (retries, heads sent again after a stop); %d delivered twice",
		cycles, n, repeats, rcv.twice())
}
