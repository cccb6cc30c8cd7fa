package portal

import (
	"strings"

	"github.com/valyala/fasthttp"

	"hookd/api"
)

// Handler serves the portal listener: the magic-link login, the pages and
// /api/, for customers.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) { s.serve(ctx, false) }

// UIHandler serves /ui and /ui/… on the admin listener: the same pages
// and /ui/api/ for operators, over every tenant. The admin listener calls
// it after its Host check and instead of its bearer-token check (a
// browser cannot send one): with [admin] token set, /ui/login asks for it.
func (s *Server) UIHandler(ctx *fasthttp.RequestCtx) { s.serve(ctx, true) }

func (s *Server) serve(ctx *fasthttp.RequestCtx, ui bool) {
	s.secure(ctx, ui)
	r := &request{ctx: ctx, ui: ui}
	path := api.Path(ctx)
	if ui {
		r.base = "/ui"
		path = strings.TrimPrefix(path, "/ui")
		if path == "" {
			seeOther(ctx, "/ui/")
			return
		}
	}
	// The operators' session cookie is Lax: another site's page (another
	// port of localhost is one) had its GETs answered, pages and /ui/api/
	// alike. Of /ui/ it gets only a link followed to a page.
	if ui && api.FromOtherSite(ctx) && !api.Navigation(ctx) {
		s.fail(r, strings.HasPrefix(path, "/api/"), errForbidden("another site's page: /ui/ answers it nothing but a link followed to one of its pages"))
		return
	}
	method := string(ctx.Method())
	switch {
	case path == "/login" && !ui:
		s.only(r, "GET", (*Server).login)
		return
	case path == "/login" && method == "POST":
		s.uiLogin(r)
		return
	case path == "/logout":
		if method != "POST" {
			s.methodNotAllowed(r, true, "POST")
			return
		}
		if s.authenticate(r, true) && s.checkCSRF(r) {
			if err := s.logout(r); err != nil {
				s.fail(r, true, err)
			}
		}
		return
	case path == "/api" || strings.HasPrefix(path, "/api/"):
		s.dispatch(r, apiRoutes, path, true)
		return
	}
	s.dispatch(r, pageRoutes, path, false)
}

// only runs h when the method is m.
func (s *Server) only(r *request, m string, h func(*Server, *request) error) {
	if string(r.ctx.Method()) != m {
		s.methodNotAllowed(r, false, m)
		return
	}
	if err := h(s, r); err != nil {
		s.fail(r, false, err)
	}
}

// dispatch finds the route, then runs the middleware every route gets in
// the same order: session, capability, CSRF (every method but GET and
// HEAD), handler.
func (s *Server) dispatch(r *request, routes []route, path string, isAPI bool) {
	method := string(r.ctx.Method())
	var allowed []string
	for _, rt := range routes {
		args, ok := match(rt.pattern, path)
		if !ok {
			continue
		}
		if method != rt.method && !(method == "HEAD" && rt.method == "GET") {
			allowed = append(allowed, rt.method)
			continue
		}
		r.args = args
		if rt.need == 0 {
			s.optionalSession(r)
		} else if !s.authenticate(r, isAPI) {
			return
		} else if !r.sess.Caps.Has(rt.need) {
			s.fail(r, isAPI, errForbidden("this link does not allow "+capNames(rt.need&^r.sess.Caps)))
			return
		}
		if method != "GET" && method != "HEAD" {
			if !s.checkCSRF(r) {
				return
			}
			if rt.need != 0 && !r.sess.Scope.All() {
				if err := s.writes.allow(r.sess.Scope.Tenant(), s.now()); err != nil {
					s.fail(r, isAPI, err)
					return
				}
			}
		}
		err := api.CheckQuery(r.ctx.QueryArgs(), listQueries[rt.method+" "+rt.pattern])
		if err == nil {
			err = rt.h(s, r)
		}
		if err != nil {
			s.fail(r, isAPI, err)
		}
		return
	}
	// Which pages exist is no secret, but an operator who is not logged
	// in is better served by the login form than by a 404.
	if r.ui && !isAPI && !s.authenticate(r, false) {
		return
	}
	if len(allowed) > 0 {
		s.methodNotAllowed(r, isAPI, strings.Join(allowed, ", "))
		return
	}
	s.fail(r, isAPI, errNoRoute)
}

// ErrorHandler wraps the listener's answer to a request that never
// reached the router (malformed, too large, too slow) so that it carries
// the headers every portal answer does.
func (s *Server) ErrorHandler(answer func(*fasthttp.RequestCtx, error)) func(*fasthttp.RequestCtx, error) {
	return func(ctx *fasthttp.RequestCtx, err error) {
		answer(ctx, err)
		s.secure(ctx, false)
	}
}

// secure sets the headers every answer carries. Cache-Control is no-store
// by default, as nearly every answer is bound to a session; a static
// asset's handler may override it.
func (s *Server) secure(ctx *fasthttp.RequestCtx, ui bool) {
	h := &ctx.Response.Header
	ancestors := "'none'"
	if fa := s.conf().Portal.FrameAncestors; len(fa) > 0 && !ui {
		ancestors = strings.Join(fa, " ")
	} else {
		h.Set("X-Frame-Options", "DENY")
	}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors "+ancestors)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// seeOther redirects to path on this site. The Location stays relative:
// behind the platform's proxy, hookd does not know the address the
// browser used.
func seeOther(ctx *fasthttp.RequestCtx, path string) {
	ctx.Response.Header.Set("Location", path)
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
}
