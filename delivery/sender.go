package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"hookd/store"
)

// Sender makes signed HTTP attempts. It is safe for concurrent use and
// keeps connections alive per host.
type Sender struct {
	lanes     *lanes
	userAgent string
}

var _ Attempter = (*Sender)(nil)

// NewSender returns a Sender that identifies itself as hookd/<version>.
// Connections to addresses in deny are refused after DNS resolution.
func NewSender(version string, deny []netip.Prefix) *Sender {
	return &Sender{userAgent: "hookd/" + version, lanes: newLanes(deny)}
}

// Close drops idle connections. Attempts in flight are not interrupted
// (cancel their contexts for that), and the Sender stays usable.
func (s *Sender) Close() { s.lanes.closeIdle() }

// Result is what one attempt produced.
type Result struct {
	Attempt    store.Attempt
	RetryAfter time.Duration
}

// OK reports a 2xx response.
func (r *Result) OK() bool { return r.Attempt.Status >= 200 && r.Attempt.Status < 300 }

// Send POSTs body to ep now, signed for this attempt. Redirects are not
// followed: a 3xx is a failed attempt like any other non-2xx. The attempt
// ends at ep.Timeout or when ctx ends, whichever comes first; a cancelled
// attempt's connection is closed, wherever the attempt was.
func (s *Sender) Send(ctx context.Context, ep *Endpoint, id, eventType string, body []byte) Result {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	start := time.Now()
	m := &Message{ID: id, Type: eventType, Timestamp: start, Body: body}
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(ep.URL)
	req.Header.SetContentType("application/json")
	req.Header.SetUserAgent(s.userAgent)
	var buf []byte
	for _, h := range ep.headers {
		buf = h.tmpl.appendTo(buf[:0], m)
		req.Header.SetBytesV(h.name, buf)
	}
	var sig [4]Header
	for _, h := range ep.signer.Sign(sig[:0], m) {
		req.Header.Set(h.Name, h.Value)
	}
	req.SetBodyRaw(body)

	r := Result{Attempt: store.Attempt{At: start.UTC()}}
	deadline, ctxFirst := start.Add(ep.Timeout), false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxFirst = d, true
	}
	err := ctx.Err()
	if err == nil {
		err = s.do(ctx, req, resp, deadline, ep, &r)
	}
	r.Attempt.Latency = time.Since(start)
	if err != nil {
		r.Attempt.Error = describe(err, ep.Timeout)
		// Reaching the endpoint's own deadline is a timeout even if ctx
		// ended meanwhile; any other failure after ctx ended is its doing.
		if ctx.Err() != nil && (ctxFirst || !isTimeout(err)) {
			r.Attempt.Error = "cancelled: " + context.Cause(ctx).Error()
		}
	}
	return r
}

// do runs the exchange on a lane of its own, which ctx interrupts, and
// fills r from the response.
func (s *Sender) do(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, ep *Endpoint, r *Result) error {
	l, err := s.lanes.acquire(ctx, req.URI(), ep.Deny)
	if err != nil {
		return err
	}
	stop := func() bool { return true }
	if ctx.Done() != nil { // a context that can end
		stop = context.AfterFunc(ctx, l.interrupt)
	}
	defer func() {
		// If interrupt ran, the lane's connection is closed or about to be.
		s.lanes.release(l, !stop())
	}()
	if err := l.hc.DoDeadline(req, resp, deadline); err != nil {
		return err
	}
	r.Attempt.Status = resp.StatusCode()
	r.RetryAfter = ParseRetryAfter(string(resp.Header.Peek("Retry-After")), r.Attempt.At)
	r.Attempt.Response, err = readCapped(resp, ep.MaxResponseBytes)
	if err != nil && r.OK() {
		// The receiver answered 2xx; a broken body after that does not
		// undo the delivery.
		return nil
	}
	return err
}

// readCapped keeps the first limit bytes of the body and drops the rest.
func readCapped(resp *fasthttp.Response, limit int) ([]byte, error) {
	stream := resp.BodyStream()
	if resp.Header.ContentLength() == 0 { // the usual empty 2xx
		resp.CloseBodyStream()
		return nil, nil
	}
	if stream == nil {
		b := resp.Body()
		return append([]byte(nil), b[:min(len(b), limit)]...), nil
	}
	out, err := io.ReadAll(io.LimitReader(stream, int64(limit)))
	if rc, ok := stream.(fasthttp.ReadCloserWithError); ok && len(out) == limit {
		// There may be more: closing with an error makes fasthttp drop the
		// connection instead of draining an unbounded body.
		rc.CloseWithError(errTruncated)
	} else {
		resp.CloseBodyStream()
	}
	return out, err
}

var errTruncated = errors.New("response body truncated")

// ErrDenied: the endpoint's host resolves to an address in
// delivery.deny_networks (or, for a tenant endpoint, tenants.deny_networks).
var ErrDenied = errors.New("destination is in deny_networks")

// ErrSelf: the endpoint's host and port are one of hookd's own listeners.
var ErrSelf = errors.New("destination is hookd's own listener")

// SetSelf tells the sender hookd's bound listener addresses: no attempt
// may connect to them (a customer's endpoint pointed at the admin API would
// be request forgery into hookd itself).
func (s *Sender) SetSelf(addrs []netip.AddrPort) { s.lanes.self.Store(&addrs) }

// guardedDial resolves the host itself and refuses to connect when any of
// its addresses is denied, so a hostname cannot smuggle a request to a
// cloud metadata service (169.254.169.254) or another denied network.
// Each step gets timeout; ctx (the attempt's) cancels any of them.
func guardedDial(ctx context.Context, deny []netip.Prefix, self []netip.AddrPort, addr string, timeout time.Duration) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	lookup, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(lookup, "ip", host)
	if err != nil {
		// The attempt's error is shown to the endpoint's owner, a tenant
		// perhaps: it names the failure, not hookd's resolver.
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return nil, fmt.Errorf("lookup %s: %s", host, dnsErr.Err)
		}
		return nil, err
	}
	p, _ := strconv.ParseUint(port, 10, 16)
	for _, ip := range ips {
		if Denied(ip, deny) {
			// Not which address: a tenant must not learn how internal
			// names resolve.
			return nil, fmt.Errorf("%w: %s resolves to a denied address", ErrDenied, host)
		}
		if IsSelf(ip, uint16(p), self) {
			return nil, fmt.Errorf("%w: %s", ErrSelf, net.JoinHostPort(ip.Unmap().String(), port))
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s: no addresses", host)
	}
	d := net.Dialer{Timeout: timeout}
	var last error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// IsSelf reports whether ip:port reaches one of the listeners in self. A
// listener on a wildcard address answers on every local address: the
// loopback and unspecified ones, and each of this host's interfaces (an
// endpoint at the host's own IP or name made a delivery loop through
// ingest, one event becoming hundreds a second).
func IsSelf(ip netip.Addr, port uint16, self []netip.AddrPort) bool {
	ip = ip.Unmap()
	local := ip.IsLoopback() || ip.IsUnspecified()
	for _, s := range self {
		if s.Port() != port {
			continue
		}
		a := s.Addr().Unmap()
		if a == ip || (a.IsLoopback() || a.IsUnspecified()) && ip.IsUnspecified() || a.IsUnspecified() && (local || isHostAddr(ip)) {
			return true
		}
	}
	return false
}

// hostAddrs caches this host's interface addresses, read again every
// hostAddrsTTL (an address a DHCP lease adds is known within it).
var hostAddrs struct {
	sync.Mutex
	read time.Time
	set  map[netip.Addr]bool
}

const hostAddrsTTL = 10 * time.Second

func isHostAddr(ip netip.Addr) bool {
	hostAddrs.Lock()
	defer hostAddrs.Unlock()
	if now := time.Now(); hostAddrs.set == nil || now.Sub(hostAddrs.read) > hostAddrsTTL {
		set := map[netip.Addr]bool{}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					set[p.Addr().Unmap()] = true
				}
			}
		}
		hostAddrs.set, hostAddrs.read = set, now
	}
	return hostAddrs.set[ip.WithZone("")]
}

// Denied reports whether ip falls in one of the prefixes. An unspecified
// address (0.0.0.0, ::) is checked as the loopback address of its family
// too, because connecting to it reaches this host's loopback listeners.
func Denied(ip netip.Addr, deny []netip.Prefix) bool {
	ip = ip.Unmap().WithZone("") // a prefix never contains an address with a zone
	alias := ip
	if ip.IsUnspecified() {
		alias = netip.IPv6Loopback()
		if ip.Is4() {
			alias = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	}
	for _, p := range deny {
		if p.Contains(ip) || p.Contains(alias) {
			return true
		}
	}
	return false
}

func describe(err error, timeout time.Duration) string {
	if isTimeout(err) {
		return "timeout after " + timeout.String()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || (errors.As(err, &ne) && ne.Timeout())
}
