package client

import (
	"context"
	"encoding/json"
	"net/url"
)

// EndpointRequest is the body of POST /v1/endpoints: the keys of an
// [[endpoints]] table, durations and sizes as strings ("5s", "4KiB").
// Zero fields are left out, so the daemon's defaults apply; pointers
// tell a set zero from an unset one where the zero means something.
type EndpointRequest struct {
	Name        string            `json:"name,omitempty"` // "" has one generated: ep_ + a lower-case ULID
	Tenant      string            `json:"tenant,omitempty"`
	Description string            `json:"description,omitempty"` // at most 1 KiB
	Metadata    map[string]string `json:"metadata,omitempty"`    // at most 4 KiB
	URL         string            `json:"url"`
	Events      []string          `json:"events"`
	Headers     map[string]string `json:"headers,omitempty"`
	// Envelope is "standard" or an object with the file's envelope keys.
	Envelope json.RawMessage `json:"envelope,omitempty"`
	// Signing nil signs "standard" with a generated secret.
	Signing       *SigningRequest `json:"signing,omitempty"`
	Timeout       string          `json:"timeout,omitempty"`
	Schedule      *[]string       `json:"schedule,omitempty"` // an empty list means no retries
	StopOn4xx     *bool           `json:"stop_on_4xx,omitempty"`
	MaxRetryAfter string          `json:"max_retry_after,omitempty"`
	Jitter        *float64        `json:"jitter,omitempty"`
	MaxInFlight   *int            `json:"max_in_flight,omitempty"`
	RateLimit     *float64        `json:"rate_limit,omitempty"`
	// MaxResponseBytes is a byte count or a size such as "16KiB".
	MaxResponseBytes string `json:"max_response_bytes,omitempty"`
	// DisableAfter disables the endpoint once it has failed every attempt
	// this long ("5d").
	DisableAfter string `json:"disable_after,omitempty"`
	// Ordering is "fifo" for one delivery at a time in acknowledgement
	// order ("none" by default).
	Ordering string `json:"ordering,omitempty"`
	// Filter is an expr expression over type, tenant, id and data.
	Filter        string  `json:"filter,omitempty"`
	TestOnCreate  *bool   `json:"test_on_create,omitempty"`
	TestEventType *string `json:"test_event_type,omitempty"`
	// Disabled true creates the endpoint disabled: its events are parked
	// as undeliverable until it is enabled.
	Disabled *bool `json:"disabled,omitempty"`
	// IdempotencyKey, sent as the Idempotency-Key header, makes the create
	// safe to retry: for 24 hours the same request under it answers for the
	// endpoint the first made, secret included, and creates nothing.
	IdempotencyKey string `json:"-"`
}

// SigningRequest is an endpoint's signing: the keys of [endpoints.signing]
// but secret_file and secret_env, which only the file may use. An empty
// Secret has one generated for the scheme; the other keys are pointers
// because "" is a meaningful prefix or timestamp header.
type SigningRequest struct {
	Scheme          string  `json:"scheme,omitempty"` // standard (default), hmac-sha256 or none
	Secret          string  `json:"secret,omitempty"`
	Header          *string `json:"header,omitempty"`
	Prefix          *string `json:"prefix,omitempty"`
	Encoding        *string `json:"encoding,omitempty"`
	Content         *string `json:"content,omitempty"`
	TimestampHeader *string `json:"timestamp_header,omitempty"`
}

// CreateEndpoint creates a managed endpoint. The answer carries its secret,
// which no later read of the endpoint does (EndpointSecret does).
func (a *Admin) CreateEndpoint(ctx context.Context, r EndpointRequest) (*CreatedEndpoint, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var header []string
	if r.IdempotencyKey != "" {
		header = []string{"Idempotency-Key", r.IdempotencyKey}
	}
	var out CreatedEndpoint
	if _, err := a.c.sendH(ctx, "POST", "/v1/endpoints", body, &out, header...); err != nil {
		return nil, err
	}
	return &out, nil
}

// Endpoint returns one endpoint, config or managed, with its state.
func (a *Admin) Endpoint(ctx context.Context, name string) (*Endpoint, error) {
	return call[Endpoint](ctx, a.c, "GET", endpointPath(name), nil)
}

// PatchEndpoint changes a managed endpoint with a JSON merge patch
// (RFC 7396): a key present replaces the setting, a nil value resets it to
// the default, a nested map patches that object. "disabled": true|false
// is the same state as Disable and Enable. It answers the endpoint as it
// now is; a patch that fails validation changes nothing.
func (a *Admin) PatchEndpoint(ctx context.Context, name string, patch map[string]any) (*Endpoint, error) {
	if patch == nil {
		patch = map[string]any{} // null is not a patch
	}
	return call[Endpoint](ctx, a.c, "PATCH", endpointPath(name), patch)
}

// DeleteEndpoint deletes a managed endpoint; its pending deliveries become
// undeliverable with reason "endpoint deleted".
func (a *Admin) DeleteEndpoint(ctx context.Context, name string) error {
	return a.c.do(ctx, "DELETE", endpointPath(name), nil, nil)
}

// EndpointSecret reads a managed endpoint's secret back, with the rotated
// out ones that still sign.
func (a *Admin) EndpointSecret(ctx context.Context, name string) (*Secrets, error) {
	return call[Secrets](ctx, a.c, "GET", endpointPath(name)+"/secret", nil)
}

// RotateSecret gives a managed endpoint a new secret (see RotateRequest).
func (a *Admin) RotateSecret(ctx context.Context, name string, r RotateRequest) (*Rotated, error) {
	return call[Rotated](ctx, a.c, "POST", endpointPath(name)+"/rotate-secret", r)
}

// Tenants returns a page of the tenants that have endpoints, with counts.
func (a *Admin) Tenants(ctx context.Context, q TenantQuery) (*TenantList, error) {
	return call[TenantList](ctx, a.c, "GET", pagePath("/v1/tenants", q.Limit, q.Cursor), nil)
}

// DeleteTenant deletes a tenant's managed endpoints and revokes its portal
// sessions. Its config endpoints stay: the answer lists them as kept.
func (a *Admin) DeleteTenant(ctx context.Context, tenant string) (*DeletedTenant, error) {
	return call[DeletedTenant](ctx, a.c, "DELETE", "/v1/tenants/"+url.PathEscape(tenant), nil)
}

func endpointPath(name string) string { return "/v1/endpoints/" + url.PathEscape(name) }
