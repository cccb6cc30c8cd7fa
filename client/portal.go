package client

import (
	"context"
	"net/url"
	"time"
)

// PortalLinkRequest is the body of POST /v1/tenants/{tenant}/portal.
// Zero fields take the defaults: a 15m link with every capability.
type PortalLinkRequest struct {
	// TTL is how long the link may be used, at most "24h".
	TTL string `json:"ttl,omitempty"`
	// Capabilities are what the session may do: view (always),
	// manage_endpoints, resend, test, view_secret, rotate_secret. nil
	// means all of them; an empty list, view alone (it is sent, where
	// omitempty would leave it out and so widen it to all).
	Capabilities []string `json:"capabilities,omitzero"`
}

// PortalLink answers POST /v1/tenants/{tenant}/portal: a single-use magic
// link to the tenant's portal. Hand URL to the customer's browser (a
// redirect, or an iframe's src); it logs in once, until ExpiresAt.
type PortalLink struct {
	URL          string    `json:"url"`
	Token        string    `json:"token"`
	ExpiresAt    time.Time `json:"expires_at"`
	Capabilities []string  `json:"capabilities"`
}

// PortalLink mints a magic link to tenant's portal.
func (a *Admin) PortalLink(ctx context.Context, tenant string, r PortalLinkRequest) (*PortalLink, error) {
	return call[PortalLink](ctx, a.c, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/portal", r)
}
