package api

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// What the admin API and the portal's /api/ share on the wire: routes
// are matched the same way and JSON is written the same way.

// Path is the request's path as the client sent it: fasthttp's Path
// decodes %2F and resolves ".." first, so that an escaped name
// ("..%2Ftenants%2Fx", a platform passing on its customer's input) would
// reach another route. Routes are matched on this one, and Match decodes
// each argument on its own.
//
// Repeated slashes and dot segments are still cleaned up, on the raw path
// (an emitter whose base URL ends in "/" sends //v1/events): an encoded
// "." or "/" is not a segment's, so it stays in its argument.
func Path(ctx *fasthttp.RequestCtx) string {
	p := string(ctx.URI().PathOriginal())
	if p == "" {
		return "/"
	}
	if strings.Contains(p, "//") || strings.Contains(p, "/.") {
		trailing := strings.HasSuffix(p, "/")
		if p = path.Clean("/" + p); trailing && p != "/" {
			p += "/"
		}
	}
	return p
}

// Match matches a raw path (Path) against a route pattern whose "{}"
// segments stand for one non-empty segment each, and returns those
// segments, percent-decoded: an argument is always one segment's worth,
// whatever it decodes to.
func Match(pattern, path string) ([]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var args []string
	for i := range ps {
		switch {
		case ps[i] == "{}" && xs[i] != "":
			arg, err := url.PathUnescape(xs[i])
			if err != nil || arg == "" {
				return nil, false
			}
			args = append(args, arg)
		case ps[i] != xs[i]:
			return nil, false
		}
	}
	return args, true
}

// WriteJSON answers v as JSON with status.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// IsJSON reports whether a Content-Type is JSON: application/json or an
// application/*+json type, with no charset but UTF-8's (RFC 8259: JSON
// exchanged between systems is UTF-8; a body declared UTF-16 would
// otherwise be read as something it is not).
func IsJSON(ct []byte) bool {
	mt, params, _ := bytes.Cut(ct, []byte(";"))
	mt = bytes.TrimSpace(mt)
	isJSON := bytes.EqualFold(mt, []byte("application/json")) ||
		len(mt) > len("application/+json") && bytes.EqualFold(mt[:len("application/")], []byte("application/")) &&
			bytes.EqualFold(mt[len(mt)-len("+json"):], []byte("+json"))
	for isJSON && len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		if k, v, _ := bytes.Cut(p, []byte("=")); bytes.EqualFold(bytes.TrimSpace(k), []byte("charset")) {
			v = bytes.Trim(bytes.TrimSpace(v), `"`)
			isJSON = bytes.EqualFold(v, []byte("utf-8")) || bytes.EqualFold(v, []byte("utf8")) || bytes.EqualFold(v, []byte("us-ascii")) // a subset
		}
	}
	return isJSON
}

// Identity reports whether a request's body is sent as it is: no
// Content-Encoding, or identity. hookd decodes none; a gzip body was read
// as invalid UTF-8, and a plain one labelled br taken as it was.
func Identity(h *fasthttp.RequestHeader) bool {
	for _, v := range h.PeekAll(fasthttp.HeaderContentEncoding) {
		for c := range bytes.SplitSeq(v, []byte(",")) {
			if c = bytes.TrimSpace(c); len(c) > 0 && !bytes.EqualFold(c, []byte("identity")) {
				return false
			}
		}
	}
	return true
}

// Reply writes v as JSON with status, or returns err for the layer's
// error writer: an operation's answer in one line.
func Reply[T any](ctx *fasthttp.RequestCtx, status int, v T, err error) error {
	if err != nil {
		return err
	}
	WriteJSON(ctx, status, v)
	return nil
}

// Limit reads a list's ?limit= value: 0 when absent (the operation's
// default applies), otherwise 1-1000.
func Limit(v []byte) (int, error) {
	if len(v) == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 || n > 1000 {
		return 0, BadRequest("limit: must be between 1 and 1000")
	}
	return n, nil
}

// The query parameters of the endpoint and delivery lists, which the admin
// API and the portal's /api/ both serve.
var (
	EndpointsQuery = []string{"tenant", "limit", "cursor"}
	// NoQuery is a route's that takes no parameters: the event type
	// catalogue, one page whatever the limit asked (?limit=1 answered all).
	NoQuery         = []string{}
	DeliveriesQuery = []string{"tenant", "endpoint", "status", "type", "since", "until", "limit", "cursor"}
)

// CheckQuery refuses a query parameter not in known, given twice, or
// empty: a misspelt filter (?tenat=) would otherwise answer with every
// record as if they were the ones asked for. With known nil, any query is
// let through unread.
func CheckQuery(q *fasthttp.Args, known []string) error {
	if known == nil {
		return nil
	}
	var err error
	seen := map[string]bool{}
	q.VisitAll(func(k, v []byte) {
		switch {
		case err != nil:
		case len(known) == 0:
			err = BadRequest("%.64q: this route takes no query parameters", k)
		case !slices.Contains(known, string(k)):
			err = BadRequest("%.64q: unknown query parameter (known: %s)", k, strings.Join(known, ", "))
		case seen[string(k)]:
			err = BadRequest("%s: given twice", k)
		case len(v) == 0:
			// ?tenant= from an empty variable would mean no filter at all.
			err = BadRequest("%s: empty (leave it out for no filter)", k)
		}
		seen[string(k)] = true
	})
	return err
}

// FromOtherSite reports a request a browser sent for a page of another
// origin: a form post or a no-cors fetch is a "simple request" a browser
// sends without asking. Browsers label such requests (Origin on every
// cross-origin POST, Sec-Fetch-Site on all), and no page can forge the
// labels; the CLI and clients send neither.
func FromOtherSite(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	site := string(h.Peek("Sec-Fetch-Site"))
	switch site {
	case "", "same-origin", "none":
	default:
		return true
	}
	origin := h.Peek("Origin")
	switch {
	case len(origin) == 0:
		return false
	case string(origin) == "null":
		// A form posted from a page served with Referrer-Policy:
		// no-referrer: Sec-Fetch-Site, which no page can set, tells.
		return site != "same-origin"
	}
	u, err := url.Parse(string(origin))
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, string(ctx.Host()))
}

// Navigation reports a browser following a link or an address typed: a
// GET for a whole page, which another site can start but not read.
func Navigation(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	return ctx.IsGet() && string(h.Peek("Sec-Fetch-Mode")) == "navigate" && string(h.Peek("Sec-Fetch-Dest")) == "document"
}
