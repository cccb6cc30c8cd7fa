package daemon

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"hookd/api"
	"hookd/client"
	"hookd/config"
	"hookd/portal"
)

// portalParts are the customer portal (SPEC §12): its server, always
// there (the operators' /ui/ on the admin listener uses it), and its own
// listener when [portal] listen is set.
type portalParts struct {
	srv *portal.Server
	ln  net.Listener
	hs  *fasthttp.Server
}

var (
	errMisdirected = &apiError{Status: 421, Code: "misdirected_host",
		Message: "the admin listener answers only loopback Host names and addresses and those in admin.allowed_hosts"}
	errPortalOff = &apiError{Status: 409, Code: "portal_off",
		Message: "the portal is off: set [portal] listen (a restart-only key) to hand out portal links"}
)

// openPortal binds the portal listener, when there is one, and makes the
// portal server. Like the other listeners it binds here, in Open, so an
// address in use is Open's error.
func (d *Daemon) openPortal(cfg *config.Config, closers *[]func()) error {
	if cfg.Portal.Listen != "" {
		ln, err := listen(cfg.Portal.Listen)
		if err != nil {
			return err
		}
		d.portal.ln = ln
		*closers = append(*closers, func() { ln.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	d.portal.srv, err = portal.New(ctx, portal.Options{Ops: d, Store: d.store, Config: d.Config, Log: d.log.With().Str("component", "portal").Logger(),
		Addr: d.PortalAddr(), Now: d.PortalNow})
	if err != nil {
		return err
	}
	if d.portal.ln != nil {
		d.portal.hs = d.browserFacingServer("hookd-portal", d.portal.srv.Handler, d.portal.srv.ErrorHandler(d.serverErrors(false)), 64<<10)
	}
	return nil
}

// startPortal serves the portal listener and purges expired sessions and
// used link tokens every minute.
func (d *Daemon) startPortal(ctx context.Context) {
	if d.portal.hs != nil {
		d.serve(d.portal.hs, d.portal.ln)
	}
	d.every(ctx, time.Minute, func(ctx context.Context) {
		if n, err := d.store.PurgePortal(ctx, time.Now()); err != nil && ctx.Err() == nil {
			d.log.Error().Err(err).Msg("purge portal sessions")
		} else if n > 0 {
			d.log.Debug().Int("records", n).Msg("purged expired portal sessions and tokens")
		}
	})
}

// closePortal stops the portal listener first: customers' changes stop
// before the admin API and ingest do.
func (d *Daemon) closePortal() {
	if d.portal.hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.portal.hs.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		d.log.Warn().Err(err).Msg("portal listener shutdown")
	}
	d.portal.ln.Close()
}

// PortalAddr is the portal listener's bound address; "" when it is off.
func (d *Daemon) PortalAddr() string {
	if d.portal.ln == nil {
		return ""
	}
	return d.portal.ln.Addr().String()
}

// listeners are the bound listeners, which no endpoint may target.
func (d *Daemon) listeners() []net.Listener {
	lns := []net.Listener{d.ingestLn, d.adminLn}
	if d.portal.ln != nil {
		lns = append(lns, d.portal.ln)
	}
	return lns
}

// adminPortalLink is POST /v1/tenants/{tenant}/portal: a magic link to the
// tenant's portal. A tenant with no endpoints yet is fine (its customer
// adds the first). With no portal listener it is a 409 portal_off: there
// is nothing to log in to.
func (d *Daemon) adminPortalLink(ctx *fasthttp.RequestCtx, args []string) error {
	tenant := args[0]
	if !config.ValidID(tenant) {
		return badRequest("tenant: %s", config.IDRule)
	}
	var in client.PortalLinkRequest
	if err := decodeBody(ctx, &in); err != nil {
		return err
	}
	ttl := 15 * time.Minute
	if in.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(in.TTL); err != nil || ttl < time.Second || ttl > portal.MaxLinkTTL {
			return badRequest("ttl: %q: must be a duration between 1s and 24h, such as \"15m\"", in.TTL)
		}
	}
	if err := api.NonEmpty(ctx.PostBody(), "capabilities", "all of them"); err != nil {
		return badRequest("%v", err)
	}
	caps, err := portal.ParseCaps(in.Capabilities)
	if err != nil {
		return badRequest("capabilities: %v", err)
	}
	link, tok, exp, err := d.portal.srv.Mint(ctx, tenant, ttl, caps)
	if errors.Is(err, portal.ErrPortalOff) {
		return errPortalOff
	}
	if err != nil {
		return err
	}
	writeJSON(ctx, 201, client.PortalLink{URL: link, Token: tok, ExpiresAt: exp, Capabilities: caps.Names()})
	return nil
}

// allowedHost reports whether the admin listener answers a request with
// this Host: a loopback name or address, or one of admin.allowed_hosts
// (a name, or a name:port). A browser on a page whose DNS name was
// rebound to 127.0.0.1 sends that page's name, and is refused before any
// route or token check. A Unix socket is not reachable from a browser.
func (d *Daemon) allowedHost(ctx *fasthttp.RequestCtx) bool {
	if _, ok := ctx.LocalAddr().(*net.UnixAddr); ok {
		return true
	}
	host := strings.ToLower(string(ctx.Host()))
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]"), ".") // localhost. too
	if name == "localhost" {
		return true
	}
	if ip := net.ParseIP(name); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, a := range d.cfg.Load().Admin.AllowedHosts { // as config wrote them: lower case, no final dot
		if a == host || a == name {
			return true
		}
	}
	return false
}

// PortalCSRF is the CSRF token of the portal or /ui/ session whose
// cookie value is cookie ("" for none): for in-process tests, which have
// no page to read it from. Whoever holds the cookie can read it anyway.
func (d *Daemon) PortalCSRF(cookie string) string { return d.portal.srv.CSRFOf(cookie) }
