package portal

import (
	"strings"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"hookd/api"
	"hookd/config"
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
	ID    string
	Scope api.Scope
	Caps  Caps
	// CSRF is the token every state change must carry in X-CSRF-Token.
	CSRF string
}

// Options wire a Server.
type Options struct {
	Ops    api.Operations
	Config func() *config.Config // the config in force (reloads apply)
	Log    zerolog.Logger
}

// Server serves the portal's pages and /api/.
type Server struct {
	ops  api.Operations
	conf func() *config.Config
	log  zerolog.Logger
}

// New returns a portal server.
func New(o Options) *Server {
	return &Server{ops: o.Ops, conf: o.Config, log: o.Log}
}

// request is one request to a page or an /api/ route, after the session
// middleware: the session is loaded and its capability checked.
type request struct {
	ctx  *fasthttp.RequestCtx
	sess *Session
	// base is the prefix of every link: "" on the portal listener, "/ui"
	// on the admin listener.
	base string
	args []string // the {} segments of the route's pattern
}

// route is one page or /api/ route; need is the capability it takes.
type route struct {
	method, pattern string
	need            Cap
	h               func(s *Server, r *request) error
}

// title is the platform's [portal] title.
func (s *Server) title() string { return s.conf().Portal.Title }

// match matches a path against a pattern whose "{}" segments stand for
// one non-empty segment each.
func match(pattern, path string) ([]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var args []string
	for i := range ps {
		switch {
		case ps[i] == "{}" && xs[i] != "":
			args = append(args, xs[i])
		case ps[i] != xs[i]:
			return nil, false
		}
	}
	return args, true
}
