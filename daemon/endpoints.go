package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"hookd/api"
	"hookd/client"
	"hookd/config"
	"hookd/delivery"
	"hookd/store"
)

// Managed endpoints: created, changed and deleted through the admin API,
// stored in bbolt, effective at once, kept across restarts, never touched
// by a reload. They are validated by the config file's own code
// (config.BuildManaged), so a mistake gets the same message either way.

// managedRecord reads a managed endpoint's stored record and decodes its
// settings and secrets. The daemon keeps only the built endpoint in
// memory: the record beside it cost 100,000 endpoints about 30 MB (and the
// collector as many more objects to follow) for the few calls that read
// it (patch, rotate, reveal).
func (d *Daemon) managedRecord(id string) (store.Managed, config.APISettings, config.SecretSet, error) {
	rec, err := d.store.ManagedEndpoint(id)
	if err != nil {
		return rec, config.APISettings{}, config.SecretSet{}, err
	}
	settings, secrets, err := decodeManaged(&rec)
	return rec, settings, secrets, err
}

// decodeManaged decodes a stored record's settings and secrets.
func decodeManaged(rec *store.Managed) (config.APISettings, config.SecretSet, error) {
	var s config.APISettings
	var secrets config.SecretSet
	if err := json.Unmarshal(rec.Settings, &s); err != nil {
		return s, secrets, fmt.Errorf("managed endpoint %s: %w", rec.Name, err)
	}
	if len(rec.Secrets) > 0 {
		if err := json.Unmarshal(rec.Secrets, &secrets); err != nil {
			return s, secrets, fmt.Errorf("managed endpoint %s: secrets: %w", rec.Name, err)
		}
	}
	return s, secrets, nil
}

// managedSet guards the managed endpoints, which are the scheduler's
// table's (Table.Managed, Table.ManagedEndpoints), so that no change is
// lost to a concurrent one. What changes the set as a whole (a reload's
// swap, a tenant's delete) holds mu; a change of one endpoint holds its
// name's lock and mu shared (lockManaged) over its read, commit and swap,
// so that changes of different endpoints commit together instead of one
// per commit. (The scheduler's SetDisabled swaps the table without them,
// but changes only disabled flags.)
type managedSet struct {
	mu    sync.RWMutex
	names delivery.KeyLocks // by name
	// resMu guards reserved and doomed where mu is held shared.
	resMu sync.Mutex
	// reserved are names (and tenants' counts) of creates under way, from
	// reserve until just after their swap.
	reserved map[string]string // name → tenant
	// doomed are reserved names whose tenant was deleted during their
	// commit: the create takes its endpoint back instead of making it
	// current, or the tenant's delete would leave it behind.
	doomed map[string]bool
}

// lockManaged holds the lock of name and the managed set shared, for a
// change (or a read that must not fall between a change's commit and its
// swap) of the managed endpoint named name; it returns the unlock. The
// name's lock comes first: a change waiting behind others of its endpoint
// does not hold the set, or a reload or a tenant's delete, waiting for the
// set, would wait for that whole line, and every change of every endpoint
// behind them (a tenant's 300 PATCHes of one endpoint held a SIGHUP, and
// every other tenant's changes, for 15 s).
func (d *Daemon) lockManaged(name string) func() {
	unlock := d.managed.names.Lock(name)
	d.managed.mu.RLock()
	return func() { d.managed.mu.RUnlock(); unlock() }
}

// together runs fn(0) … fn(n-1), at most changesAtOnce at a time, and
// waits for them: changes that each wait for a commit then share commits.
func together(n int, fn func(i int)) {
	var wg sync.WaitGroup
	room := make(chan struct{}, changesAtOnce)
	for i := range n {
		room <- struct{}{}
		wg.Go(func() {
			defer func() { <-room }()
			fn(i)
		})
	}
	wg.Wait()
}

const changesAtOnce = 64

var (
	errEndpointInConfig = &apiError{Status: 409, Code: "endpoint_in_config", Message: "this endpoint is defined in the config file; change it there"}
	errEndpointExists   = &apiError{Status: 409, Code: "endpoint_exists", Message: "an endpoint with this name exists"}
)

// loadManaged reads and builds the managed endpoints at Open. One that no
// longer builds is an error, as a bad config is: what changed under it
// can only be the [defaults] it inherits (checks added to the API since it
// was created apply to changes, not to stored endpoints). Left out, it
// would not be served, not be found by the API, and have its deliveries
// parked as deleted.
func (d *Daemon) loadManaged(cfg *config.Config) ([]*delivery.Endpoint, error) {
	recs, err := d.store.ManagedEndpoints()
	if err != nil {
		return nil, fmt.Errorf("read managed endpoints: %w", err)
	}
	all := buildManaged(cfg, recs, time.Now())
	eps := make([]*delivery.Endpoint, 0, len(all))
	for _, b := range all {
		if b.err != nil {
			return nil, b.err
		}
		if err := b.ep.CheckFilterWritten(); err != nil {
			// Stored before the rule: it loads, and a create or patch
			// would be refused it (one with an unavailable builtin
			// accepts no event until it is changed).
			d.log.Warn().Str("endpoint", b.ep.Name).Str("tenant", b.ep.Tenant).Str("problem", err.Error()).Msg("managed endpoint's filter breaks a rule it was stored before")
		}
		eps = append(eps, b.ep)
	}
	return eps, nil
}

// built is a managed endpoint's record built under a config: the
// endpoint, or why not (undecodable: its record does not decode).
type built struct {
	ep          *delivery.Endpoint
	err         error
	undecodable bool
}

// buildManaged decodes and builds recs under cfg, on every CPU (with
// 100,000 of them, building one after the other was most of the start).
func buildManaged(cfg *config.Config, recs []store.Managed, now time.Time) []built {
	out := make([]built, len(recs))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(recs)/256+1)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(recs); i += workers {
				out[i] = buildRecord(cfg, &recs[i], now)
			}
		})
	}
	wg.Wait()
	return out
}

// buildRecord decodes and builds the managed endpoint rec under cfg.
func buildRecord(cfg *config.Config, rec *store.Managed, now time.Time) built {
	settings, secrets, err := decodeManaged(rec)
	if err != nil {
		return built{err: err, undecodable: true}
	}
	ep, err := cfg.BuildManaged(rec.ID, &settings, secrets, now)
	if err != nil {
		return built{err: unbuildable(rec, err)}
	}
	return built{ep: ep}
}

// unbuildable is the error of a config under which the stored managed
// endpoint rec does not build.
func unbuildable(rec *store.Managed, err error) error {
	return fmt.Errorf("%w: managed endpoint %q (tenant %q) does not build with this config: %v (it inherits [defaults]: change them back, or change the endpoint through the API under the config it runs with)",
		config.ErrConfig, rec.Name, rec.Tenant, err)
}

// clashes refuses a config whose endpoints use the name of a managed
// endpoint of t or of a create under way.
func clashes(cfg *config.Config, t *delivery.Table, reserved map[string]string) error {
	for i, e := range cfg.Endpoints {
		if _, ok := reserved[e.Name]; ok || t.Managed(e.Name) != nil {
			return cfg.ErrAt(fmt.Sprintf("endpoints[%d].name", i), "%q is a managed endpoint's name (created through the admin API); rename one of them", e.Name)
		}
	}
	if cfg.Notify.URL != "" && t.Managed(config.NotifyEndpoint) != nil {
		// Created before the name was reserved.
		return cfg.ErrAt("notify.url", "%q is a managed endpoint's name; delete it before turning [notify] on (without [notify]: DELETE /v1/endpoints/%s)", config.NotifyEndpoint, config.NotifyEndpoint)
	}
	return nil
}

// putManaged commits the change rec of an existing managed endpoint and
// makes ep current, setting its disabled flag when disabled is not nil,
// in the same swap: an endpoint patched disabled is never current
// enabled. The caller holds its name's lock (lockManaged).
func (d *Daemon) putManaged(ctx context.Context, rec store.Managed, ep *delivery.Endpoint, disabled *bool) error {
	return d.sched.CommitEndpoint(ep.ID, func() error { return d.store.PutManaged(ctx, rec, false) }, func(t *delivery.Table) *delivery.Table {
		t = t.WithManaged(ep)
		if disabled != nil {
			t = t.WithDisabled(ep.ID, *disabled)
		}
		return t
	}, ep.ID)
}

// disabledState is the change of state a create or patch stores with its
// record when its body says disabled: sc's, with its holds. A repeat
// leaves the state as it is (its since too) and sets *repeat.
func disabledState(on bool, sc api.Scope, repeat *bool) func(*store.EndpointState) error {
	change := delivery.DisableChange(on, disabledBy(sc), disabler(sc), time.Now().UTC())
	return func(es *store.EndpointState) error {
		if *repeat = delivery.Repeat(*es, on, disabler(sc)); *repeat {
			return nil
		}
		return change(es)
	}
}

// notSelf refuses a URL that names one of hookd's own listeners by a
// literal address or localhost when it is written; a name is checked
// after resolution, on each attempt (the sender refuses every connection
// to a listener of its own).
func (d *Daemon) notSelf(raw string) error {
	if config.TargetsSelf(raw, listenerAddrs(d.listeners()...)) {
		return badRequest("url: %q is one of hookd's own listeners", raw)
	}
	return nil
}

// sameSet reports whether a and b hold the same strings, in any order
// (the portal's form sends catalogued types in the catalogue's order).
func sameSet(a, b []string) bool {
	return slices.Equal(slices.Compact(slices.Sorted(slices.Values(a))), slices.Compact(slices.Sorted(slices.Values(b))))
}

// nullValues refuses a null among the values of the string maps keys of
// a create's body: decoded, it is "" (an empty header would go out). A
// patch's nulls remove keys instead (mergePatch).
func nullValues(body []byte, keys ...string) error {
	var doc map[string]map[string]json.RawMessage
	json.Unmarshal(body, &doc) // decoded once already: only maps matter here
	for _, k := range keys {
		for _, name := range slices.Sorted(maps.Keys(doc[k])) {
			if string(bytes.TrimSpace(doc[k][name])) == "null" {
				return badRequest("%s.%s: must be a string, not null", k, name)
			}
		}
	}
	return nil
}

// decodeStrict decodes a JSON object into v, refusing unknown fields; a
// 400 names the field when it can (api.DecodeObject).
func decodeStrict(body []byte, v any) error {
	if err := api.DecodeObject(body, v); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

// fieldError turns a validation error into a 400 naming the JSON field.
func fieldError(err error) error {
	var ce *config.ConfigError
	if errors.As(err, &ce) {
		return badRequest("%s: %s", ce.Key, ce.Msg)
	}
	return err
}

// storedSettings is s as it is stored: no secret, no state.
func storedSettings(s config.APISettings) json.RawMessage {
	s.Disabled = nil
	if s.Signing != nil {
		sig := *s.Signing
		sig.Secret = nil
		s.Signing = &sig
	}
	b, _ := json.Marshal(s)
	return b
}

// CreateEndpoint creates a managed endpoint. In a tenant scope it is the
// tenant's whatever the body says: another tenant there is refused.
func (d *Daemon) CreateEndpoint(ctx context.Context, sc api.Scope, body []byte) (*client.CreatedEndpoint, error) {
	out, _, err := d.createEndpoint(ctx, sc, body, "")
	return out, err
}

// createEndpoint is CreateEndpoint under an Idempotency-Key (the admin
// API's; "" for none). A create that recorded the key within
// store.IdempotencyWindow answers again for the endpoint it made, as it is
// now, secret included (replayed true), so a caller whose answer was lost
// can retry without making a second endpoint; the same key with another
// request is a 409.
func (d *Daemon) createEndpoint(ctx context.Context, sc api.Scope, body []byte, key string) (out *client.CreatedEndpoint, replayed bool, err error) {
	var s config.APISettings
	if err := decodeStrict(body, &s); err != nil {
		return nil, false, err
	}
	if err := nullValues(body, "headers", "metadata"); err != nil {
		return nil, false, err
	}
	if err := api.NonEmpty(body, "tenant", "a platform endpoint"); err != nil {
		return nil, false, badRequest("%v", err)
	}
	if !sc.All() {
		if sc.Tenant() == "" {
			return nil, false, errNotFound
		}
		if s.Tenant != "" && s.Tenant != sc.Tenant() {
			return nil, false, badRequest("tenant: cannot be set to another tenant")
		}
		s.Tenant = sc.Tenant()
	}
	var hash string
	if key != "" {
		hash = requestHash(s)
		if out, err := d.replayCreate(key, hash); out != nil || err != nil {
			return out, out != nil, err
		}
	}
	if s.Name == "" {
		s.Name = "ep_" + strings.ToLower(ulid.Make().String())
	}
	if s.Name == config.NotifyEndpoint {
		// Even without [notify] now: a reload adding it would hide this
		// endpoint behind the internal one of the same name.
		return nil, false, badRequest("name: %q is reserved for [notify]", s.Name)
	}
	secrets := config.SecretSet{}
	if scheme := s.Scheme(); scheme != "none" {
		secrets.Secret = config.GenerateSecret(scheme)
		if s.Signing != nil && s.Signing.Secret != nil {
			secrets.Secret = *s.Signing.Secret
		}
	}
	cfg := d.cfg.Load()
	if err := cfg.CheckPatterns(s.Events); err != nil {
		return nil, false, badRequest("events: %v", err)
	}
	number := d.store.NextNumber()
	id := delivery.ManagedID(number)
	ep, err := cfg.BuildManaged(id, &s, secrets, time.Now())
	if err == nil {
		err = config.CheckNewManaged(&s, ep, nil)
	}
	if err != nil {
		return nil, false, fieldError(err)
	}
	if err := d.notSelf(ep.URL); err != nil {
		return nil, false, err
	}
	now := time.Now().UTC()
	secretJSON, _ := json.Marshal(secrets)
	rec := store.Managed{ID: id, Name: s.Name, Tenant: s.Tenant, Settings: storedSettings(s), Created: now, Updated: now, Secrets: secretJSON, Number: number,
		IdempotencyKey: key, RequestHash: hash}
	if s.Disabled != nil && *s.Disabled {
		rec.State = disabledState(true, sc, new(bool))
	}

	if err := d.reserve(s.Name, s.Tenant, cfg.Tenants.MaxEndpoints); err != nil {
		return nil, false, err
	}
	err = d.store.PutManaged(ctx, rec, true)
	unlock := d.lockManaged(s.Name) // a tenant's delete or a reload runs before or after, not during
	d.managed.resMu.Lock()
	doomed := d.managed.doomed[s.Name]
	delete(d.managed.doomed, s.Name)
	d.managed.resMu.Unlock()
	// The name stays reserved until the endpoint is current: meanwhile it
	// counts for its tenant's max_endpoints and its name is taken.
	release := func() {
		d.managed.resMu.Lock()
		delete(d.managed.reserved, s.Name)
		d.managed.resMu.Unlock()
		unlock()
	}
	// The take-backs below run to the end even if a shutdown ends the
	// request meanwhile: a kept endpoint is answered 201.
	if err == nil && doomed {
		if err = d.store.DeleteManaged(context.Background(), id, s.Name, nil); err == nil {
			release()
			return nil, false, &apiError{Status: 409, Code: "tenant_deleted", Message: fmt.Sprintf("tenant %q was deleted while this endpoint was being created; nothing was kept", s.Tenant)}
		}
		d.log.Error().Err(err).Str("endpoint", s.Name).Str("tenant", s.Tenant).Msg("taking back an endpoint created during its tenant's delete; it stays")
		err = nil
	}
	if err == nil {
		if running := d.cfg.Load(); running != cfg {
			// A reload ran during the commit and did not see this endpoint
			// (reserved, not in the table): build it under the config now
			// running, as the reload would have. One that does not build
			// under it is taken back, as the reload would have been refused
			// with it in the table: kept, it would make the next start
			// refuse the config (black-box testing: 24 creates racing a
			// SIGHUP all answered 201, and the daemon could not restart).
			rebuilt, berr := running.BuildManaged(id, &s, secrets, time.Now())
			switch {
			case berr == nil:
				ep = rebuilt
			case d.store.DeleteManaged(context.Background(), id, s.Name, nil) == nil:
				release()
				return nil, false, badRequest("%s (under the config reloaded while this endpoint was being created; nothing was kept)", fieldError(berr).Error())
			default:
				d.log.Error().Str("endpoint", s.Name).Err(berr).Msg("managed endpoint created during a reload does not build with the new config, and taking it back failed; it runs as created, and the next start refuses this config")
			}
		}
		// Nothing pending to park yet, and no attempt to disable it: the
		// swap need not hold the table across the commit.
		d.sched.UpdateTable(func(t *delivery.Table) *delivery.Table {
			if t = t.WithManaged(ep); s.Disabled != nil {
				t = t.WithDisabled(ep.ID, *s.Disabled)
			}
			return t
		}, ep.ID)
	}
	release()
	if errors.Is(err, store.ErrKeyUsed) {
		// Another create with the key committed first.
		out, err := d.replayCreate(key, hash)
		if out == nil && err == nil {
			err = errCreateInProgress // and then deleted, within the same moment
		}
		return out, out != nil, err
	}
	if errors.Is(err, store.ErrExists) {
		return nil, false, errEndpointExists
	} else if err != nil {
		return nil, false, err
	}
	if ep.TestOnCreate {
		d.out.put(generated(ep, ep.TestEventType, d.testData(ep, ep.TestEventType)))
	}
	d.log.Info().Str("endpoint", s.Name).Str("tenant", s.Tenant).Msg("managed endpoint created")
	var settings json.RawMessage
	if sc.All() {
		settings = rec.Settings
	}
	return d.created(ep, secrets.Secret, settings), false, nil
}

// errCreateInProgress answers a retry whose first create has committed
// but is not in the table yet.
var errCreateInProgress = &apiError{Status: 409, Code: "idempotency_in_progress", Message: "Idempotency-Key: the create it names is still being made; retry"}

// requestHash is what a create under an Idempotency-Key asked for,
// compared with a retry's: the settings as given (the name too, when it
// was), without the secret, which is not kept anywhere but sealed.
func requestHash(s config.APISettings) string {
	b := storedSettings(s)
	if s.Disabled != nil {
		b = fmt.Appendf(b, " disabled=%t", *s.Disabled)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// replayCreate answers for the endpoint that a create under key made
// within store.IdempotencyWindow, or nil when none did.
func (d *Daemon) replayCreate(key, hash string) (*client.CreatedEndpoint, error) {
	e, ok, err := d.store.IdempotencyKey(key, time.Now().UTC())
	if err != nil || !ok {
		return nil, err
	}
	if e.Hash != hash {
		return nil, &apiError{Status: 409, Code: "idempotency_key_reused", Message: fmt.Sprintf("Idempotency-Key %q was used by another create in the last %s", key, store.IdempotencyWindow)}
	}
	d.managed.mu.Lock()
	defer d.managed.mu.Unlock() // after the first create's swap (it holds mu shared over it), as a read of its secret is
	ep := d.sched.Table().ByID(e.ID)
	if ep == nil {
		return nil, errCreateInProgress
	}
	rec, _, secrets, err := d.managedRecord(e.ID)
	if err != nil {
		return nil, err
	}
	return d.created(ep, secrets.Secret, rec.Settings), nil
}

// created is a create's answer: the endpoint, its secret, and for
// operators what was set through the API.
func (d *Daemon) created(ep *delivery.Endpoint, secret string, settings json.RawMessage) *client.CreatedEndpoint {
	out := &client.CreatedEndpoint{Endpoint: d.endpointView(ep), Secret: secret}
	out.Settings = settings
	return out
}

// reserve claims name for a create: free among config, managed and other
// creates in progress, and within the tenant's max_endpoints.
func (d *Daemon) reserve(name, tenant string, maxEndpoints int) error {
	d.managed.mu.RLock() // a reload checks the names reserved and the config's for clashes
	defer d.managed.mu.RUnlock()
	d.managed.resMu.Lock()
	defer d.managed.resMu.Unlock()
	table := d.sched.Table()
	if _, taken := d.managed.reserved[name]; taken || table.Get(name) != nil {
		return errEndpointExists
	}
	if tenant != "" {
		n := len(table.TenantEndpoints(tenant))
		for name, t := range d.managed.reserved {
			if t == tenant && table.Get(name) == nil { // a create stays reserved until just after its swap
				n++
			}
		}
		if n >= maxEndpoints {
			return &apiError{Status: 409, Code: "tenant_quota", Message: fmt.Sprintf("tenant %q has tenants.max_endpoints endpoints", tenant)}
		}
	}
	if d.managed.reserved == nil {
		d.managed.reserved = map[string]string{}
	}
	d.managed.reserved[name] = tenant
	return nil
}

// endpointViews builds the views of eps with their state and counts.
func (d *Daemon) endpointViews(eps []*delivery.Endpoint) ([]client.Endpoint, error) {
	t := d.sched.Table()
	ids := make([]string, len(eps))
	for i, ep := range eps {
		ids[i] = ep.ID
	}
	stats := d.sched.StatsOf(ids)
	pending := d.store.PendingEach(ids)
	states, err := d.store.EndpointStatesOf(ids)
	if err != nil {
		return nil, err
	}
	after := d.cfg.Load().Notify.FailingAfter
	out := make([]client.Endpoint, 0, len(eps))
	for _, ep := range eps {
		st := stats[ep.ID]
		v := client.Endpoint{Name: ep.Name, ID: ep.ID, Source: "config", Tenant: ep.Tenant, Description: ep.Description,
			URL: ep.URL, Events: ep.Events, State: "active", Scheme: ep.Signing.Scheme,
			Pending: pending[ep.ID], InFlight: st.InFlight, ConsecutiveFailures: st.Failures,
			LastSuccess: timePtr(st.LastSuccess), LastFailure: timePtr(st.LastFailure),
			LastFailureStatus: st.LastFailureStatus, LastFailureError: st.LastFailureError,
			Ordering: ep.Ordering, Filter: ep.Filter, BlockedSince: timePtr(st.BlockedSince)}
		if ep.Managed {
			v.Source, v.Metadata = "api", ep.Metadata
		}
		switch {
		case t.Disabled(ep.ID):
			v.State, v.DisabledReason, v.DisabledBy = "disabled", states[ep.ID].Reason, states[ep.ID].By
		case st.Failures >= after:
			v.State = "failing"
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *Daemon) endpointView(ep *delivery.Endpoint) client.Endpoint {
	v, err := d.endpointViews([]*delivery.Endpoint{ep})
	if err != nil || len(v) == 0 {
		return client.Endpoint{Name: ep.Name, URL: ep.URL, Events: ep.Events}
	}
	return v[0]
}

// Endpoints lists endpoints, config and managed, by name, a page at a
// time, optionally one tenant's. Secrets are never part of the view.
func (d *Daemon) Endpoints(sc api.Scope, q client.EndpointQuery) (*client.EndpointList, error) {
	limit, err := checkLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	if q.Tenant != "" && !config.ValidID(q.Tenant) {
		return nil, badRequest("tenant: %s", config.IDRule)
	}
	out := &client.EndpointList{Items: []client.Endpoint{}}
	if !sc.All() {
		if q.Tenant != "" && q.Tenant != sc.Tenant() {
			return out, nil
		}
		q.Tenant = sc.Tenant()
	}
	t := d.sched.Table()
	all := t.All()
	if q.Tenant != "" {
		all = t.TenantEndpoints(q.Tenant)
	}
	eps := firstByName(all, q.Cursor, limit+1, func(ep *delivery.Endpoint) bool { return !ep.Internal && sc.Owns(ep.Tenant) })
	if len(eps) > limit {
		eps, out.NextCursor = eps[:limit], eps[limit-1].Name
	}
	if out.Items, err = d.endpointViews(eps); err != nil {
		return nil, err
	}
	return out, nil
}

// firstByName returns, by name, the first n endpoints of eps named after
// after that keep accepts. It sorts batches of 2n, each cut back to the
// first n, not every endpoint: sorting 100,000 for each page of 100 took
// most of the page's 60 ms.
func firstByName(eps []*delivery.Endpoint, after string, n int, keep func(*delivery.Endpoint) bool) []*delivery.Endpoint {
	byName := func(a, b *delivery.Endpoint) int { return strings.Compare(a.Name, b.Name) }
	out := make([]*delivery.Endpoint, 0, 2*n)
	bound := "" // once out was cut: its last name, beyond which none can be among the first n
	for _, e := range eps {
		if e.Name <= after || (bound != "" && e.Name >= bound) || !keep(e) {
			continue
		}
		if len(out) == cap(out) {
			slices.SortFunc(out, byName)
			out, bound = out[:n], out[n-1].Name
			if e.Name >= bound {
				continue
			}
		}
		out = append(out, e)
	}
	slices.SortFunc(out, byName)
	return out[:min(n, len(out))]
}

// checkLimit is a list's limit: 0 means the default, 100; at most 1000.
func checkLimit(n int) (int, error) {
	switch {
	case n == 0:
		return 100, nil
	case n < 1 || n > 1000:
		return 0, badRequest("limit: must be between 1 and 1000")
	}
	return n, nil
}

// Endpoint is one endpoint's view.
func (d *Daemon) Endpoint(sc api.Scope, name string) (*client.Endpoint, error) {
	ep, err := d.endpointIn(sc, name)
	if err != nil {
		return nil, err
	}
	v := d.endpointView(ep)
	if sc.All() && ep.Managed {
		rec, err := d.store.ManagedEndpoint(ep.ID)
		if err != nil {
			return nil, err
		}
		v.Settings = rec.Settings
	}
	return &v, nil
}

// endpointIn is the endpoint named name if sc may see it. Another
// tenant's endpoint is a 404, exactly like one that does not exist.
func (d *Daemon) endpointIn(sc api.Scope, name string) (*delivery.Endpoint, error) {
	ep := d.sched.Table().Get(name)
	if ep == nil || ep.Internal || !sc.Owns(ep.Tenant) {
		return nil, unknownEndpoint(name)
	}
	return ep, nil
}

// resendTarget is endpointIn for a redelivery: operators may also name
// the internal [notify] endpoint, whose parked notifications they see
// listed under its name.
func (d *Daemon) resendTarget(sc api.Scope, name string) (*delivery.Endpoint, error) {
	if ep := d.sched.Table().Get(name); ep != nil && ep.Internal && sc.All() {
		return ep, nil
	}
	return d.endpointIn(sc, name)
}

// managedIn returns the managed endpoint named name if sc may see it: 404
// when there is none, 409 when it is a config endpoint. The caller holds
// its name's lock (lockManaged).
func (d *Daemon) managedIn(sc api.Scope, name string) (*delivery.Endpoint, error) {
	ep, err := d.endpointIn(sc, name)
	if err != nil {
		return nil, err
	}
	if m := d.sched.Table().Managed(name); m != nil && m.ID == ep.ID {
		return m, nil
	}
	return nil, errEndpointInConfig
}

// adminPatchEndpoint applies a JSON merge patch (RFC 7396) to a managed
// endpoint's settings: a key present replaces, null resets to the default.
func (d *Daemon) PatchEndpoint(ctx context.Context, sc api.Scope, name string, body []byte) (*client.Endpoint, error) {
	if err := api.CheckJSON(body); err != nil {
		return nil, badRequest("body: %v", err)
	}
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(body, &patch); err != nil || patch == nil {
		return nil, badRequest("body: must be a JSON object (a merge patch)")
	}
	defer d.lockManaged(name)()
	m, err := d.managedIn(sc, name)
	if err != nil {
		return nil, err
	}
	for _, key := range []string{"name", "tenant"} {
		if raw, ok := patch[key]; ok {
			var v string
			if json.Unmarshal(raw, &v) != nil || v != map[string]string{"name": m.Name, "tenant": m.Tenant}[key] {
				return nil, badRequest("%s: cannot change", key)
			}
		}
	}
	var disabled *bool
	if raw, ok := patch["disabled"]; ok {
		disabled = new(bool)
		if json.Unmarshal(raw, disabled) != nil {
			return nil, badRequest("disabled: must be true or false")
		}
		delete(patch, "disabled")
	}
	rec, old, secrets, err := d.managedRecord(m.ID)
	if err != nil {
		return nil, err
	}
	var current map[string]json.RawMessage
	if err := json.Unmarshal(rec.Settings, &current); err != nil {
		return nil, err
	}
	merged, err := json.Marshal(mergePatch(current, patch))
	if err != nil {
		return nil, err
	}
	var s config.APISettings
	if err := decodeStrict(merged, &s); err != nil {
		return nil, err
	}
	if s.Signing != nil && s.Signing.Secret != nil {
		secrets = config.SecretSet{Secret: *s.Signing.Secret} // a new secret applies at once
	} else if s.Scheme() != "none" && (secrets.Secret == "" || s.Scheme() != old.Scheme()) {
		secrets = config.SecretSet{Secret: config.GenerateSecret(s.Scheme())}
	}
	cfg := d.cfg.Load()
	// Checked when changed: the portal's form sends the events it shows,
	// and an endpoint whose type left the catalogue could not be saved.
	var was []string
	json.Unmarshal(current["events"], &was)
	if _, ok := patch["events"]; ok && !sameSet(was, s.Events) {
		if err := cfg.CheckPatterns(s.Events); err != nil {
			return nil, badRequest("events: %v", err)
		}
	}
	ep, err := cfg.BuildManaged(m.ID, &s, secrets, time.Now())
	if err == nil {
		err = config.CheckNewManaged(&s, ep, func(field string) bool { _, ok := patch[field]; return ok })
	}
	if err != nil {
		return nil, fieldError(err)
	}
	if _, ok := patch["url"]; ok {
		if err := d.notSelf(ep.URL); err != nil {
			return nil, err
		}
	}
	rec.Settings, rec.Updated = storedSettings(s), time.Now().UTC()
	rec.Secrets, _ = json.Marshal(secrets)
	var repeat bool // the state said so already: nothing to park
	if disabled != nil {
		if err := d.operatorHold(sc, rec.ID); err != nil {
			return nil, err // at once (see SetDisabled); disabledState checks it in the write
		}
		rec.State = disabledState(*disabled, sc, &repeat)
		if !*disabled {
			if err := d.sched.ParkLeftovers(ctx, rec.ID); err != nil { // as SetDisabled's enable
				return nil, err
			}
		}
	}
	if err := d.putManaged(ctx, rec, ep, disabled); err != nil {
		return nil, holdError(err)
	}
	if disabled != nil && *disabled && !repeat {
		d.sched.ParkDisabled(ctx, rec.ID, disabledBy(sc))
	}
	v := d.endpointView(ep)
	if sc.All() {
		v.Settings = rec.Settings
	}
	return &v, nil
}

// mergePatch applies an RFC 7396 merge patch to a JSON object.
func mergePatch(doc, patch map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(doc)+len(patch))
	for k, v := range doc {
		out[k] = v
	}
	for k, v := range patch {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(out, k)
			continue
		}
		var sub map[string]json.RawMessage
		if json.Unmarshal(v, &sub) == nil && sub != nil {
			// An object patches what is there, or {} when that is not an
			// object (RFC 7396): its nulls are then dropped, never kept as
			// values ({"headers":{"X-A":null}} set X-A to "").
			var cur map[string]json.RawMessage
			if json.Unmarshal(out[k], &cur) != nil || cur == nil {
				cur = map[string]json.RawMessage{}
			}
			b, _ := json.Marshal(mergePatch(cur, sub))
			out[k] = b
			continue
		}
		out[k] = v
	}
	return out
}

// DeleteEndpoint deletes a managed endpoint; its pending deliveries
// become undeliverable ("endpoint deleted"). They stay under its internal
// id, which no later endpoint gets, so a new endpoint that reuses the name
// inherits nothing.
func (d *Daemon) DeleteEndpoint(ctx context.Context, sc api.Scope, name string) error {
	m, err := d.removeEndpoint(ctx, sc, name)
	if err != nil {
		return err
	}
	d.parkDeleted(ctx, m)
	return nil
}

// removeEndpoint is DeleteEndpoint but the parking, under the name's lock.
func (d *Daemon) removeEndpoint(ctx context.Context, sc api.Scope, name string) (*delivery.Endpoint, error) {
	defer d.lockManaged(name)()
	m, err := d.managedIn(sc, name)
	if err != nil {
		return nil, err
	}
	if err := d.operatorHold(sc, m.ID); err != nil {
		return nil, err // at once (see SetDisabled); check holds it in the write
	}
	var check func(store.EndpointState) error
	if !sc.All() {
		check = delivery.CheckHold // deleting it and adding it again would undo the hold
	}
	return m, holdError(d.removeManaged(ctx, m, check))
}

// removeManaged removes m from the store and the table, unless check
// refuses; the caller holds its name's lock (lockManaged) or the managed
// set, and then parks its deliveries (parkDeleted).
func (d *Daemon) removeManaged(ctx context.Context, m *delivery.Endpoint, check func(store.EndpointState) error) error {
	return d.sched.CommitEndpoint(m.ID, func() error { return d.store.DeleteManaged(ctx, m.ID, m.Name, check) }, func(t *delivery.Table) *delivery.Table {
		return t.WithoutManaged(m.Name)
	})
}

// parkDeleted parks the pending deliveries of the deleted endpoints eps,
// in one scan of the queue, once their delete has released its locks: the
// scan of a long queue (a tenant's 450 endpoints under a million pending
// deliveries took 47 s, one scan each) must not hold other changes.
func (d *Daemon) parkDeleted(ctx context.Context, eps ...*delivery.Endpoint) {
	ids, names := make([]string, len(eps)), make([]string, len(eps))
	for i, m := range eps {
		ids[i], names[i] = m.ID, m.Name
	}
	n, err := d.store.ParkEndpoints(ctx, ids, delivery.ReasonDeleted)
	for _, id := range ids {
		d.sched.Forget(id)
	}
	if err != nil {
		// The delete is committed and current, so it is not the caller's
		// failure: the worker parks what comes due for an endpoint no
		// longer there, and the next start parks the rest (parkRemoved).
		d.log.Warn().Err(err).Strs("endpoints", names).Msg("parking deleted endpoints' deliveries")
	}
	if len(eps) == 1 {
		d.log.Info().Str("endpoint", names[0]).Int("parked", n).Msg("managed endpoint deleted")
		return
	}
	for _, name := range names {
		d.log.Info().Str("endpoint", name).Msg("managed endpoint deleted")
	}
	d.log.Info().Int("endpoints", len(eps)).Int("parked", n).Msg("their deliveries parked")
}

// EndpointSecret reads a managed endpoint's secret and the previous ones
// still signing.
func (d *Daemon) EndpointSecret(sc api.Scope, name string) (*client.Secrets, error) {
	defer d.lockManaged(name)() // a read between a rotation's commit and its swap would see the new secret early
	m, err := d.managedIn(sc, name)
	if err != nil {
		return nil, err
	}
	_, _, secrets, err := d.managedRecord(m.ID)
	if err != nil {
		return nil, err
	}
	out := client.Secrets{Secret: secrets.Secret, Previous: []client.PreviousSecret{}}
	now := time.Now()
	for _, p := range secrets.Previous {
		if p.ExpiresAt.After(now) {
			out.Previous = append(out.Previous, client.PreviousSecret{Secret: p.Secret, ExpiresAt: p.ExpiresAt})
		}
	}
	return &out, nil
}

// maxPreviousSecrets is how many previous secrets keep signing at most;
// a rotation beyond drops the oldest.
const maxPreviousSecrets = 5

// RotateSecret replaces a managed endpoint's secret. With the
// standard scheme the old one keeps signing (a second v1 signature) until
// the overlap ends; hmac-sha256 cannot carry two, so the new one applies
// at once.
func (d *Daemon) RotateSecret(ctx context.Context, sc api.Scope, name string, in client.RotateRequest) (*client.Rotated, error) {
	overlap := 24 * time.Hour
	if in.Overlap != "" {
		v, err := time.ParseDuration(in.Overlap)
		if err != nil || v < 0 {
			return nil, badRequest("overlap: a duration such as \"24h\" or \"0s\"")
		}
		overlap = v
	}
	defer d.lockManaged(name)()
	m, err := d.managedIn(sc, name)
	if err != nil {
		return nil, err
	}
	rec, settings, current, err := d.managedRecord(m.ID)
	if err != nil {
		return nil, err
	}
	scheme := settings.Scheme()
	if scheme == "none" {
		return nil, badRequest("signing: the endpoint is unsigned (scheme none); set a scheme first")
	}
	now := time.Now()
	secrets := config.SecretSet{Secret: in.Secret}
	if secrets.Secret == "" {
		secrets.Secret = config.GenerateSecret(scheme)
	} else if err := config.CheckAPISecret(scheme, secrets.Secret); err != nil {
		return nil, badRequest("secret: %v", err)
	}
	if scheme == "standard" {
		// overlap is how long every secret it replaces may still sign: the
		// current one, and earlier ones still in their own overlap, which
		// it shortens. "0s" stops them all (a rotation for a leak must not
		// leave an older secret signing for another day).
		until := now.Add(overlap).UTC()
		for _, p := range current.Previous {
			if p.ExpiresAt.After(until) {
				p.ExpiresAt = until
			}
			if p.ExpiresAt.After(now) {
				secrets.Previous = append(secrets.Previous, p)
			}
		}
		if overlap > 0 {
			secrets.Previous = append(secrets.Previous, config.PreviousSecret{Secret: current.Secret, ExpiresAt: until})
		}
		// Every previous secret signs every request until it expires:
		// rotations in a loop must not pile up signatures.
		if n := len(secrets.Previous); n > maxPreviousSecrets {
			secrets.Previous = secrets.Previous[n-maxPreviousSecrets:]
		}
	}
	cfg := d.cfg.Load()
	ep, err := cfg.BuildManaged(m.ID, &settings, secrets, now)
	if err != nil {
		return nil, fieldError(err)
	}
	rec.Updated = now.UTC()
	rec.Secrets, _ = json.Marshal(secrets)
	if err := d.putManaged(ctx, rec, ep, nil); err != nil {
		return nil, err
	}
	d.log.Info().Str("endpoint", rec.Name).Dur("overlap", overlap).Msg("secret rotated")
	return &client.Rotated{Secret: secrets.Secret}, nil
}

// EndpointHours is an endpoint's attempts per hour by outcome over the
// last 24 hours (counted since hookd started).
func (d *Daemon) EndpointHours(sc api.Scope, name string) (*api.Hours, error) {
	ep, err := d.endpointIn(sc, name)
	if err != nil {
		return nil, err
	}
	var h api.Hours
	h.Start, h.Delivered, h.Failed = d.sched.Hours(ep.ID, time.Now())
	return &h, nil
}

// EventTypes lists the event type catalogue.
func (d *Daemon) EventTypes() *client.EventTypeList {
	out := &client.EventTypeList{Items: []client.EventType{}}
	for _, et := range d.cfg.Load().EventTypes {
		v := client.EventType{Name: et.Name, Description: et.Description}
		if et.Example != "" {
			v.Example = json.RawMessage(et.Example)
		}
		out.Items = append(out.Items, v)
	}
	return out
}

// TestEndpoint sends a signed test event to an endpoint now, outside the
// queue, and returns the attempt.
func (d *Daemon) TestEndpoint(_ context.Context, sc api.Scope, name string, in client.TestRequest) (*client.TestResult, error) {
	ep, err := d.endpointIn(sc, name)
	if err != nil {
		return nil, err
	}
	if in.Type == "" {
		in.Type = ep.TestEventType
	}
	if !config.IsID(in.Type) {
		return nil, badRequest("type: %s", config.TypeRule)
	}
	if err := d.operatorHold(sc, ep.ID); err != nil {
		return nil, err // the platform turned it off: its customer may not send to it either
	}
	if !sc.All() {
		// Signed with the customer's secret, data of the caller's choice
		// would forge any event its receiver trusts (an invoice paid), for
		// anyone holding a link with only the test capability. null is
		// as if left out.
		if in.Data != nil && string(in.Data) != "null" {
			return nil, badRequest("data: a customer's test event carries its type's catalogued example; leave data out")
		}
		in.Data = nil
		// Nor a type the endpoint would never receive, or hookd's own
		// notices' (hookd.endpoint.disabled), signed as if they were real.
		if in.Type != ep.TestEventType && (!ep.Matches(in.Type) || strings.HasPrefix(in.Type, "hookd.") || !d.cfg.Load().Catalogued(in.Type)) {
			return nil, badRequest("type: a customer's test event is of %q or of a type the endpoint receives (its events, in the catalogue of GET /api/event-types when there is one)", ep.TestEventType)
		}
	}
	if in.Data == nil {
		in.Data, _ = json.Marshal(d.testData(ep, in.Type))
	} else if err := api.CheckJSON(in.Data); err != nil {
		// What ingest refuses is not signed as a test either.
		return nil, badRequest("data: %v", err)
	}
	ne := generated(ep, in.Type, in.Data)
	res := d.sched.SendTest(ep, ne.Event.ID, in.Type, ne.Deliveries[0].Body)
	a := viewAttempt(&res.Attempt)
	a.N = 1
	return &client.TestResult{ID: ne.Event.ID, Endpoint: ep.Name, OK: res.OK(), Attempt: a}, nil
}

// SetDisabled disables or enables an endpoint, config or managed.
func (d *Daemon) SetDisabled(ctx context.Context, sc api.Scope, name string, on bool) (*client.EndpointState, error) {
	ep, err := d.endpointIn(sc, name)
	if err != nil {
		return nil, err
	}
	// The hold is checked where the state is written (DisableChange); this
	// read answers a repeated refusal at once, without a commit under the
	// endpoint's lock, which the endpoint's other changes wait for.
	if err := d.operatorHold(sc, ep.ID); err != nil {
		return nil, err
	}
	if err := d.sched.SetDisabled(ctx, ep.ID, on, disabledBy(sc), disabler(sc)); errors.Is(err, delivery.ErrGone) {
		return nil, unknownEndpoint(name) // deleted while this waited for it: as if it came after
	} else if err != nil && !errors.Is(err, delivery.ErrUnchanged) { // a repeat: so it is
		return nil, holdError(err)
	}
	state := "active"
	if on {
		state = "disabled"
	}
	return &client.EndpointState{Name: name, State: state}, nil
}

// disabledBy is the reason an endpoint disabled through the API shows:
// who did it, for the operator reading the endpoint later.
func disabledBy(sc api.Scope) string {
	if sc.All() {
		return store.ReasonOperator
	}
	return store.ReasonTenant
}

// disabler is who sc is to an endpoint's disabled state.
func disabler(sc api.Scope) string {
	if sc.All() {
		return store.ByOperator
	}
	return store.ByTenant
}

// errOperatorHold answers a tenant that would change the disabled state
// of an endpoint the operator disabled (delivery.DisableChange).
var errOperatorHold = &apiError{Status: 403, Code: "forbidden", Message: "disabled: this endpoint was disabled by the platform; only the platform can enable or delete it"}

// holdError is err, or errOperatorHold for the hold's refusal.
func holdError(err error) error {
	if errors.Is(err, delivery.ErrOperatorHold) {
		return errOperatorHold
	}
	return err
}

// operatorHold refuses a tenant scope's test send to an endpoint an
// operator's disable holds, and a change of its state before that waits
// for the write that refuses it too (delivery.DisableChange).
func (d *Daemon) operatorHold(sc api.Scope, id string) error {
	if sc.All() {
		return nil
	}
	states, err := d.store.EndpointStatesOf([]string{id})
	if err != nil {
		return err
	}
	if delivery.Held(states[id]) {
		return errOperatorHold
	}
	return nil
}
