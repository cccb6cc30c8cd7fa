package portal

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"hookd/store"
)

// login is GET /login?token=…, the magic link: a valid, unexpired,
// unused token becomes a session for its tenant and capabilities, and the
// browser is sent on to the endpoints page. The token leaves no trace: the
// answer is a redirect that is neither cached nor sent on as a Referer.
func (s *Server) login(r *request) error {
	if s.key == nil {
		return errPortalOff
	}
	t, err := parseToken(s.key, string(r.ctx.QueryArgs().Peek("token")), s.now())
	if err != nil {
		return err
	}
	rec := store.PortalSession{Tenant: t.tenant, Caps: uint8(t.caps)}
	if err := s.startSession(r, rec, &t, ""); err != nil {
		return err
	}
	seeOther(r.ctx, r.base+"/endpoints")
	return nil
}

// logout is POST /logout: the session is deleted (not just its cookie),
// so a copy of the cookie is worthless from now on.
func (s *Server) logout(r *request) error {
	hash := sessionHash(r.ctx.Request.Header.Cookie(s.cookie(r.ui).name))
	if err := s.store.DeletePortalSession(r.ctx, hash); err != nil {
		return err
	}
	s.setCookie(r, "", time.Time{})
	r.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

// RevokeTenant ends every portal session of tenant (the tenant was
// deleted) and refuses every link minted for it until now; it returns how
// many sessions there were.
func (s *Server) RevokeTenant(ctx context.Context, tenant string) (int, error) {
	now := s.now()
	n, err := s.store.DeleteTenantSessions(ctx, tenant, now, now.Add(MaxLinkTTL))
	if err != nil {
		return 0, fmt.Errorf("revoke the portal sessions of tenant %s: %w", tenant, err)
	}
	return n, nil
}
