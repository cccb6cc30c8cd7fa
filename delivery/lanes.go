package delivery

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// fasthttp's client has no context: a pooled connection cannot be traced
// back to the request using it, so a cancelled attempt would run until its
// own deadline, past shutdown_timeout. A lane is a fasthttp.HostClient
// limited to one connection and lent to one attempt at a time: the attempt's
// context then knows which connection to close. Idle lanes keep their
// connection alive for the next attempt to the same host, as the client's
// pool did.
type lane struct {
	hc        *fasthttp.HostClient
	key       string
	deny      []netip.Prefix
	interrupt func() // closeConn, bound once rather than per attempt
	self      func() []netip.AddrPort
	used      time.Time // when it was last given back

	mu   sync.Mutex
	ctx  context.Context // of the attempt holding the lane
	conn net.Conn        // the last connection dialed
}

// Connection settings, as the sender's fasthttp.Client had them.
const (
	maxConnsPerHost = 4096
	maxIdleConn     = 30 * time.Second
	readBufferSize  = 8192
)

// lanes hands out lanes per scheme and host.
type lanes struct {
	deny []netip.Prefix
	self atomic.Pointer[[]netip.AddrPort] // hookd's own listeners

	mu     sync.Mutex
	hosts  map[string]*hostLanes
	pruned time.Time
}

type hostLanes struct {
	idle []*lane // least recently used first
	busy int
}

func newLanes(deny []netip.Prefix) *lanes {
	return &lanes{deny: deny, hosts: map[string]*hostLanes{}, pruned: time.Now()}
}

// acquire lends a lane to the attempt running under ctx until release.
// extra are networks denied on top of the sender's; lanes with extra
// denials are kept apart from the others (all tenant endpoints share one
// list).
func (p *lanes) acquire(ctx context.Context, uri *fasthttp.URI, extra []netip.Prefix) (*lane, error) {
	scheme, host := uri.Scheme(), uri.Host()
	isTLS := string(scheme) == "https"
	if !isTLS && string(scheme) != "http" {
		return nil, fmt.Errorf("unsupported protocol %q: http and https are supported", scheme)
	}
	if bytes.IndexByte(host, ',') >= 0 {
		return nil, fmt.Errorf("invalid host %q", host)
	}
	var buf [128]byte
	key := append(append(append(buf[:0], scheme...), "://"...), host...)
	if len(extra) > 0 {
		key = append(key, " restricted"...)
	}
	p.mu.Lock()
	h := p.hosts[string(key)]
	if h == nil {
		h = &hostLanes{}
		p.hosts[string(key)] = h
	}
	if h.busy >= maxConnsPerHost {
		p.mu.Unlock()
		return nil, fasthttp.ErrNoFreeConns
	}
	h.busy++
	var l *lane
	if n := len(h.idle); n > 0 {
		l = h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
	}
	p.mu.Unlock()
	if l == nil {
		l = p.newLane(string(key), string(host), isTLS, extra)
	}
	l.mu.Lock()
	l.ctx = ctx
	l.mu.Unlock()
	return l, nil
}

func (p *lanes) newLane(key, host string, isTLS bool, extra []netip.Prefix) *lane {
	l := &lane{key: key, deny: append(p.deny[:len(p.deny):len(p.deny)], extra...)}
	l.self = func() []netip.AddrPort {
		if s := p.self.Load(); s != nil {
			return *s
		}
		return nil
	}
	l.interrupt = l.closeConn
	l.hc = &fasthttp.HostClient{
		Addr:                     fasthttp.AddMissingPort(host, isTLS),
		IsTLS:                    isTLS,
		DialTimeout:              l.dial,
		MaxConns:                 1,
		NoDefaultUserAgentHeader: true,
		// Send header names exactly as configured (webhook-id, not
		// Webhook-Id): some receivers compare them byte for byte.
		DisableHeaderNamesNormalizing: true,
		// Read the response body ourselves, up to max_response_bytes, so
		// a huge body costs neither memory nor a failed attempt.
		StreamResponseBody:  true,
		MaxIdleConnDuration: maxIdleConn,
		ReadBufferSize:      readBufferSize,
	}
	return l
}

// release takes a lane back. A broken lane (its connection may have been
// closed under it, or is still in use) is dropped rather than reused.
func (p *lanes) release(l *lane, broken bool) {
	l.mu.Lock()
	l.ctx = nil
	l.mu.Unlock()
	if l.hc.ConnsCount() != l.hc.IdleConnsCount() {
		broken = true
	}
	now := time.Now()
	var drop []*lane
	p.mu.Lock()
	h := p.hosts[l.key]
	h.busy--
	if broken {
		drop = append(drop, l)
	} else {
		l.used = now
		h.idle = append(h.idle, l)
	}
	// Lanes idle for longer than their connection lives hold nothing
	// worth keeping.
	if now.Sub(p.pruned) > maxIdleConn {
		p.pruned = now
		for key, h := range p.hosts {
			n := 0
			for n < len(h.idle) && now.Sub(h.idle[n].used) > maxIdleConn {
				n++
			}
			drop = append(drop, h.idle[:n]...)
			h.idle = append(h.idle[:0], h.idle[n:]...)
			if len(h.idle) == 0 && h.busy == 0 {
				delete(p.hosts, key)
			}
		}
	}
	p.mu.Unlock()
	for _, l := range drop {
		l.hc.CloseIdleConnections()
	}
}

// closeIdle drops every idle lane and its connection.
func (p *lanes) closeIdle() {
	var drop []*lane
	p.mu.Lock()
	for key, h := range p.hosts {
		drop = append(drop, h.idle...)
		h.idle = nil
		if h.busy == 0 {
			delete(p.hosts, key)
		}
	}
	p.mu.Unlock()
	for _, l := range drop {
		l.hc.CloseIdleConnections()
	}
}

// dial is the lane's fasthttp dialer: it dials under the attempt's context
// and remembers the connection, so closeConn can close it.
func (l *lane) dial(addr string, timeout time.Duration) (net.Conn, error) {
	l.mu.Lock()
	ctx := l.ctx
	l.mu.Unlock()
	c, err := guardedDial(ctx, l.deny, l.self(), addr, timeout)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conn = c
	l.mu.Unlock()
	// closeConn may have run before conn was set; checking after setting
	// it means one of the two closes the connection.
	if err := ctx.Err(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// closeConn closes the lane's connection: whatever the attempt is blocked
// on (writing the request, waiting for or reading the response) returns.
func (l *lane) closeConn() {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
}
