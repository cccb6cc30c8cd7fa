// Command loadgen measures hookd on this machine: durable ingest
// throughput and acknowledgement latency, end-to-end delivery throughput
// (it runs its own receiver), and the daemon's peak RSS. It only ever
// targets loopback, is bounded by -n and -timeout, and stops every process
// it starts.
//
//	loadgen -n 200000 -c 64 -size 256 -pid $(pgrep hookd)   # against a running daemon
//	loadgen -noop -n 200000 -c 64 -size 256                 # baseline: a no-op fasthttp handler
//	loadgen -n 1000000 -c 8 -batch 500 -pid $(pgrep hookd)  # through POST /v1/events/batch
//	loadgen -n 400000 -c 64 -during 'hookd backup -admin 127.0.0.1:8526 -out /tmp/b.db'  # ack latency during a backup
//	loadgen -n 3000 -c 8 -latency 1ms -pid $(pgrep hookd)    # a receiver that takes 1 ms to answer
//
// The daemon must deliver to -receiver (see tests/loadgen/hookd.toml). It
// prints one JSON line.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

type result struct {
	Mode       string  `json:"mode"`
	Events     int     `json:"events"`
	Conns      int     `json:"conns"`
	Size       int     `json:"size_bytes"`
	Batch      int     `json:"batch,omitempty"`
	Errors     int64   `json:"errors"`
	IngestEPS  float64 `json:"ingest_eps"`
	P50Ms      float64 `json:"p50_ack_ms"`
	P99Ms      float64 `json:"p99_ack_ms"`
	Delivered  int64   `json:"delivered,omitempty"`
	E2EEPS     float64 `json:"e2e_eps,omitempty"`
	PeakRSSMB  float64 `json:"peak_rss_mb,omitempty"`
	IngestSecs float64 `json:"ingest_secs"`

	// With -during: the command's run time and exit status, and the
	// acknowledgement latency of the requests sent while it ran and of the
	// others.
	DuringSecs   float64 `json:"during_secs,omitempty"`
	DuringStatus string  `json:"during_status,omitempty"`
	DuringN      int     `json:"during_requests,omitempty"`
	DuringP50Ms  float64 `json:"during_p50_ack_ms,omitempty"`
	DuringP99Ms  float64 `json:"during_p99_ack_ms,omitempty"`
	DuringMaxMs  float64 `json:"during_max_ack_ms,omitempty"`
	OutsideP99Ms float64 `json:"outside_p99_ack_ms,omitempty"`
	DuringOutput string  `json:"during_output,omitempty"`
}

// sample is one request: when it was sent (since the start) and how long
// its answer took.
type sample struct{ at, lat time.Duration }

func main() {
	target := flag.String("target", "127.0.0.1:8525", "ingest address (loopback only)")
	n := flag.Int("n", 100000, "events to post")
	c := flag.Int("c", 64, "concurrent keep-alive connections")
	size := flag.Int("size", 256, "bytes of data per event")
	recv := flag.String("receiver", "127.0.0.1:9100", "address of loadgen's own receiver; empty = no e2e measurement")
	pid := flag.Int("pid", 0, "daemon PID, to report its peak RSS")
	noop := flag.Bool("noop", false, "measure a no-op fasthttp POST handler instead (started as a child process)")
	serveNoop := flag.String("serve-noop", "", "internal: run the no-op handler on this address")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	batch := flag.Int("batch", 0, "post arrays of this many events to /v1/events/batch (0 = single events)")
	status := flag.Int("status", 200, "HTTP status loadgen's receiver answers (500 builds a retry backlog)")
	during := flag.String("during", "", "shell command to run once while the load runs (e.g. a backup); reports the ack latency while it ran")
	duringAfter := flag.Duration("during-after", 5*time.Second, "when to start -during")
	tenants := flag.Int("tenants", 0, "each event carries a random tenant t0..tN-1 (0 = none)")
	admin := flag.String("admin", "127.0.0.1:8526", "admin address, for -create-endpoints, -patch-endpoints and -churn (loopback only)")
	create := flag.Int("create-endpoints", 0, "create this many managed endpoints (tenant t<i>, delivering to -receiver) through the admin API with -c connections, report, and exit")
	patch := flag.Int("patch-endpoints", 0, "PATCH the first this many endpoints of -create-endpoints, each once, with -c connections, report, and exit")
	churn := flag.Float64("churn", 0, "PATCH this many managed endpoints (ep-t<i>, from -create-endpoints) per second while the load runs")
	noWait := flag.Bool("no-wait", false, "do not wait for the deliveries after the ingest (e2e then counts those made by its end)")
	latency := flag.Duration("latency", 0, "how long loadgen's receiver takes to answer (e.g. 1ms: ordered endpoints wait for each answer)")
	flag.Parse()
	if *create > 0 {
		createEndpoints(*admin, *recv, *create, *c)
		return
	}
	if *patch > 0 {
		patchEndpoints(*admin, *patch, *c)
		return
	}

	if *serveNoop != "" {
		runNoop(*serveNoop)
		return
	}
	if !loopback(*target) {
		fatal("refusing non-loopback target %s", *target)
	}
	res := result{Mode: "hookd", Events: *n, Conns: *c, Size: *size, Batch: *batch}
	if *noop {
		res.Mode = "noop"
		addr, stop := startNoop()
		defer stop()
		*target, *recv, *pid = addr, "", 0
	}

	var delivered atomic.Int64
	var lastDelivery atomic.Int64
	if *recv != "" {
		if !loopback(*recv) {
			fatal("refusing non-loopback receiver %s", *recv)
		}
		ln, err := net.Listen("tcp", *recv)
		if err != nil {
			fatal("receiver: %v", err)
		}
		srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			if *latency > 0 {
				time.Sleep(*latency)
			}
			ctx.SetStatusCode(*status)
			delivered.Add(1)
			lastDelivery.Store(time.Now().UnixNano())
		}}
		go srv.Serve(ln)
		defer srv.Shutdown()
	}

	body, path, per, okStatus := eventBody(*size), "/v1/events", 1, 202
	if *batch > 0 {
		body, path, per, okStatus = batchBody(*size, *batch), "/v1/events/batch", *batch, 200
	}
	var acked atomic.Int64
	client := &fasthttp.HostClient{Addr: *target, MaxConns: *c, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	var next atomic.Int64
	var errs atomic.Int64
	lat := make([][]sample, *c)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(*timeout)
	var window struct{ from, to time.Duration }
	duringDone := make(chan struct{})
	if *during != "" {
		go func() {
			defer close(duringDone)
			time.Sleep(*duringAfter)
			window.from = time.Since(start)
			out, err := exec.Command("sh", "-c", *during).CombinedOutput()
			window.to = time.Since(start)
			res.DuringStatus, res.DuringOutput = "ok", strings.TrimSpace(string(out))
			if err != nil {
				res.DuringStatus = err.Error()
			}
		}()
	} else {
		close(duringDone)
	}
	churnDone := make(chan struct{})
	if *churn > 0 {
		go runChurn(*admin, *churn, *tenants, churnDone)
	}
	defer close(churnDone)
	for w := range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + *target + path)
			req.Header.SetMethod("POST")
			req.Header.SetContentType("application/json")
			req.SetBody(body)
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var tb []byte // reused: the client's work per event should not depend on the mode
			for next.Add(int64(per)) <= int64(*n) && time.Now().Before(deadline) {
				if *tenants > 0 && per == 1 {
					tb = tenantBody(tb[:0], body, rng.IntN(*tenants))
					req.SetBody(tb)
				}
				t0 := time.Now()
				err := client.Do(req, resp)
				lat[w] = append(lat[w], sample{at: t0.Sub(start), lat: time.Since(t0)})
				switch {
				case err != nil || resp.StatusCode() != okStatus:
					errs.Add(int64(per))
				case per > 1 && !*noop: // batch: count the items acknowledged with 202
					ok := int64(bytes.Count(resp.Body(), []byte(`"status":202`)))
					acked.Add(ok)
					errs.Add(int64(per) - ok)
				default:
					acked.Add(int64(per))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	<-duringDone
	var all, in, outside []time.Duration
	for _, l := range lat {
		for _, x := range l {
			all = append(all, x.lat)
			if *during != "" && x.at >= window.from && x.at < window.to {
				in = append(in, x.lat)
			} else {
				outside = append(outside, x.lat)
			}
		}
	}
	slices.Sort(all)
	if *during != "" {
		slices.Sort(in)
		slices.Sort(outside)
		res.DuringSecs = (window.to - window.from).Seconds()
		res.DuringN = len(in)
		if len(in) > 0 {
			res.DuringP50Ms, res.DuringP99Ms, res.DuringMaxMs = ms(in[len(in)/2]), ms(in[len(in)*99/100]), ms(in[len(in)-1])
		}
		if len(outside) > 0 {
			res.OutsideP99Ms = ms(outside[len(outside)*99/100])
		}
	}
	res.Errors = errs.Load()
	res.IngestSecs = elapsed.Seconds()
	res.IngestEPS = float64(acked.Load()) / elapsed.Seconds()
	if len(all) > 0 {
		res.P50Ms = ms(all[len(all)/2])
		res.P99Ms = ms(all[len(all)*99/100])
	}

	if *recv != "" {
		want := acked.Load()
		for !*noWait && delivered.Load() < want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		res.Delivered = delivered.Load()
		if last := lastDelivery.Load(); last > 0 {
			res.E2EEPS = float64(res.Delivered) / time.Unix(0, last).Sub(start).Seconds()
		}
	}
	if *pid > 0 {
		res.PeakRSSMB = peakRSS(*pid)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// tenantBody appends to dst body with "tenant":"t<i>" as its first member.
func tenantBody(dst, body []byte, i int) []byte {
	dst = strconv.AppendInt(append(dst, `{"tenant":"t`...), int64(i), 10)
	return append(append(dst, `",`...), body[1:]...)
}

// createEndpoints creates n managed endpoints ep-t<i> of tenant t<i>
// through the admin API over c connections and prints how long it took.
func createEndpoints(admin, recv string, n, c int) {
	adminOps("create-endpoints", admin, n, c, 201, func(i int, req *fasthttp.Request) {
		req.SetRequestURI("http://" + admin + "/v1/endpoints")
		req.Header.SetMethod("POST")
		req.SetBodyString(fmt.Sprintf(`{"name":"ep-t%d","tenant":"t%d","url":"http://%s/hook","events":["*"]}`, i, i, recv))
	})
}

// patchEndpoints PATCHes the endpoints -create-endpoints made, each once:
// how many changes of different endpoints the daemon makes a second.
func patchEndpoints(admin string, n, c int) {
	adminOps("patch-endpoints", admin, n, c, 200, func(i int, req *fasthttp.Request) {
		req.SetRequestURI(fmt.Sprintf("http://%s/v1/endpoints/ep-t%d", admin, i))
		req.Header.SetMethod("PATCH")
		req.SetBodyString(fmt.Sprintf(`{"description":"patched %d"}`, i))
	})
}

// adminOps sends n admin requests, the i-th made by set, over c
// connections, and reports their rate and latency; an answer other than
// want is an error.
func adminOps(mode, admin string, n, c, want int, set func(i int, req *fasthttp.Request)) {
	if !loopback(admin) {
		fatal("refusing non-loopback admin %s", admin)
	}
	client := &fasthttp.HostClient{Addr: admin, MaxConns: c}
	var next, errs atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetContentType("application/json")
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				set(int(i), req)
				t0 := time.Now()
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != want {
					errs.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	out, _ := json.Marshal(map[string]any{"mode": mode, "endpoints": n, "conns": c, "errors": errs.Load(),
		"secs": el.Seconds(), "per_sec": float64(n) / el.Seconds(), "p50_ms": ms(lat[n/2]), "p99_ms": ms(lat[n*99/100])})
	fmt.Println(string(out))
}

// runChurn PATCHes random managed endpoints at rate per second until done.
func runChurn(admin string, rate float64, n int, done <-chan struct{}) {
	if n == 0 {
		fatal("-churn needs -tenants (the endpoints ep-t<i> made by -create-endpoints)")
	}
	client := &fasthttp.HostClient{Addr: admin}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		case <-t.C:
		}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(fmt.Sprintf("http://%s/v1/endpoints/ep-t%d", admin, rand.IntN(n)))
		req.Header.SetMethod("PATCH")
		req.Header.SetContentType("application/json")
		req.SetBodyString(fmt.Sprintf(`{"description":"churn %d"}`, i))
		client.Do(req, resp)
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}

func eventBody(size int) []byte {
	data := strings.Repeat("x", max(size-12, 0))
	return []byte(fmt.Sprintf(`{"type":"load.test","data":{"text":%q}}`, data))
}

// batchBody is an array of k events; loadgen reuses it, so each event
// gets a generated id from hookd.
func batchBody(size, k int) []byte {
	ev := eventBody(size)
	b := []byte{'['}
	for i := range k {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev...)
	}
	return append(b, ']')
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// peakRSS reads the process's high-water RSS (VmHWM) in MB.
func peakRSS(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// startNoop runs the baseline handler in a child process (so it does not
// share the load generator's scheduler, like the daemon) and returns its
// address and a function that kills it by PID.
func startNoop() (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal("%v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	self, _ := os.Executable()
	cmd := exec.Command(self, "-serve-noop", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fatal("start noop: %v", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	fatal("noop server did not start")
	return "", nil
}

var noopReply = []byte(`{"id":"evt_noop","duplicate":false,"deliveries":1}`)

func runNoop(addr string) {
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsPost() || !bytes.HasPrefix(ctx.Path(), []byte("/v1/events")) {
			ctx.SetStatusCode(404)
			return
		}
		if bytes.HasSuffix(ctx.Path(), []byte("/batch")) {
			ctx.SetStatusCode(200)
			ctx.SetBody(noopReply)
			return
		}
		ctx.SetStatusCode(202)
		ctx.SetContentType("application/json")
		ctx.SetBody(noopReply)
	}}
	if err := srv.ListenAndServe(addr); err != nil {
		fatal("%v", err)
	}
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(1)
}
