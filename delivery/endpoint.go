package delivery

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"hookd/store"
)

// EndpointConfig is one endpoint with defaults applied and secrets read;
// the daemon's config layer builds it.
type EndpointConfig struct {
	Name             string
	Tenant           string // the platform's customer it belongs to; "" = a platform endpoint
	Description      string
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
	TestOnCreate     bool
	TestEventType    string
	// Internal endpoints (the [notify] target) only receive events
	// addressed to them, never by pattern.
	Internal bool
	// Ordering is OrderingFIFO (one delivery at a time, in
	// acknowledgement order: see fifo.go) or OrderingNone.
	Ordering string
	// Filter is an expression an event must satisfy to be delivered here
	// (filter.go); "" delivers every event the patterns match.
	Filter string
}

// Ordering values.
const (
	OrderingNone = "none"
	OrderingFIFO = "fifo"
)

// Endpoint is an EndpointConfig prepared for use: templates parsed, keys
// decoded. It is immutable; a reload builds new ones.
type Endpoint struct {
	EndpointConfig
	envelope *Envelope
	signer   Signer
	headers  []headerTemplate
	limiter  *rate.Limiter // nil when unlimited
	filter   *Filter       // nil without one
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
	switch c.Ordering {
	case "":
		e.Ordering = OrderingNone
	case OrderingNone, OrderingFIFO:
	default:
		return nil, &FieldError{"ordering", fmt.Errorf("%q: must be %q or %q", c.Ordering, OrderingNone, OrderingFIFO)}
	}
	if c.Filter != "" {
		if e.filter, err = CompileFilter(c.Filter); err != nil {
			return nil, &FieldError{"filter", err}
		}
	}
	return e, nil
}

// Ordered reports whether the endpoint gets its deliveries one at a time
// in acknowledgement order.
func (e *Endpoint) Ordered() bool { return e.Ordering == OrderingFIFO }

// Filtered reports whether the endpoint has a filter: the event's data
// must then be parsed for Accepts.
func (e *Endpoint) Filtered() bool { return e.filter != nil }

// Accepts reports whether an event passes the endpoint's filter (true
// without one). An evaluation error rejects it.
func (e *Endpoint) Accepts(in *FilterInput) (bool, error) {
	if e.filter == nil {
		return true, nil
	}
	return e.filter.Match(in)
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
	list     []*Endpoint
	platform []*Endpoint            // no tenant: they match every tenant's events
	byTenant map[string][]*Endpoint // a tenant's own endpoints
	disabled map[string]bool
}

// NewTable builds a table; names must be unique (the config checks).
func NewTable(eps []*Endpoint, disabled map[string]bool) *Table {
	t := &Table{byName: make(map[string]*Endpoint, len(eps)), list: eps, byTenant: map[string][]*Endpoint{}, disabled: disabled}
	for _, e := range eps {
		t.byName[e.Name] = e
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

// All returns the endpoints in config order.
func (t *Table) All() []*Endpoint { return t.list }

// Disabled reports whether an endpoint is disabled (by a 410 or an operator).
func (t *Table) Disabled(name string) bool { return t.disabled[name] }

// withDisabled returns a copy of t with name's disabled flag set to on.
func (t *Table) withDisabled(name string, on bool) *Table {
	d := make(map[string]bool, len(t.disabled)+1)
	for k, v := range t.disabled {
		d[k] = v
	}
	if on {
		d[name] = true
	} else {
		delete(d, name)
	}
	return NewTable(t.list, d)
}

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
