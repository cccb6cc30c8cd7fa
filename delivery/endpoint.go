package delivery

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// EndpointConfig is one endpoint with defaults applied and secrets read;
// the daemon's config layer builds it.
type EndpointConfig struct {
	Name             string
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
func (e *Endpoint) Render(id, typ string, t time.Time, raw []byte, payload bool) []byte {
	if payload {
		return raw
	}
	return e.envelope.Render(make([]byte, 0, len(raw)+len(id)+len(typ)+96), id, typ, t, raw)
}

// Table is the immutable set of endpoints in force and which of them are
// disabled. A reload or an enable/disable swaps in a new Table; readers
// hold on to the one they loaded.
type Table struct {
	byName   map[string]*Endpoint
	list     []*Endpoint
	disabled map[string]bool
}

// NewTable builds a table; names must be unique (the config checks).
func NewTable(eps []*Endpoint, disabled map[string]bool) *Table {
	t := &Table{byName: make(map[string]*Endpoint, len(eps)), list: eps, disabled: disabled}
	for _, e := range eps {
		t.byName[e.Name] = e
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

// Route returns the enabled endpoints that should receive an event of type
// typ; only restricts to the named endpoints when non-empty.
func (t *Table) Route(typ string, only []string) []*Endpoint {
	var out []*Endpoint
	for _, e := range t.list {
		if e.Internal || t.disabled[e.Name] || !e.Matches(typ) {
			continue
		}
		if len(only) > 0 && !slices.Contains(only, e.Name) {
			continue
		}
		out = append(out, e)
	}
	return out
}
