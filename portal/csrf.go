package portal

import (
	"crypto/subtle"
	"net/url"
	"strings"

	"hookd/api"
)

// checkCSRF refuses (403) a state change that a page of this site did
// not make: it must carry the session's CSRF token in X-CSRF-Token (which
// another site cannot read), a JSON Content-Type (which a cross-site form
// cannot send without a CORS preflight hookd never grants), and come from
// this origin (Origin, or Sec-Fetch-Site when a browser sends no Origin).
// Any one would do against today's browsers; together they hold if one
// of them is bypassed.
func (s *Server) checkCSRF(r *request) bool {
	h := &r.ctx.Request.Header
	var why string
	switch {
	case r.sess == nil:
		why = "no session"
	case subtle.ConstantTimeCompare(h.Peek("X-CSRF-Token"), []byte(r.sess.CSRF)) != 1:
		why = "X-CSRF-Token: missing or not this session's"
	case !api.IsJSON(h.ContentType()):
		why = "Content-Type: must be application/json, with no charset but utf-8"
	case !api.Identity(h):
		why = "Content-Encoding: not supported; send the body uncompressed"
	case !s.sameOrigin(r):
		why = "Origin: the request does not come from this site"
	default:
		return true
	}
	s.fail(r, true, errForbidden(why))
	return false
}

// sameOrigin reports whether the browser says the request comes from
// this site: Origin is the portal's public_url, or without one the
// address the request was sent to (its Host); without Origin,
// Sec-Fetch-Site is same-origin.
// A request with neither is refused: every browser that runs the page's
// script sends one of them.
func (s *Server) sameOrigin(r *request) bool {
	h := &r.ctx.Request.Header
	site := string(h.Peek("Sec-Fetch-Site"))
	if site != "" && site != "same-origin" {
		return false
	}
	if len(h.PeekAll("Origin")) > 1 {
		return false // no browser sends two
	}
	origin := string(h.Peek("Origin"))
	// A form posted from a page served with Referrer-Policy: no-referrer
	// carries "Origin: null"; Sec-Fetch-Site, which no page can set,
	// still tells where it came from.
	if origin == "" || origin == "null" {
		return site == "same-origin"
	}
	u, err := url.Parse(origin)
	// A browser's Origin is scheme://host[:port], never with user info.
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(u.Host, ":") ||
		u.Path != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(origin, "#") {
		return false
	}
	host := string(r.ctx.Host())
	if pub := s.conf().Portal.PublicURL; !r.ui && pub != "" {
		// The public address is the site with its scheme: a page on
		// http://host is another origin than https://host, even where the
		// proxy passes that Host on. Past it, only the listener's own
		// address reached directly (an operator's check behind the proxy).
		if origin == pub { // the config keeps it as browsers write an origin
			return true
		}
		return strings.EqualFold(u.Scheme, "http") && strings.EqualFold(u.Host, s.addr) && strings.EqualFold(u.Host, host)
	}
	return strings.EqualFold(u.Host, host)
}
