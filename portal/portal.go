package portal

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"hookd/api"
	"hookd/config"
	"hookd/store"
)

// Cap is one capability a portal session may hold.
type Cap uint8

const (
	CapView Cap = 1 << iota
	CapManageEndpoints
	CapResend
	CapTest
	CapViewSecret
	CapRotateSecret

	AllCaps = CapView | CapManageEndpoints | CapResend | CapTest | CapViewSecret | CapRotateSecret
)

// Caps is a set of capabilities.
type Caps = Cap

// Has reports whether c holds every capability of x.
func (c Cap) Has(x Cap) bool { return c&x == x }

// Session is a logged-in browser: a customer's (one tenant's scope) or an
// operator's at /ui/ (every tenant).
type Session struct {
	// ID is the hex SHA-256 of the cookie's value: what the store keys
	// the session by. The cookie's value itself is never kept.
	ID    string
	Scope api.Scope
	Caps  Caps
	// CSRF is the token every state change must carry in X-CSRF-Token.
	CSRF string
}

// Options wire a Server.
type Options struct {
	Ops    api.Operations
	Store  *store.Store
	Config func() *config.Config // the config in force (reloads apply)
	Log    zerolog.Logger
	// Addr is the portal listener's bound address, "" when [portal]
	// listen is off: magic links default to http://Addr, and without it
	// no link can be minted (the operators' /ui/ works either way).
	Addr string
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Server serves the portal's pages and /api/ on the portal listener
// (Handler) and the operators' /ui/ on the admin listener (UIHandler).
type Server struct {
	ops   api.Operations
	store *store.Store
	conf  func() *config.Config
	log   zerolog.Logger
	addr  string
	now   func() time.Time
	// key signs magic-link tokens; nil when the portal listener is off.
	key []byte
	// writes limits each tenant's changes (limits.go).
	writes writeLimits
}

// New returns a portal server. With a portal listener it loads the
// token key: [portal] key_file, or the one generated once and kept in the
// database.
func New(ctx context.Context, o Options) (*Server, error) {
	s := &Server{ops: o.Ops, store: o.Store, conf: o.Config, log: o.Log, addr: o.Addr, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if o.Addr == "" {
		return s, nil
	}
	var err error
	if s.key, err = loadKey(ctx, o.Config(), o.Store); err != nil {
		return nil, err
	}
	return s, nil
}

// request is one request to a page or an /api/ route, after the session
// middleware: the session is loaded and its capability checked.
type request struct {
	ctx  *fasthttp.RequestCtx
	sess *Session // nil only on a route that needs no capability
	// base is the prefix of every link: "" on the portal listener, "/ui"
	// on the admin listener.
	base string
	ui   bool     // the operators' /ui/ on the admin listener
	args []string // the {} segments of the route's pattern
}

// route is one page or /api/ route; need is the capability it takes. A
// route that needs none (need 0: static assets, the /ui/ login form) is
// served without a session; r.sess is set when the browser has one.
type route struct {
	method, pattern string
	need            Cap
	h               func(s *Server, r *request) error
}

// title is the platform's [portal] title.
func (s *Server) title() string { return s.conf().Portal.Title }

var match = api.Match
