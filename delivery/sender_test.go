package delivery

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Cancelling an attempt's context closes its connection while it waits
// for a response; the next attempt to the host gets a connection of its
// own and succeeds.
func TestSendCancelClosesConnection(t *testing.T) {
	arrived, hungUp := make(chan struct{}, 1), make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a hang-up only after the body
		if r.URL.Path == "/ok" {
			w.WriteHeader(204)
			return
		}
		arrived <- struct{}{}
		<-r.Context().Done() // never answers
		hungUp <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	s := NewSender("test", nil)
	t.Cleanup(s.Close)
	hang := testEndpoint(t, "hang", srv.URL+"/hang", 1, time.Minute)
	ok := testEndpoint(t, "ok", srv.URL+"/ok", 1, time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- s.Send(ctx, hang, "msg_1", "t", []byte(`{}`)) }()
	<-arrived
	cancel()
	if r := <-done; r.Attempt.Status != 0 || !strings.HasPrefix(r.Attempt.Error, "cancelled: ") {
		t.Fatalf("cancelled attempt: status %d, error %q", r.Attempt.Status, r.Attempt.Error)
	}
	<-hungUp
	if r := s.Send(context.Background(), ok, "msg_2", "t", []byte(`{}`)); r.Attempt.Status != 204 {
		t.Fatalf("after a cancelled attempt: status %d, error %q", r.Attempt.Status, r.Attempt.Error)
	}
	if r := s.Send(ctx, ok, "msg_3", "t", []byte(`{}`)); !strings.HasPrefix(r.Attempt.Error, "cancelled: ") {
		t.Fatalf("attempt under an ended context: status %d, error %q", r.Attempt.Status, r.Attempt.Error)
	}
}

// Attempts one after another reuse one connection; Close drops it.
func TestSendKeepsConnectionsAlive(t *testing.T) {
	var opened atomic.Int32
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closed <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := NewSender("test", nil)
	ep := testEndpoint(t, "a", srv.URL, 1, time.Minute)
	for i := range 3 {
		if r := s.Send(context.Background(), ep, "msg", "t", []byte(`{}`)); !r.OK() {
			t.Fatalf("attempt %d: status %d, error %q", i, r.Attempt.Status, r.Attempt.Error)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Fatalf("%d connections for 3 attempts in a row, want 1", n)
	}
	s.Close()
	<-closed
}

// Concurrent attempts to one host each get a connection; none fails.
func TestSendConcurrent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	s := NewSender("test", nil)
	t.Cleanup(s.Close)
	ep := testEndpoint(t, "a", srv.URL, 1, time.Minute)
	errs := make(chan string, 16*20)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				if r := s.Send(context.Background(), ep, "msg", "t", []byte(`{}`)); !r.OK() {
					errs <- r.Attempt.Error
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkSendParallel(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(204) }}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	s := NewSender("bench", nil)
	b.Cleanup(s.Close)
	ep := testEndpoint(b, "a", "http://"+ln.Addr().String()+"/", 1, 5*time.Second)
	body := make([]byte, 512)
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := s.Send(context.Background(), ep, "msg", "t", body); !r.OK() {
				b.Error(r.Attempt.Error)
			}
		}
	})
}

// An attempt never connects to one of hookd's own listeners (SetSelf),
// whatever the URL calls it: a forged request into the admin API.
func TestSendRefusesOwnListener(t *testing.T) {
	var hit atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Add(1) }))
	t.Cleanup(srv.Close)
	s := NewSender("test", nil)
	t.Cleanup(s.Close)
	addr := srv.Listener.Addr().(*net.TCPAddr).AddrPort()
	s.SetSelf([]netip.AddrPort{addr})
	for _, host := range []string{"127.0.0.1", "localhost", "0.0.0.0"} {
		ep := testEndpoint(t, "self", fmt.Sprintf("http://%s:%d/", host, addr.Port()), 1, time.Second)
		if r := s.Send(context.Background(), ep, "msg", "t", []byte(`{}`)); r.Attempt.Status != 0 || !strings.Contains(r.Attempt.Error, "own listener") {
			t.Errorf("%s: status %d, error %q", host, r.Attempt.Status, r.Attempt.Error)
		}
	}
	if n := hit.Load(); n != 0 {
		t.Fatalf("the listener got %d requests", n)
	}
}
