package tests

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawServer accepts connections on loopback and hands each to fn after
// reading the request headers.
func rawServer(t *testing.T, host string, fn func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-done; c.Close() }()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				fn(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// Misbehaving receivers each end as a recorded failed attempt within the
// timeout, memory stays bounded, and a healthy endpoint keeps being served
// meanwhile.
func TestReceiverFaults(t *testing.T) {
	hang := rawServer(t, "127.0.0.1", func(c net.Conn) { time.Sleep(5 * time.Second) })
	drip := rawServer(t, "127.0.0.1", func(c net.Conn) {
		for _, b := range []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	huge := rawServer(t, "127.0.0.1", func(c net.Conn) {
		fmt.Fprintf(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n", 1<<30)
		chunk := make([]byte, 64<<10)
		for i := 0; i < (1<<30)/len(chunk); i++ {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	reset := rawServer(t, "127.0.0.1", func(c net.Conn) {
		c.(*net.TCPConn).SetLinger(0) // close with RST
	})
	other := NewReceiver(t) // the redirect's target on another loopback host
	redirect := rawServer(t, "127.0.0.1", func(c net.Conn) {
		fmt.Fprintf(c, "HTTP/1.1 302 Found\r\nLocation: %s/stolen\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", strings.Replace(other.URL, "127.0.0.1", "127.0.0.2", 1))
	})
	healthy := NewReceiver(t)

	faulty := "timeout = \"400ms\"\nschedule = []\nmax_in_flight = 4"
	d := MustOpenDaemon(t,
		endpoint("hang", hang+"/", `["fault"]`, faulty)+
			endpoint("drip", drip+"/", `["fault"]`, faulty)+
			endpoint("huge", huge+"/", `["fault"]`, faulty)+
			endpoint("reset", reset+"/", `["fault"]`, faulty)+
			endpoint("redirect", redirect+"/", `["fault"]`, faulty)+
			endpoint("healthy", healthy.URL+"/ok", `["ok"]`, ""))

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var ids []string
	for range 4 {
		ids = append(ids, d.Event(`{"type":"fault","data":{}}`))
	}
	// Meanwhile the healthy endpoint is served, and quickly.
	start := time.Now()
	var okIDs []string
	for range 50 {
		okIDs = append(okIDs, d.Event(`{"type":"ok","data":{}}`))
	}
	healthy.Wait(t, "/ok", 50)
	t.Logf("healthy endpoint: 50 deliveries in %v while 5 endpoints misbehave", time.Since(start))

	wantErr := map[string]string{"hang": "timeout", "drip": "timeout", "huge": "", "reset": "", "redirect": ""}
	for _, id := range ids {
		for name, errText := range wantErr {
			dl := d.waitState(id, name, "undeliverable")
			a := dl["history"].([]any)[0].(map[string]any)
			if errText != "" && !strings.Contains(a["error"].(string), errText) {
				t.Errorf("%s: attempt %v, want error %q", name, a, errText)
			}
			if lat := a["latency_ms"].(float64); lat > 5000 {
				t.Errorf("%s: attempt took %vms, longer than the 400ms timeout allows", name, lat)
			}
			switch name {
			case "huge":
				if a["status"] != 500.0 || len(fmt.Sprint(a["response"])) > 8<<10 {
					t.Errorf("huge: status %v, stored response of %d bytes", a["status"], len(fmt.Sprint(a["response"])))
				}
			case "redirect":
				if a["status"] != 302.0 {
					t.Errorf("redirect: %v", a)
				}
			case "reset":
				if a["status"] != 0.0 || a["error"] == "" {
					t.Errorf("reset: %v", a)
				}
			}
		}
	}
	if n := len(other.Requests("")); n != 0 {
		t.Fatalf("redirect to another host was followed (%d requests)", n)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 64<<20 {
		t.Fatalf("heap grew by %d MB after 1 GB response bodies", grew>>20)
	}
	for _, id := range okIDs {
		d.waitState(id, "healthy", "delivered")
	}
}

// Receivers that accept and never answer cannot take every worker: with
// two such endpoints (max_in_flight 16 each, more than all 8 workers
// together) holding deliveries, a healthy endpoint's are still sent while
// theirs hang: an endpoint not tried yet probes one attempt at a time, and
// one whose last attempt got no prompt answer waits for half the workers.
func TestHungEndpointsLeaveWorkersToHealthyOnes(t *testing.T) {
	release := make(chan struct{})
	hung := rawServer(t, "127.0.0.1", func(c net.Conn) {
		<-release
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	rcv := NewReceiver(t)
	d := MustOpenDaemon(t, // the tests' workers = 8
		endpoint("hung1", hung+"/1", `["hang.*"]`, `timeout = "5m"`)+
			endpoint("hung2", hung+"/2", `["hang.*"]`, `timeout = "5m"`)+
			endpoint("healthy", rcv.URL+"/ok", `["ok.*"]`, ""))
	t.Cleanup(func() { close(release) }) // before the daemon closes: its attempts end
	for i := range 20 {
		d.Event(fmt.Sprintf(`{"type":"hang.x","data":%d}`, i))
	}
	eventually(t, "each hung endpoint holds one attempt", func() bool {
		var n float64
		for _, name := range []string{"hung1", "hung2"} {
			_, ep := d.Admin("GET", "/v1/endpoints/"+name, "")
			n += ep["in_flight"].(float64)
		}
		return n == 2 // probes: one at a time, whatever max_in_flight
	})
	for i := range 20 {
		d.Event(fmt.Sprintf(`{"type":"ok.x","data":%d}`, i))
	}
	rcv.Wait(t, "/ok", 20) // while the hung ones still hang, for 5 minutes each
}

// A 2xx with a huge or endless body is a success: hookd keeps the first
// max_response_bytes and drops the connection.
func TestHugeSuccessBodyIsDelivered(t *testing.T) {
	huge := rawServer(t, "127.0.0.1", func(c net.Conn) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 1<<30)
		chunk := []byte(strings.Repeat("y", 64<<10))
		for range (1 << 30) / len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	d := MustOpenDaemon(t, endpoint("huge", huge+"/", `["*"]`, "max_response_bytes = 100"))
	id := d.Event(`{"type":"t","data":{}}`)
	dl := d.waitState(id, "huge", "delivered")
	a := dl["history"].([]any)[0].(map[string]any)
	if r := a["response"].(string); len(r) != 100 {
		t.Fatalf("stored %d response bytes, want 100", len(r))
	}
}

// deny_networks is checked after DNS resolution; here loopback is denied
// so the test never leaves the machine.
func TestDenyNetworks(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{Delivery: `deny_networks = ["127.0.0.0/8", "::1/128"]`},
		endpoint("a", strings.Replace(rcv.URL, "127.0.0.1", "localhost", 1)+"/a", `["*"]`, "schedule = []"), nil)
	id := d.Event(`{"type":"t","data":{}}`)
	dl := d.waitState(id, "a", "undeliverable")
	a := dl["history"].([]any)[0].(map[string]any)
	if !strings.Contains(a["error"].(string), "deny_networks") {
		t.Fatalf("attempt %v", a)
	}
	if n := len(rcv.Requests("")); n != 0 {
		t.Fatalf("denied receiver got %d requests", n)
	}
}

// A client that trickles its request is cut off after read_timeout, and
// does not hold up anyone else.
func TestSlowLorisIsCutOff(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{Ingest: `read_timeout = "300ms"`}, endpoint("a", rcv.URL+"/a", `["*"]`, ""), nil)
	c, err := net.Dial("tcp", d.IngestAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\n")
	d.Event(`{"type":"t","data":{}}`) // others are served meanwhile
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("slow client still connected after 10s")
			}
			return // closed by the server
		}
	}
}

func TestNonLoopbackWithoutTokenWarns(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{}, endpoint("a", rcv.URL+"/a", `["*"]`, ""), nil)
	if strings.Contains(d.logs.String(), "without a token") {
		t.Fatal("warned on loopback")
	}
	raw := readRaw(t, d.cfgPath)
	d.Close()
	// Bind only (nothing connects to it): the warning is about exposure.
	writeRaw(t, d.cfgPath, strings.Replace(raw, `listen = "127.0.0.1:0"`, `listen = "0.0.0.0:0"`, 1))
	d2 := mustOpenFile(t, d.dir, d.cfgPath, Extra{}, nil)
	if !strings.Contains(d2.logs.String(), "ingest listens beyond loopback without a token") {
		t.Fatalf("no warning:\n%s", d2.logs.String())
	}
}
