package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func listen(addr string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			// A socket something answers on is another process's: a
			// second hookd (on another database, which its lock does not
			// guard) took the first one's sockets and removed them at its
			// stop. One nothing answers on is a previous run's.
			if c, err := net.DialTimeout("unix", p, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen unix %s: another process listens on it", p)
			}
			os.Remove(p)
		}
		ln, err := net.Listen("unix", p)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(p, 0o660); err != nil {
			ln.Close()
			return nil, err
		}
		return ln, nil
	}
	return net.Listen("tcp", addr)
}

// listenerAddrs are the TCP addresses hookd listens on, which no endpoint
// may target.
func listenerAddrs(lns ...net.Listener) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ln := range lns {
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			out = append(out, a.AddrPort())
		}
	}
	return out
}

// capListener caps open connections itself instead of leaving it to
// fasthttp's Server.Concurrency, which answers a plain-text 503 without
// Retry-After: a connection beyond the cap gets the API's JSON error
// (503 busy) and is closed.
type capListener struct {
	net.Listener
	slots     chan struct{}
	idle      time.Duration
	reject    []byte
	rejecting atomic.Int32   // connections being answered and closed
	wg        sync.WaitGroup // their goroutines: Close waits for them
	onReject  func()
}

// maxRejecting bounds the goroutines answering refused connections; past
// it a refused connection is closed without an answer.
const maxRejecting = 64

func newCapListener(ln net.Listener, max int, idle time.Duration, onReject func()) *capListener {
	body := `{"error":{"code":"busy","message":"too many open connections (ingest.max_connections); retry later"}}` + "\n"
	resp := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return &capListener{Listener: ln, slots: make(chan struct{}, max), idle: idle, reject: []byte(resp), onReject: onReject}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &cappedConn{Conn: c, release: func() { <-l.slots }, firstBy: time.Now().Add(l.idle)}, nil
		default:
		}
		l.onReject()
		if l.rejecting.Add(1) > maxRejecting {
			l.rejecting.Add(-1)
			c.Close()
			continue
		}
		l.wg.Add(1)
		go l.refuse(c)
	}
}

// refuse answers 503 and closes c. It reads what the client sent for a
// moment first: closing a socket with unread data resets it, and the
// client could lose the answer.
func (l *capListener) refuse(c net.Conn) {
	defer l.wg.Done()
	defer l.rejecting.Add(-1)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(l.reject); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	var buf [4096]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

// Close stops accepting and waits for refused connections to be closed.
func (l *capListener) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// cappedConn holds a slot until it is closed. Until its first bytes
// arrive, its read deadline is at most idle_timeout after accept: fasthttp
// applies its IdleTimeout only between requests and gives the first one
// the whole read_timeout, so a client that connects and sends nothing
// would hold a slot that long.
//
// Once they arrive, the deadline fasthttp asked for is put back: fasthttp
// sets the first request's read deadline once, before its first byte, so
// a clamp left in place would cut a slow first request off at idle_timeout
// instead of read_timeout (found by black-box testing).
type cappedConn struct {
	net.Conn
	once    sync.Once
	release func()
	mu      sync.Mutex // guards the fields below
	firstBy time.Time  // zero once a byte was read
	asked   time.Time  // the read deadline asked for, when firstBy clamped it
	clamped bool
}

func (c *cappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.firstBy = time.Time{}
		if c.clamped {
			c.clamped = false
			c.Conn.SetReadDeadline(c.asked)
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *cappedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clamped = !c.firstBy.IsZero() && (t.IsZero() || t.After(c.firstBy))
	if c.clamped {
		c.asked, t = t, c.firstBy
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *cappedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
