package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"hookd/client"
	"hookd/config"
)

// Scope is whose data an operation may read and write: every tenant's
// (the admin API, the CLI, the operators' /ui/) or one tenant's (a portal
// session). The zero Scope owns nothing, so a forgotten scope fails closed.
type Scope struct {
	tenant string
	all    bool
}

// AllTenants is the operators' scope.
func AllTenants() Scope { return Scope{all: true} }

// TenantScope is one tenant's scope. An empty id owns nothing.
func TenantScope(tenant string) Scope { return Scope{tenant: tenant} }

// All reports whether s is the operators' scope.
func (s Scope) All() bool { return s.all }

// Tenant is the tenant s is limited to; "" for AllTenants.
func (s Scope) Tenant() string { return s.tenant }

// Owns reports whether data of tenant (an endpoint's, an event's) is in
// s. Platform data (tenant "") is only the operators'.
func (s Scope) Owns(tenant string) bool { return s.all || (s.tenant != "" && tenant == s.tenant) }

// Error is an error with the HTTP status and machine-readable code both
// HTTP layers answer with ({"error":{"code","message"}}). A message about
// one field starts with the field's name and ": ", which the portal uses
// to show it next to that field.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds; 0 for none
}

func (e *Error) Error() string { return e.Message }

// BadRequest is a 400 invalid_request.
func BadRequest(format string, args ...any) *Error {
	return &Error{Status: 400, Code: "invalid_request", Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is the answer for anything missing or outside the scope:
// another tenant's data looks exactly like data that does not exist.
var ErrNotFound = &Error{Status: 404, Code: "not_found", Message: "no such resource"}

// Hours is an endpoint's attempts per hour over the last 24 hours, oldest
// first, by outcome; Start is the first hour's start.
type Hours struct {
	Start     time.Time `json:"start"`
	Delivered [24]int   `json:"delivered"`
	Failed    [24]int   `json:"failed"`
}

// Operations are the endpoint, delivery and event operations, each bound
// to a scope. The admin API and the portal are thin HTTP layers over
// them: tenant isolation is enforced here, where data is read and
// written, so a handler cannot forget it. Something outside the scope is
// ErrNotFound. Errors are *Error or come from below (storage, shutdown).
//
// The ctx they take is the HTTP handler's *fasthttp.RequestCtx, which
// fasthttp recycles when the handler returns: an operation may wait on it,
// never hand it to anything that can outlive the call (context.AfterFunc,
// context.WithTimeout and the like on it, a resolver or dialer: they start
// goroutines that read it later, a data race the race detector caught in
// the test event's send).
type Operations interface {
	// Endpoints lists a page of endpoints by name; q.Tenant narrows the
	// operators' scope and must match a tenant scope's tenant.
	Endpoints(s Scope, q client.EndpointQuery) (*client.EndpointList, error)
	Endpoint(s Scope, name string) (*client.Endpoint, error)
	// CreateEndpoint creates a managed endpoint from a JSON body of
	// client.EndpointRequest. In a tenant scope the endpoint is the
	// tenant's: a different tenant in the body is refused.
	CreateEndpoint(ctx context.Context, s Scope, body []byte) (*client.CreatedEndpoint, error)
	// PatchEndpoint applies a JSON merge patch (RFC 7396).
	PatchEndpoint(ctx context.Context, s Scope, name string, patch []byte) (*client.Endpoint, error)
	DeleteEndpoint(ctx context.Context, s Scope, name string) error
	SetDisabled(ctx context.Context, s Scope, name string, disabled bool) (*client.EndpointState, error)
	TestEndpoint(ctx context.Context, s Scope, name string, r client.TestRequest) (*client.TestResult, error)
	EndpointSecret(s Scope, name string) (*client.Secrets, error)
	RotateSecret(ctx context.Context, s Scope, name string, r client.RotateRequest) (*client.Rotated, error)
	// EndpointHours is the endpoint's attempts per hour over the last day.
	EndpointHours(s Scope, name string) (*Hours, error)

	Deliveries(s Scope, q client.DeliveryQuery) (*client.DeliveryList, error)
	// Event is an event with its deliveries in the scope (a tenant sees
	// only its own endpoints' deliveries).
	Event(s Scope, id string) (*client.Event, error)
	Redeliver(ctx context.Context, s Scope, id string, r client.RedeliverRequest) (*client.Redelivered, error)
	RedeliverUndeliverable(ctx context.Context, s Scope, r client.RedeliverUndeliverableRequest) (*client.RedeliveredUndeliverable, error)
	EventTypes() *client.EventTypeList
}

// RotateBody is a rotate-secret request's body as sent: a secret or an
// overlap given empty (a mistake, as in the file) is told apart from one
// left out (hookd generates the secret; the overlap is 24h).
type RotateBody struct {
	Secret  *string `json:"secret"`
	Overlap *string `json:"overlap"`
}

// Request is b as the operations take it, or a 400 for an empty secret or
// overlap.
func (b RotateBody) Request() (client.RotateRequest, error) {
	var r client.RotateRequest
	if b.Secret != nil {
		if r.Secret = *b.Secret; strings.TrimSpace(r.Secret) == "" {
			return r, BadRequest("secret: is empty (omit it to have hookd generate one)")
		}
	}
	if b.Overlap != nil {
		if r.Overlap = *b.Overlap; strings.TrimSpace(r.Overlap) == "" {
			return r, BadRequest(`overlap: is empty (a duration such as "24h" or "0s"; omit it for 24h)`)
		}
	}
	return r, nil
}

// UndeliverableRedeliver is the body of POST …/undeliverable/redeliver as
// sent: since and until are RFC 3339 times or a duration ago ("1h",
// "7d"), as in the deliveries log's query. (The Go client's request has
// times, which it sends in RFC 3339.)
type UndeliverableRedeliver struct {
	Endpoint string  `json:"endpoint,omitempty"`
	Since    *string `json:"since,omitempty"`
	Until    *string `json:"until,omitempty"`
}

// Request is b with its times read against now.
func (b *UndeliverableRedeliver) Request(now time.Time) (client.RedeliverUndeliverableRequest, error) {
	out := client.RedeliverUndeliverableRequest{Endpoint: b.Endpoint}
	for _, f := range []struct {
		name string
		v    *string
		dst  *time.Time
	}{{"since", b.Since, &out.Since}, {"until", b.Until, &out.Until}} {
		if f.v == nil {
			continue
		}
		t, err := config.TimeOrAgo(*f.v, now)
		if err != nil {
			return out, BadRequest("%s: %v", f.name, err)
		}
		*f.dst = t
	}
	return out, nil
}
