package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"hookd/store"
)

// Sender makes one signed HTTP attempt. It is safe for concurrent use and
// keeps connections alive per host.
type Sender struct {
	client    *fasthttp.Client
	userAgent string
}

// NewSender returns a Sender that identifies itself as hookd/<version>.
// Connections to addresses in deny are refused after DNS resolution.
func NewSender(version string, deny []netip.Prefix) *Sender {
	return &Sender{
		userAgent: "hookd/" + version,
		client: &fasthttp.Client{
			DialTimeout:              guardedDial(deny),
			NoDefaultUserAgentHeader: true,
			// Send header names exactly as configured (webhook-id, not
			// Webhook-Id): some receivers compare them byte for byte.
			DisableHeaderNamesNormalizing: true,
			// Read the response body ourselves, up to max_response_bytes, so
			// a huge body costs neither memory nor a failed attempt.
			StreamResponseBody:  true,
			MaxConnsPerHost:     4096,
			MaxIdleConnDuration: 30 * time.Second,
			ReadBufferSize:      8192,
		},
	}
}

// Result is what one attempt produced.
type Result struct {
	Attempt    store.Attempt
	RetryAfter time.Duration
}

// OK reports a 2xx response.
func (r *Result) OK() bool { return r.Attempt.Status >= 200 && r.Attempt.Status < 300 }

// Send POSTs body to ep now, signed for this attempt. Redirects are not
// followed: a 3xx is a failed attempt like any other non-2xx.
func (s *Sender) Send(ep *Endpoint, id, eventType string, body []byte) Result {
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
	err := s.client.DoTimeout(req, resp, ep.Timeout)
	if err == nil {
		r.Attempt.Status = resp.StatusCode()
		r.RetryAfter = ParseRetryAfter(string(resp.Header.Peek("Retry-After")), start)
		r.Attempt.Response, err = readCapped(resp, ep.MaxResponseBytes)
		if err != nil && r.OK() {
			// The receiver answered 2xx; a broken body after that does not
			// undo the delivery.
			err = nil
		}
	}
	r.Attempt.Latency = time.Since(start)
	if err != nil {
		r.Attempt.Error = describe(err, ep.Timeout)
	}
	return r
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
// delivery.deny_networks.
var ErrDenied = errors.New("destination is in delivery.deny_networks")

// guardedDial resolves the host itself and refuses to connect when any of
// its addresses is denied, so a hostname cannot smuggle a request to a
// cloud metadata service (169.254.169.254) or another denied network.
func guardedDial(deny []netip.Prefix) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if Denied(ip, deny) {
				return nil, fmt.Errorf("%w: %s resolves to %s", ErrDenied, host, ip.Unmap())
			}
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("%s: no addresses", host)
		}
		d := net.Dialer{Timeout: timeout}
		var last error
		for _, ip := range ips {
			c, err := d.Dial("tcp", net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			last = err
		}
		return nil, last
	}
}

// Denied reports whether ip falls in one of the prefixes. An unspecified
// address (0.0.0.0, ::) is checked as the loopback address of its family
// too, because connecting to it reaches this host's loopback listeners.
func Denied(ip netip.Addr, deny []netip.Prefix) bool {
	ip = ip.Unmap()
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
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout after " + timeout.String()
	}
	return err.Error()
}
