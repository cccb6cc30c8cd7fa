package tests

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd/store"
)

// idReceiver counts 2xx answers per webhook-id.
type idReceiver struct {
	*Receiver
	mu  sync.Mutex
	oks map[string]int
}

func newIDReceiver(t *testing.T, failPercent int) *idReceiver {
	r := &idReceiver{Receiver: NewReceiver(t), oks: map[string]int{}}
	r.Handle("/hook", func(_ int, req *http.Request, w http.ResponseWriter) {
		if rand.IntN(100) < failPercent {
			w.WriteHeader(500)
			return
		}
		r.mu.Lock()
		r.oks[req.Header.Get("webhook-id")]++
		r.mu.Unlock()
		w.WriteHeader(200)
	})
	return r
}

// missing returns how many of ids never got a 2xx, and how many ids got
// more than one.
func (r *idReceiver) missing(ids []string) (missing, dup int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		switch n := r.oks[id]; {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
	}
	return missing, dup
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// kill -9 torture: the daemon is SIGKILLed at random moments under
// concurrent ingest and delivery, and restarted on the same database.
// Every acknowledged id must reach the receiver, and the database must
// pass bbolt's consistency check. HOOKD_TORTURE_CYCLES runs it longer.
func TestKill9Torture(t *testing.T) {
	cycles := envInt("HOOKD_TORTURE_CYCLES", 5)
	rcv := newIDReceiver(t, 5)
	dir := t.TempDir()
	p := StartProc(t, dir, endpoint("a", rcv.URL+"/hook", `["*"]`, "schedule = [\"50ms\", \"100ms\", \"200ms\", \"400ms\", \"800ms\", \"1s\", \"1s\", \"1s\"]\n"+standardSigning(testSecret)))
	var (
		mu    sync.Mutex
		acked []string
	)
	for cycle := range cycles {
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					id := fmt.Sprintf("c%d-w%d-%d", cycle, w, i)
					status, _, err := tryPost(p.ingest, fmt.Sprintf(`{"id":%q,"type":"t","data":{"n":%d}}`, id, i))
					if err != nil {
						return // the daemon died under us
					}
					if status == 202 || status == 200 {
						mu.Lock()
						acked = append(acked, id)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(150+rand.IntN(500)) * time.Millisecond)
		p.cmd.Process.Kill()
		<-p.exited
		stop.Store(true)
		wg.Wait()
		p.Restart()
	}
	mu.Lock()
	ids := append([]string(nil), acked...)
	mu.Unlock()
	eventually(t, "every acknowledged id delivered", func() bool {
		m, _ := rcv.missing(ids)
		return m == 0
	})
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after the last cycle", code)
	}
	counts, err := store.Inspect(filepath.Join(dir, "hookd.db"))
	if err != nil {
		t.Fatalf("consistency check: %v", err)
	}
	_, dup := rcv.missing(ids)
	t.Logf("kill -9 cycles: %d; acknowledged: %d; delivered: %d; delivered more than once: %d; db: %v",
		cycles, len(ids), len(ids), dup, counts)
}

// Stop with 10,000 deliveries pending at mixed due times; after a restart
// all are delivered, and a graceful stop delivers none twice.
func TestRestartUnderBacklog(t *testing.T) {
	rcv := NewReceiver(t)
	var mu sync.Mutex
	oks := map[string]int{}
	var release atomic.Bool
	rcv.Handle("/hook", func(n int, req *http.Request, w http.ResponseWriter) {
		id := req.Header.Get("webhook-id")
		// Before the restart: every other event fails once, so it waits for
		// a retry (due later); the others are due now.
		if !release.Load() {
			if strings.HasSuffix(id, "1") {
				w.WriteHeader(503)
				return
			}
			time.Sleep(20 * time.Millisecond) // slow: most stay due now
		}
		mu.Lock()
		oks[id]++
		mu.Unlock()
		w.WriteHeader(200)
	})
	cfg := endpoint("a", rcv.URL+"/hook", `["*"]`, "schedule = [\"1s\", \"3s\"]\njitter = 0.5\nmax_in_flight = 8\n"+standardSigning(testSecret))
	d := MustOpenDaemon(t, cfg)
	var ids []string
	for b := range 10 {
		var sb strings.Builder
		sb.WriteString("[")
		for i := range 1000 {
			id := fmt.Sprintf("b%d-%d", b, i)
			ids = append(ids, id)
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `{"id":%q,"type":"t","data":{}}`, id)
		}
		sb.WriteString("]")
		status, out, _ := d.Post("/v1/events/batch", "application/json", sb.String())
		if status != 200 {
			t.Fatalf("batch: %d %v", status, out)
		}
	}
	_, eps := d.Admin("GET", "/v1/endpoints", "")
	pending := eps["items"].([]any)[0].(map[string]any)["pending"].(float64)
	if pending < 5000 {
		t.Fatalf("only %v pending at the stop", pending)
	}
	t.Logf("stopping with %v of %d deliveries pending", pending, len(ids))
	d = d.Restart(cfg)
	release.Store(true)
	eventually(t, "10,000 deliveries after restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(oks) == len(ids)
	})
	d.Close()
	mu.Lock()
	defer mu.Unlock()
	for id, n := range oks {
		if n > 1 {
			t.Errorf("%s delivered %d times across a graceful restart", id, n)
		}
	}
}
