package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"hookd/delivery"
	"hookd/seal"
)

// Resolve reads the tokens and secrets (token_file, secret_file,
// secret_env) and builds every endpoint for delivery, once: the built
// endpoints are what the daemon runs. Errors name the key, never a
// secret's value.
func (c *Config) Resolve() error {
	var errs []error
	var err error
	if c.ingestToken, err = readToken(c.Ingest.Token, c.Ingest.TokenFile); err != nil {
		errs = append(errs, c.ErrAt("ingest.token_file", "%v", err))
	}
	if c.adminToken, err = readToken(c.Admin.Token, c.Admin.TokenFile); err != nil {
		errs = append(errs, c.ErrAt("admin.token_file", "%v", err))
	}
	c.SealKey = nil
	if c.Storage.SecretsKeyFile != "" {
		b, err := readSmallFile(c.Storage.SecretsKeyFile)
		if err == nil {
			c.SealKey, err = seal.ParseKey(b, c.Storage.SecretsKeyFile)
		}
		if err != nil {
			errs = append(errs, c.ErrAt("storage.secrets_key_file", "%v", err))
		}
	}
	c.PortalKey = nil
	if c.Portal.KeyFile != "" {
		if c.PortalKey, err = readPortalKey(c.Portal.KeyFile); err != nil {
			errs = append(errs, c.ErrAt("portal.key_file", "%v", err))
		}
	}
	seen := map[string]bool{} // a bad [defaults] setting fails every endpoint the same way: said once
	once := func(err error) {
		if !seen[err.Error()] {
			errs = append(errs, err)
		}
		seen[err.Error()] = true
	}
	c.NotifyTo = nil
	if c.Notify.URL != "" {
		e := EndpointSettings{Name: NotifyEndpoint, URL: c.Notify.URL, Events: []string{"hookd.*"}, Signing: c.Notify.Signing,
			Ordering:     ptr(delivery.OrderingNone), // an alert must not wait behind another
			DisableAfter: ptr(Duration(0)),           // nor stop for good (nor by a 410: KeepOn410)
		}
		if c.NotifyTo, err = c.buildEndpoint("notify", "", &e, notifyEndpoint); err != nil {
			once(err)
		}
	}
	c.Resolved = nil
	for i := range c.Endpoints {
		key := fmt.Sprintf("endpoints[%d]", i)
		ep, err := c.buildEndpoint(key, ConfigID(c.Endpoints[i].Name, c.Endpoints[i].Tenant), &c.Endpoints[i], fileEndpoint)
		if err == nil {
			// Refused where a filter is written, as through the API;
			// building lets it through for stored managed endpoints.
			if cerr := ep.CheckFilterWritten(); cerr != nil {
				err = c.ErrAt(key+".filter", "%v", cerr)
			}
		}
		if err != nil {
			once(err)
			continue
		}
		c.Resolved = append(c.Resolved, ep)
	}
	if err := c.checkDefaults(); err != nil {
		once(err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// probeSecret is a valid secret for checkDefaults' probe (32 zero bytes).
const probeSecret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

// checkDefaults refuses a [defaults] that does not make an endpoint by
// itself: a managed endpoint that sets nothing takes all of it, and with
// no [[endpoints]] (a platform whose endpoints all come through the API)
// nothing else would check it before every create failed on a field the
// caller never sent, or, with managed endpoints stored, the start.
func (c *Config) checkDefaults() error {
	probe := APISettings{EndpointSettings: EndpointSettings{Name: "defaults", URL: "https://defaults.invalid/", Events: []string{"*"}}}
	_, err := c.BuildManaged("m:defaults", &probe, SecretSet{Secret: probeSecret}, time.Now())
	var ce *ConfigError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return c.ErrAt("defaults."+ce.Key, "%s", ce.Msg)
	}
	return c.ErrAt("defaults", "%v", err)
}

// ConfigID is the internal id of the [[endpoints]] table name of tenant:
// its name, and for a tenant's endpoint the tenant too, so that its
// deliveries are bound to the tenant they were routed by. A file that gives
// the endpoint another tenant (reload or restart) makes another endpoint:
// the old one's pending deliveries are parked as removed and can only be
// redelivered to an endpoint of their own tenant, never sent to the new
// tenant's URL. "@" is in neither a name nor a tenant.
func ConfigID(name, tenant string) string {
	if tenant == "" {
		return name
	}
	return name + "@" + tenant
}

// endpointKind is where an endpoint's settings come from.
type endpointKind int

const (
	fileEndpoint    endpointKind = iota // an [[endpoints]] table
	notifyEndpoint                      // [notify]: internal, hookd's own alerts
	managedEndpoint                     // the admin API: its secrets are its own, never [defaults]'
)

// buildEndpoint merges e over [defaults] over the built-in defaults,
// reads its secret and builds it. p is the key prefix errors name; id is
// the internal id ("" = the name).
func (c *Config) buildEndpoint(p, id string, e *EndpointSettings, kind endpointKind) (*delivery.Endpoint, error) {
	ec, err := c.resolveEndpoint(p, id, e, kind)
	if err != nil {
		return nil, err
	}
	ep, err := c.newEndpoint(p, ec) // a bad scheme is named before what it would ignore
	if err != nil {
		return nil, err
	}
	// The endpoint's own table only: [defaults] may hold what some of the
	// endpoints' schemes use and others ignore.
	if key, err := e.Signing.conflicts(ec.Signing.Scheme); err != nil {
		return nil, c.ErrAt(p+".signing."+key, "%v", err)
	}
	err = ep.CheckHeaders()
	var fe *delivery.FieldError
	if errors.As(err, &fe) {
		if h, ok := strings.CutPrefix(fe.Field, "headers."); ok {
			if _, own := e.Headers[h]; !own {
				p = "defaults" // it came from [defaults]: named there, once (Resolve)
			}
		}
	}
	return ep, c.fieldErr(p, err)
}

// newEndpoint builds ec, naming the key under p of what NewEndpoint finds
// wrong.
func (c *Config) newEndpoint(p string, ec delivery.EndpointConfig) (*delivery.Endpoint, error) {
	ep, err := delivery.NewEndpoint(ec)
	if err != nil {
		return nil, c.fieldErr(p, err)
	}
	return ep, nil
}

// fieldErr names the key under p of a delivery.FieldError (nil for nil).
func (c *Config) fieldErr(p string, err error) error {
	if err == nil {
		return nil
	}
	var fe *delivery.FieldError
	if errors.As(err, &fe) {
		return c.ErrAt(p+"."+fe.Field, "%v", fe.Err)
	}
	return c.ErrAt(p, "%v", err)
}

// resolveEndpoint is buildEndpoint's merge and checks, up to the config
// NewEndpoint takes.
func (c *Config) resolveEndpoint(p, id string, e *EndpointSettings, kind endpointKind) (delivery.EndpointConfig, error) {
	d, b := &c.Defaults, builtin()
	ec := delivery.EndpointConfig{
		ID: id, Name: e.Name, Tenant: e.Tenant, Description: e.Description, URL: e.URL, Events: e.Events, Headers: mergeHeaders(d.Headers, e.Headers), Internal: kind == notifyEndpoint,
		Timeout:          pick(e.Timeout, d.Timeout, b.Timeout).D(),
		MaxInFlight:      pick(e.MaxInFlight, d.MaxInFlight, b.MaxInFlight),
		RateLimit:        pick(e.RateLimit, d.RateLimit, b.RateLimit),
		MaxResponseBytes: int(pick(e.MaxResponseBytes, d.MaxResponseBytes, b.MaxResponseBytes)),
		DisableAfter:     pick(e.DisableAfter, d.DisableAfter, b.DisableAfter).D(),
		TestOnCreate:     pick(e.TestOnCreate, d.TestOnCreate, b.TestOnCreate),
		TestEventType:    pick(e.TestEventType, d.TestEventType, b.TestEventType),
		Ordering:         pick(e.Ordering, d.Ordering, b.Ordering),
		Filter:           e.Filter,
	}
	ec.Policy = sharedPolicy(delivery.Policy{
		Schedule:      sharedSchedule(pick(e.Schedule, d.Schedule, b.Schedule)),
		StopOn4xx:     pick(e.StopOn4xx, d.StopOn4xx, b.StopOn4xx),
		MaxRetryAfter: pick(e.MaxRetryAfter, d.MaxRetryAfter, b.MaxRetryAfter).D(),
		Jitter:        pick(e.Jitter, d.Jitter, b.Jitter),
		KeepOn410:     kind == notifyEndpoint,
	})
	switch {
	case ec.Timeout <= 0 || ec.Timeout > 5*time.Minute:
		return ec, c.ErrAt(p+".timeout", "must be between 1ms and 5m")
	case ec.MaxInFlight < 1:
		return ec, c.ErrAt(p+".max_in_flight", "must be at least 1")
	case !(ec.RateLimit >= 0) || math.IsInf(ec.RateLimit, 1): // NaN too: it compares false with everything
		return ec, c.ErrAt(p+".rate_limit", "must be a number, 0 or more")
	case ec.MaxResponseBytes < 0 || ec.MaxResponseBytes > 1<<20:
		return ec, c.ErrAt(p+".max_response_bytes", "must be between 0 and 1MiB")
	case !(ec.Policy.Jitter >= 0 && ec.Policy.Jitter <= 1):
		return ec, c.ErrAt(p+".jitter", "must be between 0 and 1")
	case !IsID(ec.TestEventType):
		return ec, c.ErrAt(p+".test_event_type", TypeRule)
	}
	if ec.Tenant != "" {
		// Inherited ([defaults], built-in), a value over a tenant cap is
		// the cap, "whatever [defaults] says": a [defaults] change made
		// every stored tenant endpoint fail to build, and the start with
		// them. Set on the endpoint itself, it is refused.
		if e.Timeout == nil {
			ec.Timeout = min(ec.Timeout, TenantMaxTimeout)
		}
		if e.MaxInFlight == nil {
			ec.MaxInFlight = min(ec.MaxInFlight, TenantMaxInFlight)
		}
		if e.MaxResponseBytes == nil {
			ec.MaxResponseBytes = min(ec.MaxResponseBytes, TenantMaxResponseBytes)
		}
		if err := c.checkTenantEndpoint(p, &ec); err != nil {
			return ec, err
		}
	}

	// A table envelope starts from the standard field names and renames or
	// drops what it mentions.
	ec.Envelope = &delivery.StandardEnvelope
	if env := pick(e.Envelope, d.Envelope, b.Envelope); !env.Standard {
		table := delivery.StandardEnvelope
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&table.ID, env.ID)
		set(&table.Type, env.Type)
		set(&table.Time, env.Time)
		set(&table.Data, env.Data)
		set(&table.Tenant, env.Tenant)
		if env.TimeFormat != "" {
			table.TimeFormat = env.TimeFormat
		}
		table.Static = env.Static
		ec.Envelope = &table
	}

	def := d.Signing
	if kind == managedEndpoint && def != nil {
		// The operator's secrets (and the old ones a rotation of them keeps
		// signing) are for the file's endpoints: a tenant's endpoint signs
		// with its own, which its owner can read and rotate.
		noSecrets := *def
		noSecrets.Secret, noSecrets.SecretFile, noSecrets.SecretEnv, noSecrets.PreviousSecrets = nil, nil, nil, nil
		def = &noSecrets
	}
	sc, key, err := resolveSigning(e.Signing, def, b.Signing)
	if err != nil {
		return ec, c.ErrAt(p+".signing."+key, "%v", err)
	}
	ec.Signing = &sc
	return ec, nil
}

// builtin is builtinEndpoint, made once: buildEndpoint only reads it, and
// making it for each of 100,000 managed endpoints was 5% of a start.
var builtin = sync.OnceValue(builtinEndpoint)

// lastSchedule is the retry schedule built last. Endpoints whose schedule
// is the same (from [defaults] or the built-in one: nearly all) share it,
// as nothing changes a Policy's Schedule once built; 100,000 managed
// endpoints held 8 MB of copies.
var lastSchedule atomic.Pointer[[]time.Duration]

func sharedSchedule(sched []Duration) []time.Duration {
	if p := lastSchedule.Load(); p != nil && slices.EqualFunc(*p, sched, func(a time.Duration, b Duration) bool { return a == b.D() }) {
		return *p
	}
	out := make([]time.Duration, len(sched))
	for i, v := range sched {
		out[i] = v.D()
	}
	lastSchedule.Store(&out)
	return out
}

// lastPolicy is the retry policy built last: endpoints built one after the
// other with the same settings (100,000 managed ones at start) share it.
var lastPolicy atomic.Pointer[delivery.Policy]

func sharedPolicy(p delivery.Policy) *delivery.Policy {
	if q := lastPolicy.Load(); q != nil && slices.Equal(q.Schedule, p.Schedule) && q.StopOn4xx == p.StopOn4xx &&
		q.MaxRetryAfter == p.MaxRetryAfter && q.Jitter == p.Jitter && q.KeepOn410 == p.KeepOn410 {
		return q
	}
	lastPolicy.Store(&p)
	return &p
}

// PortalKeyMin is the least a portal key file must hold: the HMAC-SHA256
// key of the portal's tokens gains nothing from more, and loses from less.
const PortalKeyMin = 32

// readPortalKey reads [portal] key_file: its contents, surrounding white
// space trimmed (what `hookd gen-secret -key` prints, say). Errors name the
// file, never its contents. Read with the rest of the file, so that
// check-config refuses what the start would.
func readPortalKey(file string) ([]byte, error) {
	b, err := readSmallFile(file)
	if err != nil {
		return nil, err
	}
	k := bytes.TrimSpace(b)
	if len(k) < PortalKeyMin {
		return nil, fmt.Errorf("%s must hold at least %d bytes", file, PortalKeyMin)
	}
	return k, nil
}

// smallFileMax bounds a key, token or secret file: /dev/zero or a log file
// named by mistake was read until memory ran out.
const smallFileMax = 64 << 10

// readSmallFile reads a key, token or secret file of at most smallFileMax
// bytes, and refuses a FIFO: one named by mistake held a reload, and with
// it the stop, until something wrote to it.
func readSmallFile(path string) ([]byte, error) {
	// Opened without waiting for a FIFO's writer, and refused if it is one:
	// a read waits for data even then.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0 {
		return nil, fmt.Errorf("%s is a FIFO or a socket, not a file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, smallFileMax+1))
	switch {
	case err != nil:
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	case len(b) > smallFileMax:
		return nil, fmt.Errorf("%s is larger than %d KiB: not a key, token or secret file", path, smallFileMax>>10)
	}
	return b, nil
}

// pathless is err without the path an *os.PathError repeats.
func pathless(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// pick is the first set value: the endpoint's, [defaults]', the built-in.
func pick[T any](v, def *T, builtin *T) T {
	if v != nil {
		return *v
	}
	if def != nil {
		return *def
	}
	return *builtin
}

func mergeHeaders(def, own map[string]string) map[string]string {
	if len(def) == 0 {
		return own
	}
	out := make(map[string]string, len(def)+len(own))
	for k, v := range def {
		out[k] = v
	}
	for k, v := range own {
		for d := range def { // header names are case-insensitive: own replaces X-A as x-a
			if strings.EqualFold(d, k) {
				delete(out, d)
			}
		}
		out[k] = v
	}
	return out
}

// resolveSigning merges an endpoint's signing table over the defaults'
// over the built-in one and reads the secret. The secret source (secret,
// secret_file, secret_env) is inherited as a whole. It returns the key to
// blame.
func resolveSigning(own, def, builtin *SigningSettings) (delivery.SigningConfig, string, error) {
	var sc delivery.SigningConfig
	if own == nil {
		own = &SigningSettings{}
	}
	if def == nil {
		def = &SigningSettings{}
	}
	src := own
	if own.Secret == nil && own.SecretFile == nil && own.SecretEnv == nil {
		src = def
	}
	n := 0
	for _, v := range []*string{src.Secret, src.SecretFile, src.SecretEnv} {
		if v != nil {
			n++
		}
	}
	if n > 1 {
		return sc, "secret", errors.New("set only one of secret, secret_file, secret_env")
	}
	// An empty secret from any source is a mistake (a truncated file, an
	// unset variable), never a way to turn signing off: scheme = "none" is.
	switch {
	case src.Secret != nil:
		sc.Secret = *src.Secret
		if strings.TrimSpace(sc.Secret) == "" {
			return sc, "secret", errors.New("is empty (to send unsigned requests, set scheme = \"none\")")
		}
	case src.SecretFile != nil:
		b, err := readSmallFile(*src.SecretFile)
		if err != nil {
			return sc, "secret_file", fmt.Errorf("cannot read secret file %s: %v", *src.SecretFile, pathless(err))
		}
		sc.Secret = strings.TrimSpace(string(b))
		if sc.Secret == "" {
			return sc, "secret_file", fmt.Errorf("secret file %s is empty", *src.SecretFile)
		}
	case src.SecretEnv != nil:
		v, ok := os.LookupEnv(*src.SecretEnv)
		if !ok || strings.TrimSpace(v) == "" {
			return sc, "secret_env", fmt.Errorf("environment variable %s is not set or empty", *src.SecretEnv)
		}
		sc.Secret = v
	}
	sc.PreviousSecrets = own.PreviousSecrets
	if sc.PreviousSecrets == nil {
		sc.PreviousSecrets = def.PreviousSecrets
	}
	for i, p := range sc.PreviousSecrets {
		if strings.TrimSpace(p) == "" {
			return sc, fmt.Sprintf("previous_secrets[%d]", i), errors.New("is empty")
		}
	}
	str := func(a, b, c *string) string { return pick(a, b, c) }
	scheme := "none"
	if sc.Secret != "" {
		scheme = "standard"
	}
	sc.Scheme = str(own.Scheme, def.Scheme, &scheme)
	sc.Header = str(own.Header, def.Header, builtin.Header)
	sc.Prefix = str(own.Prefix, def.Prefix, builtin.Prefix)
	sc.Encoding = str(own.Encoding, def.Encoding, builtin.Encoding)
	sc.Content = str(own.Content, def.Content, builtin.Content)
	sc.TimestampHeader = str(own.TimestampHeader, def.TimestampHeader, builtin.TimestampHeader)
	return sc, "scheme", nil
}

// conflicts names a setting of the signing table s that scheme ignores:
// a mistake to name, not to drop (a secret under scheme = "none" would
// send unsigned requests to a receiver told to verify them). It checks
// what the file and API requests set; an endpoint stored before the check
// still builds.
func (s *SigningSettings) conflicts(scheme string) (string, error) {
	if s == nil {
		return "", nil
	}
	if scheme == "none" {
		for key, v := range map[string]bool{"secret": s.Secret != nil, "secret_file": s.SecretFile != nil,
			"secret_env": s.SecretEnv != nil, "previous_secrets": s.PreviousSecrets != nil} {
			if v {
				return key, errors.New(`is set but scheme is "none": requests are not signed (set scheme, or remove the secret)`)
			}
		}
	}
	if scheme != "hmac-sha256" {
		for key, v := range map[string]*string{"header": s.Header, "prefix": s.Prefix, "encoding": s.Encoding,
			"content": s.Content, "timestamp_header": s.TimestampHeader} {
			if v != nil {
				return key, fmt.Errorf(`is a setting of scheme "hmac-sha256", not of %q (remove it)`, scheme)
			}
		}
	}
	return "", nil
}

// readToken returns token, or the trimmed contents of file.
func readToken(token, file string) (string, error) {
	if file == "" {
		return token, nil
	}
	b, err := readSmallFile(file)
	if err != nil {
		return "", fmt.Errorf("read token file %s: %w", file, err)
	}
	// An empty file would turn the token check off: a file truncated by
	// mistake must not open the API.
	if t := strings.TrimSpace(string(b)); t != "" {
		if err := badToken(t); err != nil {
			return "", fmt.Errorf("token file %s: %w", file, err)
		}
		return t, nil
	}
	return "", fmt.Errorf("token file %s is empty", file)
}

// checkTenantEndpoint applies [tenants] to an endpoint with a tenant: its
// URL is the platform's customer's input, so a literal address or
// localhost in a denied network is refused now (a name is checked after
// DNS resolution on every attempt, through Deny), and the caps apply.
func (c *Config) checkTenantEndpoint(p string, ec *delivery.EndpointConfig) error {
	switch {
	case ec.Timeout > TenantMaxTimeout:
		return c.ErrAt(p+".timeout", "a tenant endpoint's timeout is at most %s", TenantMaxTimeout)
	case ec.MaxInFlight > TenantMaxInFlight:
		return c.ErrAt(p+".max_in_flight", "a tenant endpoint's max_in_flight is at most %d", TenantMaxInFlight)
	case ec.MaxResponseBytes > TenantMaxResponseBytes:
		return c.ErrAt(p+".max_response_bytes", "a tenant endpoint's max_response_bytes is at most 16KiB")
	}
	u, err := url.Parse(ec.URL)
	if err != nil {
		return c.ErrAt(p+".url", "%v", err)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		host = "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(host); err == nil && delivery.Denied(ip, c.Tenants.Deny) {
		return c.ErrAt(p+".url", "%s is in tenants.deny_networks", u.Hostname())
	}
	ec.Deny = c.Tenants.Deny
	return nil
}
