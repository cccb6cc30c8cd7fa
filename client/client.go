package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options configure a client.
type Options struct {
	// Token is sent as "Authorization: Bearer <Token>" when not empty.
	Token string
	// Timeout bounds each request, from dial to the end of the body;
	// 0 means 30 seconds. (Ingest retries a request that times out.)
	Timeout time.Duration
	// MaxRetryWait caps each of Ingest's waits between tries, Retry-After
	// included; 0 means no cap: a Retry-After is honoured in full.
	MaxRetryWait time.Duration
}

// ErrorBody is the body of every error answer:
// {"error":{"code":"not_found","message":"no such resource"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the "error" member of ErrorBody. Code is stable and meant
// for programs; Message is for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is an error answer from the API.
type Error struct {
	Status  int    // HTTP status
	Code    string // e.g. "not_found", "unauthorized", "invalid_request"
	Message string
	// RetryAfter is the Retry-After the daemon sent with a 429 or 503, or 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return e.Message
}

// Is lets callers branch on the kind of answer with errors.Is.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	}
	return false
}

var (
	// ErrUnreachable is wrapped by the error of a request no daemon
	// answered (refused, timed out, a name that does not resolve, or the
	// socket is missing); not by a certificate the client does not trust
	// or TLS spoken to a plain HTTP port, which retrying cannot mend.
	// Errors show the base URL without its password.
	ErrUnreachable = errors.New("cannot reach hookd (is hookd running?)")
	// ErrNotFound matches an *Error with status 404.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized matches an *Error with status 401: a missing or
	// wrong token.
	ErrUnauthorized = errors.New("unauthorized")
)

// conn is what every API client shares: a base URL, a token and the HTTP
// client that reaches them.
type conn struct {
	base  string
	shown string // base for error messages, without a password
	token string
	hc    *http.Client
}

// CheckBase refuses a base address no request could be sent to: the
// forms newConn takes are host:port, unix:/path and an http(s):// URL.
func CheckBase(base string) error {
	if p, ok := strings.CutPrefix(base, "unix:"); ok && p != "" {
		return nil
	}
	if strings.Contains(base, "://") {
		if u, err := url.Parse(base); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return nil
		}
	} else if _, _, err := net.SplitHostPort(base); err == nil {
		return nil
	}
	return fmt.Errorf("%q: want host:port, unix:/path or an http(s):// URL", base)
}

// expectAbove is the body size from which a request asks before sending
// its body (Expect: 100-continue): ingest's smallest batch limit is 64 ×
// a max_event_bytes that may be a few KiB.
const expectAbove = 64 << 10

// newConn accepts the forms hookd's listen keys take: host:port,
// unix:/path, or a full http(s):// URL.
func newConn(baseURL string, o Options) *conn {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	c := &conn{token: o.Token, hc: &http.Client{Timeout: o.Timeout}}
	if sock, ok := strings.CutPrefix(baseURL, "unix:"); ok {
		c.base = "http://hookd"
		c.hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}, ExpectContinueTimeout: time.Second} // as http.DefaultTransport's
	} else if strings.Contains(baseURL, "://") {
		c.base = strings.TrimRight(baseURL, "/")
	} else {
		// "127.0.0.1:8525/" passes CheckBase (a host:port with a path
		// SplitHostPort does not see) and sent to //v1/events, a 404.
		c.base = "http://" + strings.TrimRight(baseURL, "/")
	}
	c.shown = c.base
	if u, err := url.Parse(c.base); err == nil {
		c.shown = u.Redacted()
	}
	return c
}

// transportError is the error of a request no answer came back to. It
// wraps ErrUnreachable, which Ingest retries, unless trying again cannot
// help: a certificate the client does not trust, TLS spoken to a plain
// HTTP port.
func (c *conn) transportError(err error) error {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
	)
	// A name that does not resolve yet may tomorrow (a container starting
	// after its emitter): that one is retried.
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &record) {
		return fmt.Errorf("%s: %w", c.shown, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnreachable, c.shown, err)
}

// cause is what an http.Client's *url.Error wraps: it repeats method and
// URL, and the cause says what failed.
func cause(err error) error {
	if c := errors.Unwrap(err); c != nil {
		return c
	}
	return err
}

// do sends in (if not nil) as JSON and decodes a 2xx answer into out
// (if not nil).
func (c *conn) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	return c.send(ctx, method, path, body, out)
}

// errAnswerLost is wrapped by the error of a request whose answer was cut
// short: the daemon may or may not have acted on it.
var errAnswerLost = errors.New("answer cut short")

// send sends body (JSON, or nil for none) and decodes a 2xx answer into out.
func (c *conn) send(ctx context.Context, method, path string, body []byte, out any) error {
	_, err := c.sendH(ctx, method, path, body, out)
	return err
}

// sendH is send that also returns a 2xx answer's Retry-After (a batch's
// items refused for now), or 0; header is name, value pairs to send.
func (c *conn) sendH(ctx context.Context, method, path string, body []byte, out any, header ...string) (time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	// What no try can send is an error of its own, not "cannot reach
	// hookd", which Ingest retried until the context ended (a token read
	// from a file with its newline, an ftp:// base).
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return 0, fmt.Errorf("%s: unsupported scheme %q: http and https are supported", c.shown, req.URL.Scheme)
	}
	for i, v := range append([]string{c.token}, header...) {
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			what := "the token"
			if i > 0 {
				what = "a header"
			}
			return 0, fmt.Errorf("%s %s: %s has a control character or line break, which no HTTP header can carry", method, path, what)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if len(body) > expectAbove {
		// Ask first: a body over hookd's limit is refused (413) before it
		// is sent; refused while it is being sent, the request would end
		// in a reset that looks like hookd down.
		req.Header.Set("Expect", "100-continue")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The caller gave up: not a daemon that did not answer.
		return 0, fmt.Errorf("%s %s: %w", method, path, context.Cause(ctx))
	}
	if err != nil {
		return 0, c.transportError(cause(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w: %w", method, path, errAnswerLost, err)
	}
	if resp.StatusCode >= 300 {
		// A body that is not ours (a proxy's page) still yields the status.
		var eb ErrorBody
		json.Unmarshal(b, &eb)
		e := &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		e.RetryAfter = retryAfter(resp.Header)
		return 0, e
	}
	if out == nil { // an answer without a body (204)
		return 0, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return 0, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return retryAfter(resp.Header), nil
}

// retryAfter is a Retry-After in seconds, or 0.
func retryAfter(h http.Header) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
