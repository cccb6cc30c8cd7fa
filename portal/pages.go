package portal

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"hookd/api"
)

// pageRoutes are the portal's pages (SPEC §12) and its one stylesheet and
// script, served under the listener's base ("" or /ui). Each page reads through s.ops with the session's scope; the
// buttons a page shows follow the session's capabilities, and the /api/
// routes they call check them again.
var pageRoutes = []route{
	{"GET", "/", CapView, (*Server).endpointsPage},
	{"GET", "/endpoints", CapView, (*Server).endpointsPage},
	{"GET", "/endpoints/new", CapView, (*Server).newEndpointPage},
	{"GET", "/endpoints/{}", CapView, (*Server).endpointPage},
	{"GET", "/deliveries", CapView, (*Server).deliveriesPage},
	{"GET", "/events/{}", CapView, (*Server).eventPage},
	{"GET", "/event-types", CapView, (*Server).eventTypesPage},
	// No session needed: the operators' login form (and the static files
	// it uses).
	{"GET", "/login", 0, (*Server).loginPage},
	{"GET", "/static/{}", 0, (*Server).staticFile},
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// asset is one embedded static file, served under a name carrying its
// content hash so it can be cached for a year.
type asset struct {
	body  []byte
	gz    []byte // body gzipped, sent to browsers that accept it
	ctype string
	etag  string
	hash  string
}

var assets = map[string]*asset{}

// templates are parsed once: the layout with each page's "content".
var templates = map[string]*template.Template{}

func init() {
	for name, ctype := range map[string]string{"portal.css": "text/css; charset=utf-8", "portal.js": "text/javascript; charset=utf-8", "icon.svg": "image/svg+xml"} {
		b, err := staticFS.ReadFile("static/" + name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:6])
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		assets[name] = &asset{body: b, gz: gz.Bytes(), ctype: ctype, etag: `"` + h + `"`, hash: h}
	}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, p := range pages {
		name := path.Base(p)
		if name == "layout.html" {
			continue
		}
		templates[strings.TrimSuffix(name, ".html")] = template.Must(
			template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", p))
	}
}

// page is what every template gets: the layout's fields and the page's
// own Data.
type page struct {
	Title    string // this page's title
	Site     string // [portal] title
	Base     string // "" or "/ui"
	Nav      string // the active navigation item
	CSRF     string
	Operator bool   // the operators' /ui/: every tenant
	Bare     bool   // no session: no navigation
	Tenant   string // the session's tenant ("" for operators)
	CSS, JS  string // asset URLs
	Icon     string
	caps     Caps
	Data     any
}

// Can reports whether the session holds a capability, by its API name.
func (p *page) Can(name string) bool {
	c, ok := capByName[name]
	return ok && p.caps.Has(c)
}

var capByName = map[string]Cap{
	"view": CapView, "manage_endpoints": CapManageEndpoints, "resend": CapResend,
	"test": CapTest, "view_secret": CapViewSecret, "rotate_secret": CapRotateSecret,
}

// render writes a page: the whole HTML is built before anything is sent,
// so a template error is a 500, never half a page.
func (s *Server) render(r *request, status int, name, nav, title string, data any) error {
	t := templates[name]
	if t == nil {
		return fmt.Errorf("portal: no template %q", name)
	}
	p := &page{
		Title: title, Site: s.title(), Base: r.base, Nav: nav, Data: data,
		CSS:  r.base + "/static/portal.css?v=" + assets["portal.css"].hash,
		JS:   r.base + "/static/portal.js?v=" + assets["portal.js"].hash,
		Icon: r.base + "/static/icon.svg?v=" + assets["icon.svg"].hash,
	}
	p.Bare = r.sess == nil
	if r.sess != nil {
		p.CSRF, p.caps = r.sess.CSRF, r.sess.Caps
		p.Operator, p.Tenant = r.sess.Scope.All(), r.sess.Scope.Tenant()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("portal: render %s: %w", name, err)
	}
	r.ctx.SetStatusCode(status)
	r.ctx.SetContentType("text/html; charset=utf-8")
	r.ctx.SetBody(buf.Bytes())
	return nil
}

// pageError renders an operation's *api.Error (a 404 for anything outside
// the scope) as a page; other errors go to the router (a 500).
func (s *Server) pageError(r *request, err error) error {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return err
	}
	return s.render(r, ae.Status, "error", "", pageTitle(ae.Status), ae)
}

// staticFile serves portal.css and portal.js: a year's cache when the
// URL carries the current content hash, revalidation by ETag otherwise.
func (s *Server) staticFile(r *request) error {
	a := assets[r.args[0]]
	if a == nil {
		return api.ErrNotFound
	}
	if query(r, "v") == a.hash {
		r.ctx.Response.Header.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		r.ctx.Response.Header.Set("Cache-Control", "no-cache")
	}
	r.ctx.Response.Header.Set("ETag", a.etag)
	if string(r.ctx.Request.Header.Peek("If-None-Match")) == a.etag {
		r.ctx.SetStatusCode(304)
		return nil
	}
	r.ctx.SetContentType(a.ctype)
	r.ctx.Response.Header.Set("Vary", "Accept-Encoding")
	// Only the static files are compressed: a page holds the CSRF token
	// next to text an attacker may choose (BREACH).
	if r.ctx.Request.Header.HasAcceptEncoding("gzip") {
		r.ctx.Response.Header.Set("Content-Encoding", "gzip")
		r.ctx.SetBody(a.gz)
		return nil
	}
	r.ctx.SetBody(a.body)
	return nil
}

// funcs are the templates' helpers. None returns template.HTML: every
// value a customer or a receiver controls is escaped by html/template.
var funcs = template.FuncMap{
	"ago":     ago,
	"abs":     absTime,
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"deref":   func(t *time.Time) time.Time { return *t },
	"pretty":  prettyJSON,
	"excerpt": responseExcerpt,
	"join":    strings.Join,
	"pct":     pct,
	"ms":      ms,
	"plural":  plural,
	"num":     num,
	"seq":     func(xs ...string) []string { return xs },
	"esc":     url.PathEscape,
	"q":       url.QueryEscape,
	"has": func(xs []string, x string) bool {
		for _, y := range xs {
			if y == x {
				return true
			}
		}
		return false
	},
}

// ago is t relative to now: "just now", "3 min ago", "in 5 min", "2 d ago".
func ago(t time.Time) string {
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 45*time.Second:
		if future {
			return "in a few seconds"
		}
		return "just now"
	case d < time.Hour:
		s = strconv.Itoa(int(math.Round(d.Minutes()))) + " min"
	case d < 48*time.Hour:
		s = strconv.Itoa(int(math.Round(d.Hours()))) + " h"
	default:
		s = strconv.Itoa(int(d.Hours()/24)) + " d"
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// absTime is the absolute time shown on hover, in UTC.
func absTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// prettyJSON indents a JSON document; anything else is shown as it is.
func prettyJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

// responseExcerpt is a receiver's answer as text: hookd stores it as JSON
// when it was JSON and as a JSON string otherwise.
func responseExcerpt(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return prettyJSON(raw)
}

func pct(n, of int) string {
	if of == 0 {
		return "–"
	}
	p := 100 * float64(n) / float64(of)
	if p > 99.9 && n < of {
		return "99.9%"
	}
	return strconv.FormatFloat(math.Floor(p*10)/10, 'f', -1, 64) + "%"
}

func ms(v float64) string {
	if v < 1 {
		return "<1 ms"
	}
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + " ms"
}

// toInt64 is a template's count as an int64 (templates pass int or
// int64).
func toInt64(n any) int64 {
	switch x := n.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	}
	return 0
}

// num writes a count with thousands separators: 12,345.
func num(n any) string {
	s := strconv.FormatInt(toInt64(n), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func plural(n any, one, many string) string {
	v := toInt64(n)
	if v == 1 {
		return "1 " + one
	}
	return num(v) + " " + many
}
