package delivery

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"hookd/store"
)

// EndpointConfig is one endpoint with defaults applied and secrets read;
// the daemon's config layer builds it.
type EndpointConfig struct {
	// ID is the endpoint's immutable internal id: deliveries, state and
	// counters belong to it, not to the name. A config endpoint's id is its
	// name (so removing and re-adding it keeps its parked deliveries); a
	// managed endpoint's is generated and never reused.
	ID          string
	Name        string
	Tenant      string // the platform's customer it belongs to; "" = a platform endpoint
	Description string
	Managed     bool              // created through the admin API, not the config file
	Metadata    map[string]string // the platform's own data about a managed endpoint
	// Deny lists networks this endpoint may not reach on top of the
	// sender's (a tenant endpoint's URL is the platform customer's input:
	// [tenants] deny_networks).
	Deny             []netip.Prefix
	URL              string
	Events           []string // exact names, "prefix.*" or "*"
	Headers          map[string]string
	Envelope         EnvelopeConfig
	Signing          SigningConfig
	Policy           Policy
	Timeout          time.Duration
	MaxInFlight      int
	RateLimit        float64 // requests per second; 0 = unlimited
	MaxResponseBytes int
	DisableAfter     time.Duration // disable after failing every attempt this long; 0 = never
	TestOnCreate     bool
	TestEventType    string
	// Internal endpoints (the [notify] target) only receive events
	// addressed to them, never by pattern.
	Internal bool
}

// Endpoint is an EndpointConfig prepared for use: templates parsed, keys
// decoded. It is immutable; a reload builds new ones.
type Endpoint struct {
	EndpointConfig
	envelope *Envelope
	signer   Signer
	headers  []headerTemplate
	limiter  *rate.Limiter // nil when unlimited
}

type headerTemplate struct {
	name string
	tmpl template
}

// FieldError says which endpoint setting is wrong.
type FieldError struct {
	Field string // "envelope", "signing", "headers.X-Name", "events"
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// NewEndpoint validates c. Errors are *FieldError and never contain a
// secret's value.
func NewEndpoint(c EndpointConfig) (*Endpoint, error) {
	e := &Endpoint{EndpointConfig: c}
	if e.ID == "" {
		e.ID = e.Name
	}
	var err error
	if e.envelope, err = NewEnvelope(c.Envelope); err != nil {
		return nil, &FieldError{"envelope", err}
	}
	if e.signer, err = NewSigner(c.Signing); err != nil {
		return nil, &FieldError{"signing", err}
	}
	for name, v := range c.Headers {
		t, err := parseTemplate(v, "id", "type", "timestamp")
		if err != nil {
			return nil, &FieldError{"headers." + name, err}
		}
		e.headers = append(e.headers, headerTemplate{name, t})
	}
	for _, p := range c.Events {
		if p == "" || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			return nil, &FieldError{"events", fmt.Errorf("pattern %q: use an exact name, prefix.* or *", p)}
		}
	}
	if c.RateLimit > 0 {
		e.limiter = rate.NewLimiter(rate.Limit(c.RateLimit), max(1, int(c.RateLimit)))
	}
	return e, nil
}

// Matches reports whether the endpoint subscribes to an event type.
func (e *Endpoint) Matches(eventType string) bool {
	for _, p := range e.Events {
		if p == "*" || p == eventType || (strings.HasSuffix(p, "*") && strings.HasPrefix(eventType, p[:len(p)-1])) {
			return true
		}
	}
	return false
}

// Render builds the request body for an event. A payload is delivered
// byte-for-byte; otherwise the endpoint's envelope wraps data.
func (e *Endpoint) Render(ev *store.Event) []byte {
	if ev.Payload {
		return ev.Raw
	}
	return e.envelope.Render(make([]byte, 0, len(ev.Raw)+len(ev.ID)+len(ev.Type)+len(ev.Tenant)+96), ev.ID, ev.Type, ev.Tenant, ev.Created, ev.Raw)
}

// Table is the immutable set of endpoints in force and which of them are
// disabled. A reload or an enable/disable swaps in a new Table; readers
// hold on to the one they loaded.
type Table struct {
	byName   map[string]*Endpoint
	byID     map[string]*Endpoint
	list     []*Endpoint
	platform []*Endpoint            // no tenant: they match every tenant's events
	byTenant map[string][]*Endpoint // a tenant's own endpoints
	disabled map[string]bool        // by id
}

// NewTable builds a table; names must be unique (the config checks).
func NewTable(eps []*Endpoint, disabled map[string]bool) *Table {
	t := &Table{byName: make(map[string]*Endpoint, len(eps)), byID: make(map[string]*Endpoint, len(eps)), list: eps, byTenant: map[string][]*Endpoint{}, disabled: disabled}
	for _, e := range eps {
		t.byName[e.Name] = e
		t.byID[e.ID] = e
		switch {
		case e.Internal:
		case e.Tenant == "":
			t.platform = append(t.platform, e)
		default:
			t.byTenant[e.Tenant] = append(t.byTenant[e.Tenant], e)
		}
	}
	return t
}

// Get returns the endpoint named name, or nil.
func (t *Table) Get(name string) *Endpoint { return t.byName[name] }

// ByID returns the endpoint whose internal id is id, or nil.
func (t *Table) ByID(id string) *Endpoint { return t.byID[id] }

// Name is the name of the endpoint with internal id id, or id itself when
// no such endpoint exists any more (a deleted managed endpoint).
func (t *Table) Name(id string) string {
	if e := t.byID[id]; e != nil {
		return e.Name
	}
	return id
}

// All returns the endpoints in config order.
func (t *Table) All() []*Endpoint { return t.list }

// Disabled reports whether the endpoint with internal id id is disabled
// (by a 410 or an operator).
func (t *Table) Disabled(id string) bool { return t.disabled[id] }

// withDisabled returns a copy of t with id's disabled flag set to on.
func (t *Table) withDisabled(id string, on bool) *Table {
	d := make(map[string]bool, len(t.disabled)+1)
	for k, v := range t.disabled {
		d[k] = v
	}
	if on {
		d[id] = true
	} else {
		delete(d, id)
	}
	return NewTable(t.list, d)
}

// TenantEndpoints returns tenant's own endpoints (not the platform's).
func (t *Table) TenantEndpoints(tenant string) []*Endpoint { return t.byTenant[tenant] }

// ErrNotRoutable: an event names an endpoint it cannot reach (unknown,
// internal, or another tenant's).
var ErrNotRoutable = errors.New("not an endpoint this event can reach")

// Route returns the endpoints an event of type typ and tenant should
// reach: the tenant's own endpoints and the platform endpoints whose
// patterns match (an event without a tenant reaches platform endpoints
// only). only, when non-empty, restricts it to those names, each of which
// must be reachable by tenant. Disabled endpoints are included: their
// deliveries are recorded as undeliverable (the caller checks Disabled).
// The cost grows with the tenant's and the platform's endpoints, never
// with all of them.
func (t *Table) Route(typ, tenant string, only []string) ([]*Endpoint, error) {
	own := t.byTenant[tenant]
	if tenant == "" {
		own = nil
	}
	reachable := func(e *Endpoint) bool { return e != nil && !e.Internal && (e.Tenant == "" || e.Tenant == tenant) }
	var out []*Endpoint
	if len(only) > 0 {
		for _, name := range only {
			e := t.byName[name]
			if !reachable(e) {
				return nil, fmt.Errorf("%w: %q", ErrNotRoutable, name)
			}
			if e.Matches(typ) && !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
		return out, nil
	}
	for _, group := range [][]*Endpoint{own, t.platform} {
		for _, e := range group {
			if e.Matches(typ) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}
