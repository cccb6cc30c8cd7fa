package daemon

import (
	"github.com/valyala/fasthttp"

	"hookd/api"
	"hookd/portal"
)

// Route is one route a listener serves.
type Route struct {
	Listener string // "ingest", "admin" or "portal"
	Method   string
	Path     string // "{}" stands for one path segment
}

// Routes lists every route of both listeners, taken from the tables the
// handlers dispatch on, so that a test can hold api/openapi.yaml to the
// code in both directions.
func Routes() []Route {
	rs := append([]Route(nil), ingestRoutes...)
	for _, r := range adminRoutes {
		rs = append(rs, Route{"admin", r.method, r.pattern})
	}
	for _, r := range portal.Routes() {
		rs = append(rs, Route{"portal", r.Method, r.Path})
	}
	// Served by prefix in handleAdmin when admin.pprof is on, not from
	// adminRoutes. (So is /ui/, the portal's pages and /api/ for
	// operators: the file describes its /api/ once, on the portal.)
	return append(rs, Route{"admin", "GET", "/debug/pprof/"}, Route{"admin", "GET", "/debug/pprof/{}"})
}

// adminOpenAPI serves the API description this binary was built with.
// application/yaml is the media type RFC 9512 registers for YAML.
func (d *Daemon) adminOpenAPI(ctx *fasthttp.RequestCtx, _ []string) error {
	ctx.SetContentType("application/yaml")
	ctx.SetBody(api.OpenAPI)
	return nil
}
