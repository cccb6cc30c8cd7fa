package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/publicsuffix"

	"hookd/api"
	"hookd/store"
)

// Sessions are server-side (store/portal.go), so logout and a tenant's
// deletion end them at once. The cookie holds 256 random bits; the store
// keys the session by their SHA-256, so the database holds nothing that
// logs anyone in. A session ends after idleTimeout without a request
// (capped by session_ttl) or session_ttl after login, whichever is first;
// last_seen is written at most once a minute, not on every request.
const (
	idleTimeout = time.Hour
	touchEvery  = time.Minute
)

type cookieRule struct {
	name, path string
	secure     bool
	sameSite   fasthttp.CookieSameSite
}

// cookie is the session cookie's rule. On the portal: __Host- and Secure
// when public_url is https; SameSite=None (which needs Secure) when
// frame_ancestors lets another site embed the portal, so the cookie is
// sent inside the platform's iframe; Lax otherwise (a same-site parent,
// app.example.com framing hooks.example.com, gets a Lax cookie; a
// plain-http portal cannot be embedded with its session). At /ui/: its own
// name and path, so the two listeners' cookies (one host, any port) never
// mix.
func (s *Server) cookie(ui bool) cookieRule {
	if ui {
		return cookieRule{name: "hookd_ui_session", path: "/ui", sameSite: fasthttp.CookieSameSiteLaxMode}
	}
	p := s.conf().Portal
	if !strings.HasPrefix(p.PublicURL, "https://") {
		return cookieRule{name: "hookd_session", path: "/", sameSite: fasthttp.CookieSameSiteLaxMode}
	}
	c := cookieRule{name: "__Host-hookd_session", path: "/", secure: true, sameSite: fasthttp.CookieSameSiteLaxMode}
	if crossSite(p.PublicURL, p.FrameAncestors) {
		c.sameSite = fasthttp.CookieSameSiteNoneMode
	}
	return c
}

// crossSite reports whether an origin among ancestors is another site
// than public: another scheme, or another registrable domain (eTLD+1 by
// the public suffix list; an IP address is its own site).
func crossSite(public string, ancestors []string) bool {
	site := func(origin string) string {
		u, err := url.Parse(origin)
		if err != nil {
			return origin
		}
		host := u.Hostname()
		if net.ParseIP(host) == nil {
			if d, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
				host = d
			}
		}
		return u.Scheme + "://" + strings.ToLower(host)
	}
	own := site(public)
	for _, a := range ancestors {
		if site(a) != own {
			return true
		}
	}
	return false
}

func (s *Server) setCookie(r *request, value string, expires time.Time) {
	rule := s.cookie(r.ui)
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(rule.name)
	c.SetValue(value)
	c.SetPath(rule.path)
	c.SetHTTPOnly(true)
	c.SetSecure(rule.secure)
	c.SetSameSite(rule.sameSite)
	if value == "" {
		c.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		c.SetExpire(expires)
	}
	r.ctx.Response.Header.SetCookie(c)
}

func sessionHash(cookie []byte) []byte {
	h := sha256.Sum256(cookie)
	return h[:]
}

// adminPrint is what the operator session with cookie value cookie keeps
// of the admin token it was made under ("" for none): enough to tell
// tokens apart, nothing to log in with or to guess the token against
// without the cookie.
func adminPrint(cookie, token string) string {
	if token == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// startSession stores a new session for r's browser and sets its cookie.
// login, when set, is the token it spends (in the same commit); admin is
// the admin token an operator's session was checked against ("" for none).
func (s *Server) startSession(r *request, rec store.PortalSession, login *token, admin string) error {
	now := s.now()
	ttl := s.conf().Portal.SessionTTL.D()
	rec.CSRF, rec.Created, rec.LastSeen = randomString(), now, now
	rec.Expires = now.Add(ttl)
	rec.IdleExpires = now.Add(min(idleTimeout, ttl))
	id := randomString()
	hash := sessionHash([]byte(id))
	if rec.All {
		rec.AdminPrint = adminPrint(id, admin)
	}
	var err error
	if login != nil {
		err = s.store.PortalLogin(r.ctx, login.id[:], login.issued, login.expires, hash, rec)
	} else {
		err = s.store.PutPortalSession(r.ctx, hash, rec)
	}
	if err != nil {
		if errors.Is(err, store.ErrTokenUsed) {
			return errTokenUsed
		}
		if errors.Is(err, store.ErrTokenRevoked) {
			return errTokenRevoked
		}
		return err
	}
	s.setCookie(r, id, rec.Expires)
	r.sess = sessionOf(hash, &rec)
	return nil
}

func sessionOf(hash []byte, rec *store.PortalSession) *Session {
	sc := api.TenantScope(rec.Tenant)
	if rec.All {
		sc = api.AllTenants()
	}
	return &Session{ID: hex.EncodeToString(hash), Scope: sc, Caps: Caps(rec.Caps), CSRF: rec.CSRF}
}

// lookup loads the browser's session, if it has a live one of the
// listener's kind: a customer's on the portal, an operator's at /ui/.
func (s *Server) lookup(r *request) (*Session, error) {
	v := r.ctx.Request.Header.Cookie(s.cookie(r.ui).name)
	if len(v) == 0 {
		return nil, nil
	}
	hash := sessionHash(v)
	rec, err := s.store.PortalSession(hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !rec.Live(now) || rec.All != r.ui {
		return nil, nil
	}
	// What a reload changed since the session began: a shorter session_ttl
	// ends it sooner, and an operator's ends with the admin token it was
	// made under (set, changed or removed).
	if !now.Before(rec.Created.Add(s.conf().Portal.SessionTTL.D())) {
		return nil, nil
	}
	if rec.All && rec.AdminPrint != adminPrint(string(v), s.conf().AdminToken()) {
		// Ended for good: the token changed back must not revive it (a
		// reload that changes the token deletes them all; this is for one
		// changed across a restart).
		if err := s.store.DeletePortalSession(r.ctx, hash); err != nil {
			s.log.Warn().Err(err).Msg("delete an operator session whose admin token changed")
		}
		return nil, nil
	}
	if now.Sub(rec.LastSeen) >= touchEvery {
		idle := now.Add(min(idleTimeout, s.conf().Portal.SessionTTL.D()))
		if idle.After(rec.Expires) {
			idle = rec.Expires
		}
		s.store.TouchPortalSession(hash, now, idle)
	}
	return sessionOf(hash, rec), nil
}

// authenticate sets r.sess or answers: 401 (JSON on /api/; on the portal
// a page saying to ask for a new link; at /ui/ a redirect to the login
// form). At /ui/ without [admin] token, a browser's first request gets a
// session: the listener is open, and the session carries the CSRF token.
func (s *Server) authenticate(r *request, isAPI bool) bool {
	sess, err := s.lookup(r)
	if err != nil {
		s.fail(r, isAPI, err)
		return false
	}
	if sess != nil {
		r.sess = sess
		return true
	}
	method := string(r.ctx.Method())
	switch {
	case r.ui && s.conf().AdminToken() == "" && (method == "GET" || method == "HEAD") && !isAPI && ownNavigation(r):
		if err := s.startSession(r, operatorSession(), nil, ""); err != nil { // the token checked is none
			s.fail(r, isAPI, err)
			return false
		}
		return true
	case r.ui && s.conf().AdminToken() == "":
		s.fail(r, isAPI, errForbidden("open /ui/ from the browser's address bar: it starts a session only for its own pages"))
	case r.ui && !isAPI:
		seeOther(r.ctx, "/ui/login")
	case r.ui:
		s.fail(r, isAPI, errNoUISession)
	default:
		s.fail(r, isAPI, errNoSession)
	}
	return false
}

// ownNavigation reports a request that may start a tokenless operator
// session: the browser opening a /ui/ page itself (typed, bookmarked, or a
// link within /ui/), or a client that sends no Fetch metadata. A page of
// another site could otherwise make the browser start one session per
// request (an <img> each), and every session is a commit.
func ownNavigation(r *request) bool {
	h := &r.ctx.Request.Header
	switch string(h.Peek("Sec-Fetch-Site")) {
	case "", "none", "same-origin":
	default:
		return false
	}
	dest := string(h.Peek("Sec-Fetch-Dest"))
	return dest == "" || dest == "document"
}

// optionalSession sets r.sess when the browser has a live session, for
// a route that needs none.
func (s *Server) optionalSession(r *request) {
	if sess, err := s.lookup(r); err == nil {
		r.sess = sess
	}
}

func operatorSession() store.PortalSession {
	return store.PortalSession{All: true, Caps: uint8(AllCaps)}
}

// CSRFOf is the CSRF token of the live session whose cookie value is
// cookie, for in-process tests and tools (the page has it in its
// csrf-token meta tag); "" when there is none.
func (s *Server) CSRFOf(cookie string) string {
	rec, err := s.store.PortalSession(sessionHash([]byte(cookie)))
	if err != nil || !rec.Live(s.now()) {
		return ""
	}
	return rec.CSRF
}
