package delivery

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hookd/store"
)

// EndpointConfig is one endpoint with defaults applied and secrets read;
// the daemon's config layer builds it.
type EndpointConfig struct {
	// ID is the endpoint's immutable internal id: deliveries, state and
	// counters belong to it, not to the name. A config endpoint's id is its
	// name, or name@tenant for a tenant's (config.ConfigID: removing and
	// re-adding it keeps its parked deliveries, giving it another tenant
	// does not); a managed endpoint's is generated and never reused.
	ID          string
	Name        string
	Tenant      string // the platform's customer it belongs to; "" = a platform endpoint
	Description string
	Managed     bool // created through the admin API, not the config file
	// Internal endpoints (the [notify] target) only receive events
	// addressed to them, never by pattern.
	Internal     bool
	TestOnCreate bool
	Metadata     map[string]string // the platform's own data about a managed endpoint
	// Deny lists networks this endpoint may not reach on top of the
	// sender's (a tenant endpoint's URL is the platform customer's input:
	// [tenants] deny_networks).
	Deny    []netip.Prefix
	URL     string
	Events  []string // exact names, "prefix.*" or "*"
	Headers map[string]string
	// Envelope and Policy are shared by the endpoints that have the same
	// (almost every managed one): pointers keep each built endpoint in a
	// smaller size class. Never change one in place. nil is the zero value.
	Envelope *EnvelopeConfig
	// Signing is read once, by NewEndpoint: a built endpoint keeps only its
	// scheme here (a value shared by every endpoint with that scheme), and
	// its secrets live in its signer alone, so no copy of an endpoint
	// carries them and 100,000 endpoints do not each hold a second one.
	Signing          *SigningConfig
	Policy           *Policy
	Timeout          time.Duration
	MaxInFlight      int
	RateLimit        float64 // requests per second; 0 = unlimited
	MaxResponseBytes int
	DisableAfter     time.Duration // disable after failing every attempt this long; 0 = never
	TestEventType    string
	// Ordering is OrderingFIFO (one delivery at a time, in
	// acknowledgement order: see fifo.go) or OrderingNone.
	Ordering string
	// Filter is an expression an event must satisfy to be delivered here
	// (filter.go); "" delivers every event the patterns match.
	Filter string
}

// noPolicy is the zero Policy (no retries), for configs without one.
var noPolicy Policy

// ManagedIDPrefix begins every managed endpoint's id; a config endpoint's
// id begins with its name, which has no colon.
const ManagedIDPrefix = "m:"

// ManagedID is the id of a new managed endpoint, made from a number the
// store never hands out twice (store.NextNumber): in base 36, ten digits
// until 2086 (numbers are at least the time in microseconds), so ids sort
// in the order they were made, after the ULID ids of endpoints made before
// (m:01…), which are longer. An id is in the key of every delivery and
// attempt of its endpoint, several times over in the database and its
// indexes: a dozen characters instead of the 28 of a ULID id took ~4% of
// the CPU per event off with one endpoint (README, Tenants → Scale).
func ManagedID(n uint64) string { return ManagedIDPrefix + strconv.FormatUint(n, 36) }

// IsManagedID says whether id is a managed endpoint's (a ULID one too).
func IsManagedID(id string) bool { return strings.HasPrefix(id, ManagedIDPrefix) }

// Reasons a delivery whose endpoint left the table is parked with: a
// managed endpoint leaves it only by a delete through the API, a config
// endpoint by a reload of a file without it.
const (
	ReasonDeleted = "endpoint deleted"
	ReasonRemoved = "endpoint removed"
)

// ReasonDisabled is why a delivery to a disabled endpoint is undeliverable
// when it is not parked by the disable itself (which gives who did it):
// routed to it while disabled, or come due before its parking.
const ReasonDisabled = "endpoint disabled"

// goneReason is why a delivery to the endpoint with internal id id, no
// longer in the table, is parked.
func goneReason(id string) string {
	if IsManagedID(id) {
		return ReasonDeleted
	}
	return ReasonRemoved
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
	filter   *Filter // nil without one
	// every: Events has "*" (almost every tenant endpoint). Routing reads
	// it instead of the patterns: with 100,000 tenant endpoints, those are
	// two more cold objects to fetch for each event.
	every bool
	// sched is the scheduler's record of this endpoint once it has looked
	// it up (Scheduler.stateOf), shared by the endpoint's copies (pack).
	sched *schedRef
}

// schedRef holds an endpoint's scheduler record: a new delivery carries its
// endpoint from ingest (Routed), and with 100,000 endpoints finding the
// record through it instead of the map by id saves a cache miss or two.
type schedRef struct{ st atomic.Pointer[epState] }

type headerTemplate struct {
	name string
	tmpl template
}

// everyEvent is the Events of every endpoint that has only "*". Never
// change it in place.
var everyEvent = []string{"*"}

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
	e := &Endpoint{EndpointConfig: c, sched: new(schedRef)}
	if e.ID == "" {
		e.ID = e.Name
	}
	if len(e.Events) == 1 && e.Events[0] == "*" {
		e.Events = everyEvent // two objects fewer for each of 100,000 endpoints
	}
	if e.Policy == nil {
		e.Policy = &noPolicy
	}
	env := EnvelopeConfig{}
	if c.Envelope != nil {
		env = *c.Envelope
	}
	var err error
	if e.envelope, err = sharedEnvelope(env); err != nil {
		return nil, &FieldError{"envelope", err}
	}
	var sc SigningConfig
	if c.Signing != nil {
		sc = *c.Signing
	}
	if e.signer, err = NewSigner(sc); err != nil {
		return nil, &FieldError{"signing", err}
	}
	e.Signing = schemeOnly[sc.Scheme]
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
		e.every = e.every || p == "*"
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

// reservedHeaders are set by hookd or by the HTTP exchange itself: an
// endpoint's headers may not replace them.
var reservedHeaders = map[string]bool{"host": true, "content-length": true, "transfer-encoding": true,
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true, "trailer": true, "upgrade": true, "expect": true}

// CheckHeaders refuses headers that would not go out as written: a name
// that is not an HTTP token, a value with control characters (a CR or LF
// would split it), a header hookd sets; among the custom headers, one the
// endpoint's signing sets; among the signing's own (hmac-sha256's header,
// timestamp_header and prefix), one set twice. It is not part of
// NewEndpoint: the config file and API input are checked, an endpoint
// stored before the check still builds. Errors are *FieldError.
func (e *Endpoint) CheckHeaders() error {
	signs := map[string]bool{}
	for _, h := range e.signer.Sign(nil, &Message{}) { // the names and prefixes hmac-sha256 is given
		err := checkHeader(h.Name, h.Value, signs)
		if n := strings.ToLower(h.Name); err == nil && (n == "content-type" || n == "user-agent") {
			// An endpoint's own headers may replace these; a signature
			// in their place would replace application/json.
			err = errors.New("hookd sets this header itself")
		}
		if err != nil {
			return &FieldError{"signing", fmt.Errorf("header %q: %w", h.Name, err)}
		}
		signs[strings.ToLower(h.Name)] = true
	}
	seen := map[string]bool{}
	for name, v := range e.Headers {
		if err := checkHeader(name, v, signs); err != nil {
			return &FieldError{"headers." + name, err}
		}
		if seen[strings.ToLower(name)] {
			return &FieldError{"headers." + name, errors.New("set twice (header names are case-insensitive)")}
		}
		seen[strings.ToLower(name)] = true
	}
	return nil
}

func checkHeader(name, value string, signs map[string]bool) error {
	switch {
	case name == "" || len(name) > 256 || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0:
		return errors.New("the name must be 1-256 characters of an HTTP token (letters, digits, !#$%&'*+-.^_`|~)")
	case reservedHeaders[strings.ToLower(name)]:
		return errors.New("hookd sets this header itself")
	case signs[strings.ToLower(name)]:
		return errors.New("the endpoint's signing sets this header")
	case strings.ContainsFunc(value, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }):
		return errors.New("the value must not contain control characters")
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r < 0x7f && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

// Sign returns the signature headers e sends with m.
func (e *Endpoint) Sign(m *Message) []Header { return e.signer.Sign(nil, m) }

// Ordered reports whether the endpoint gets its deliveries one at a time
// in acknowledgement order.
func (e *Endpoint) Ordered() bool { return e.Ordering == OrderingFIFO }

// CheckFilterWritten is the filter's CheckWritten, nil without a filter.
func (e *Endpoint) CheckFilterWritten() error {
	if e.filter == nil {
		return nil
	}
	return e.filter.CheckWritten()
}

// FilterUsesRegex reports whether the endpoint's filter uses matches.
func (e *Endpoint) FilterUsesRegex() bool { return e.filter != nil && e.filter.UsesRegex() }

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
	if e.every {
		return true
	}
	for _, p := range e.Events {
		if PatternMatches(p, eventType) {
			return true
		}
	}
	return false
}

// PatternMatches reports whether an events pattern (an exact name,
// "prefix.*" or "*") matches an event type.
func PatternMatches(pattern, eventType string) bool {
	return pattern == "*" || pattern == eventType ||
		(strings.HasSuffix(pattern, "*") && strings.HasPrefix(eventType, pattern[:len(pattern)-1]))
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
// disabled. A reload, an API change or an enable/disable swaps in a new
// Table; readers hold on to the one they loaded.
//
// Config endpoints (a few, from the file) are indexed afresh on every
// reload. Managed endpoints (up to hundreds of thousands, changed one at a
// time through the API) live in a sharded index that a change copies one
// shard of, so a change costs a few hundred entries, not all of them.
type Table struct {
	config   *index // the config file's endpoints and [notify]
	managed  *shardedIndex
	disabled map[string]bool // by id
	// gen is unique to this table: the scheduler keeps an endpoint it
	// looked up with the gen of the table it was in, and looks again only
	// in a table of another gen (holding the table would keep old ones).
	gen uint64

	tenantsOnce sync.Once
	tenants     []string // sorted, made when first listed (Tenants)
}

// tableGen numbers tables; 0 is never one's.
var tableGen atomic.Uint64

func newTable(config *index, managed *shardedIndex, disabled map[string]bool) *Table {
	return &Table{config: config, managed: managed, disabled: disabled, gen: tableGen.Add(1)}
}

// index maps one set of endpoints by name, id and tenant.
type index struct {
	byName   map[string]*Endpoint
	byID     map[string]*Endpoint
	byTenant map[string][]*Endpoint // a tenant's own endpoints
	platform []*Endpoint            // no tenant: they match every tenant's events
	list     []*Endpoint
	ordered  int // how many have ordering = "fifo"
}

func newIndex(eps []*Endpoint) *index {
	x := &index{byName: make(map[string]*Endpoint, len(eps)), byID: make(map[string]*Endpoint, len(eps)), byTenant: map[string][]*Endpoint{}, list: eps}
	for _, e := range eps {
		x.add(e)
	}
	return x
}

func (x *index) add(e *Endpoint) {
	x.byName[e.Name] = e
	x.byID[e.ID] = e
	if e.Ordered() {
		x.ordered++
	}
	switch {
	case e.Internal:
	case e.Tenant == "":
		x.platform = append(x.platform, e)
	default:
		x.byTenant[e.Tenant] = append(x.byTenant[e.Tenant], e)
	}
}

const shards = 256

// shardedIndex holds managed endpoints in shards by name; byID and
// byTenant are sharded by their own keys. Shards are never modified once
// published: a change copies the shards it touches.
type shardedIndex struct {
	byName   [shards]map[string]*Endpoint
	byID     [shards]map[string]*Endpoint
	byTenant [shards]map[string][]*Endpoint
	platform []*Endpoint
	n        int
	ordered  int // how many have ordering = "fifo"
}

func shardOf(key string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return int(h % shards)
}

// NewTable builds a table of config endpoints; names must be unique (the
// config checks).
func NewTable(eps []*Endpoint, disabled map[string]bool) *Table {
	return newTable(newIndex(eps), &shardedIndex{}, disabled)
}

// WithConfig returns t with its config endpoints replaced (a reload);
// managed endpoints and disabled flags stay.
func (t *Table) WithConfig(eps []*Endpoint) *Table {
	return newTable(newIndex(eps), t.managed, t.disabled)
}

// WithAllManaged returns t with its managed endpoints replaced by eps,
// indexed in one pass (at start, and after a reload rebuilt them).
func (t *Table) WithAllManaged(eps []*Endpoint) *Table {
	eps = pack(eps)
	m := &shardedIndex{n: len(eps)}
	// Sized for the shard's share (with room for the spread of the hash),
	// so that 100,000 endpoints do not grow each map step by step.
	per := len(eps)/shards + len(eps)/shards/8 + 1
	for i := range shards {
		m.byName[i], m.byID[i], m.byTenant[i] = make(map[string]*Endpoint, per), make(map[string]*Endpoint, per), make(map[string][]*Endpoint, per)
	}
	// A tenant's endpoints are carved out of one array (most tenants have
	// one: a slice each was 100,000 objects for the collector); each
	// carving's capacity ends at its length, so a later change copies it.
	count := map[string]int{}
	for _, e := range eps {
		if e.Tenant != "" {
			count[e.Tenant]++
		}
	}
	all, next := make([]*Endpoint, 0, len(eps)), 0
	for _, e := range eps {
		m.byName[shardOf(e.Name)][e.Name] = e
		m.byID[shardOf(e.ID)][e.ID] = e
		if e.Ordered() {
			m.ordered++
		}
		if e.Tenant == "" {
			m.platform = append(m.platform, e)
			continue
		}
		ts := shardOf(e.Tenant)
		own, ok := m.byTenant[ts][e.Tenant]
		if !ok {
			n := count[e.Tenant]
			own, next = all[next:next:next+n], next+n
		}
		m.byTenant[ts][e.Tenant] = append(own, e)
	}
	return newTable(t.config, m, t.disabled)
}

// AnyOrdered reports whether any endpoint has ordering = "fifo": when none
// has, asking whether a delivery's endpoint is ordered needs no lookup.
func (t *Table) AnyOrdered() bool { return t.config.ordered > 0 || t.managed.ordered > 0 }

// ConfigEndpoints returns the config's endpoints, in file order.
func (t *Table) ConfigEndpoints() []*Endpoint { return t.config.list }

// WithManaged returns t with managed endpoint e added, or replacing the
// one of the same name.
func (t *Table) WithManaged(e *Endpoint) *Table {
	m := t.managed.without(e.Name)
	m.put(e)
	return newTable(t.config, m, t.disabled)
}

// WithManagedOf returns t with the managed endpoints of o.
func (t *Table) WithManagedOf(o *Table) *Table {
	return newTable(t.config, o.managed, t.disabled)
}

// ManagedChanges returns the managed endpoints of t that since does not
// have as they are (created, or changed: a change puts in a new
// endpoint), and those of since that t does not have (deleted). It looks
// only in the shards a change copied (a shard is never changed once
// published: the same map is the same endpoints), so it costs what
// changed, not every endpoint.
func (t *Table) ManagedChanges(since *Table) (changed, deleted []*Endpoint) {
	now, then := t.managed, since.managed
	for i := range shards {
		if reflect.ValueOf(now.byID[i]).UnsafePointer() == reflect.ValueOf(then.byID[i]).UnsafePointer() {
			continue
		}
		for id, e := range now.byID[i] {
			if then.byID[i][id] != e {
				changed = append(changed, e)
			}
		}
		for id, e := range then.byID[i] {
			if now.byID[i][id] == nil {
				deleted = append(deleted, e)
			}
		}
	}
	return changed, deleted
}

// WithoutManaged returns t without the managed endpoint named name.
func (t *Table) WithoutManaged(name string) *Table {
	return newTable(t.config, t.managed.without(name), t.disabled)
}

// copyShard returns a copy of m to change (a new map when m is nil).
func copyShard[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// without returns a copy of x without the endpoint named name (the copy
// shares every shard it does not change).
func (x *shardedIndex) without(name string) *shardedIndex {
	c := *x
	old := x.byName[shardOf(name)][name]
	if old == nil {
		return &c
	}
	c.n--
	if old.Ordered() {
		c.ordered--
	}
	ns, is := shardOf(name), shardOf(old.ID)
	c.byName[ns] = copyShard(x.byName[ns])
	delete(c.byName[ns], name)
	c.byID[is] = copyShard(x.byID[is])
	delete(c.byID[is], old.ID)
	if old.Tenant == "" {
		c.platform = slices.DeleteFunc(slices.Clone(x.platform), func(e *Endpoint) bool { return e == old })
	} else {
		ts := shardOf(old.Tenant)
		c.byTenant[ts] = copyShard(x.byTenant[ts])
		if rest := slices.DeleteFunc(slices.Clone(x.byTenant[ts][old.Tenant]), func(e *Endpoint) bool { return e == old }); len(rest) > 0 {
			c.byTenant[ts][old.Tenant] = rest
		} else {
			delete(c.byTenant[ts], old.Tenant)
		}
	}
	return &c
}

// put adds e to x, which the caller has just copied (without).
func (x *shardedIndex) put(e *Endpoint) {
	x.n++
	if e.Ordered() {
		x.ordered++
	}
	ns, is := shardOf(e.Name), shardOf(e.ID)
	x.byName[ns] = copyShard(x.byName[ns])
	x.byName[ns][e.Name] = e
	x.byID[is] = copyShard(x.byID[is])
	x.byID[is][e.ID] = e
	if e.Tenant == "" {
		x.platform = append(slices.Clip(x.platform), e)
		return
	}
	ts := shardOf(e.Tenant)
	x.byTenant[ts] = copyShard(x.byTenant[ts])
	x.byTenant[ts][e.Tenant] = append(slices.Clip(x.byTenant[ts][e.Tenant]), e)
}

// Get returns the endpoint named name, or nil.
func (t *Table) Get(name string) *Endpoint {
	if e := t.config.byName[name]; e != nil {
		return e
	}
	return t.Managed(name)
}

// ByID returns the endpoint whose internal id is id, or nil.
func (t *Table) ByID(id string) *Endpoint {
	if e := t.config.byID[id]; e != nil {
		return e
	}
	return t.managed.byID[shardOf(id)][id]
}

// Name is the name of the endpoint with internal id id, or id itself when
// no such endpoint exists any more (a deleted managed endpoint).
func (t *Table) Name(id string) string {
	if e := t.ByID(id); e != nil {
		return e.Name
	}
	return id
}

// All returns every endpoint: the config's in file order, then the
// managed ones in no particular order. It allocates; hot paths use Get,
// ByID and Route.
func (t *Table) All() []*Endpoint {
	return t.appendManaged(append(make([]*Endpoint, 0, len(t.config.list)+t.managed.n), t.config.list...))
}

// Managed returns the managed endpoint named name, or nil (a config
// endpoint of that name is not one).
func (t *Table) Managed(name string) *Endpoint { return t.managed.byName[shardOf(name)][name] }

// ManagedEndpoints returns the managed endpoints in no particular order.
func (t *Table) ManagedEndpoints() []*Endpoint {
	return t.appendManaged(make([]*Endpoint, 0, t.managed.n))
}

// ManagedCount is how many managed endpoints t has.
func (t *Table) ManagedCount() int { return t.managed.n }

func (t *Table) appendManaged(out []*Endpoint) []*Endpoint {
	for _, m := range t.managed.byID {
		for _, e := range m {
			out = append(out, e)
		}
	}
	return out
}

// Disabled reports whether the endpoint with internal id id is disabled
// (by a 410 or an operator).
func (t *Table) Disabled(id string) bool { return t.disabled[id] }

// WithDisabled returns a copy of t with id's disabled flag set to on.
func (t *Table) WithDisabled(id string, on bool) *Table {
	d := make(map[string]bool, len(t.disabled)+1)
	for k, v := range t.disabled {
		d[k] = v
	}
	if on {
		d[id] = true
	} else {
		delete(d, id)
	}
	return newTable(t.config, t.managed, d)
}

// TenantEndpoints returns tenant's own endpoints (not the platform's).
func (t *Table) TenantEndpoints(tenant string) []*Endpoint {
	own, managed := t.config.byTenant[tenant], t.managed.byTenant[shardOf(tenant)][tenant]
	if len(own) == 0 {
		return managed
	}
	return append(slices.Clip(own), managed...)
}

// Tenants returns up to limit ids of tenants that have endpoints, in
// order, after the id after. The sorted list is made once per table, when
// first asked for: paging through 100,000 tenants then costs a page each,
// not a walk of every endpoint each.
func (t *Table) Tenants(after string, limit int) []string {
	t.tenantsOnce.Do(func() {
		t.tenants = slices.Collect(maps.Keys(t.config.byTenant))
		for _, m := range t.managed.byTenant {
			for tenant := range m {
				if t.config.byTenant[tenant] == nil {
					t.tenants = append(t.tenants, tenant)
				}
			}
		}
		slices.Sort(t.tenants)
	})
	i, found := slices.BinarySearch(t.tenants, after)
	if found {
		i++
	}
	return t.tenants[i:min(i+limit, len(t.tenants)):min(i+limit, len(t.tenants))]
}

// Reaches reports whether events of tenant ("" for none) may be delivered
// to e: the routing rule that ingest and redelivery both apply. A tenant's
// events reach its own endpoints and the platform's, an event without a
// tenant the platform's only, and no event an internal endpoint.
func (e *Endpoint) Reaches(tenant string) bool {
	return !e.Internal && (e.Tenant == "" || e.Tenant == tenant)
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
	var own []*Endpoint
	if tenant != "" {
		own = t.TenantEndpoints(tenant)
	}
	return t.RouteOwn(typ, tenant, own, only)
}

// RouteOwn is Route for a caller that has looked up tenant's own endpoints
// (TenantEndpoints) already: ingest needs them for max_pending as well,
// and with 100,000 tenants each lookup is a miss in a cold map.
func (t *Table) RouteOwn(typ, tenant string, own []*Endpoint, only []string) ([]*Endpoint, error) {
	var out []*Endpoint
	if len(only) > 0 {
		for _, name := range only {
			e := t.Get(name)
			if e == nil || !e.Reaches(tenant) {
				return nil, fmt.Errorf("%w: %q", ErrNotRoutable, name)
			}
			if e.Matches(typ) && !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
		return out, nil
	}
	for _, group := range [][]*Endpoint{own, t.config.platform, t.managed.platform} {
		for _, e := range group {
			if e.Matches(typ) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// Routed is a delivery's endpoint as ingest routed it, and the table it
// was routed in (store.NewDelivery.Hint). While that table is still the
// scheduler's, the endpoint is the one a lookup by id would find: with
// 100,000 endpoints, that lookup was a cache miss or two per delivery.
type Routed struct {
	table *Table
	ep    *Endpoint
}

// Routed returns the hint for a delivery to e, routed in t.
func (t *Table) Routed(e *Endpoint) *Routed { return &Routed{table: t, ep: e} }

// endpoint is the endpoint r was routed to; nil for no hint.
func (r *Routed) endpoint() *Endpoint {
	if r == nil {
		return nil
	}
	return r.ep
}

// pack returns copies of eps laid out for the garbage collector: the
// endpoints in one array, their strings in blocks of 64 KB (a string kept
// elsewhere, say as a map key, keeps only its block alive), their signers
// (those with one standard key, almost all) in one array with the keys in
// one byte array. Each of 100,000 endpoints built one by one is a handful
// of objects in spans all over the heap, and every collection visits each
// of them in cold memory; packed, the collector walks a few large objects
// (five forced collections with 100,000 endpoints: 0.39 s of CPU to 0.2 s).
// The table packs the endpoints it indexes in one pass, at start and
// reload; one created later is not packed until then.
func pack(eps []*Endpoint) []*Endpoint {
	signers, keyBytes := 0, 0
	for _, e := range eps {
		if s := oneKeySigner(e.signer); s != nil {
			signers, keyBytes = signers+1, keyBytes+len(s.one[0].key)
		}
	}
	var strs stringBlocks
	packed, out := make([]Endpoint, len(eps)), make([]*Endpoint, len(eps))
	refs := make([]schedRef, len(eps))
	ss, keys := make([]standardSigner, 0, signers), make([]byte, 0, keyBytes)
	for i, e := range eps {
		p := &packed[i]
		*p = *e
		if e.sched != nil {
			refs[i].st.Store(e.sched.st.Load())
		}
		p.sched = &refs[i]
		for _, f := range [...]*string{&p.ID, &p.Name, &p.Tenant, &p.Description, &p.URL, &p.TestEventType, &p.Filter} {
			*f = strs.copy(*f)
		}
		if s := oneKeySigner(e.signer); s != nil {
			ss = append(ss, standardSigner{oneExpires: s.oneExpires})
			c := &ss[len(ss)-1]
			keys = append(keys, s.one[0].key...)
			c.one[0].key = keys[len(keys)-len(s.one[0].key) : len(keys) : len(keys)]
			c.keys, c.expires = c.one[:], c.oneExpires[:]
			p.signer = c
		}
		out[i] = p
	}
	return out
}

// oneKeySigner returns s if it is a standard signer with one key, whose
// key lives inside it (pack can copy it), or nil.
func oneKeySigner(s Signer) *standardSigner {
	if s, ok := s.(*standardSigner); ok && len(s.keys) == 1 && &s.keys[0] == &s.one[0] {
		return s
	}
	return nil
}

// stringBlocks copies strings into shared blocks, so that many small
// strings kept for long are a few objects for the collector.
type stringBlocks struct{ b strings.Builder }

func (a *stringBlocks) copy(s string) string {
	if s == "" {
		return ""
	}
	if a.b.Cap()-a.b.Len() < len(s) {
		a.b = strings.Builder{} // the strings already returned keep the old block
		a.b.Grow(max(64<<10, len(s)))
	}
	n := a.b.Len()
	a.b.WriteString(s) // within its capacity: the block does not move
	return a.b.String()[n:]
}
