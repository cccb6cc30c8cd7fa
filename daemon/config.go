package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"hookd/delivery"
)

// Config is the whole configuration file. DefaultConfig fills every
// default; ParseConfig decodes the file over it.
type Config struct {
	Ingest    IngestConfig       `toml:"ingest"`
	Admin     AdminConfig        `toml:"admin"`
	Storage   StorageConfig      `toml:"storage"`
	Delivery  DeliveryConfig     `toml:"delivery"`
	Log       LogConfig          `toml:"log"`
	Defaults  EndpointSettings   `toml:"defaults"`
	Endpoints []EndpointSettings `toml:"endpoints"`
	Notify    NotifyConfig       `toml:"notify"`

	// Filled by Resolve: endpoints with defaults applied and secrets read.
	Resolved []delivery.EndpointConfig `toml:"-"`

	ingestToken, adminToken string // from token or token_file

	path  string
	lines keyLines
}

type IngestConfig struct {
	Listen         string   `toml:"listen"`
	Token          string   `toml:"token"`
	TokenFile      string   `toml:"token_file"`
	MaxEventBytes  Size     `toml:"max_event_bytes"`
	MaxInflight    Size     `toml:"max_inflight_bytes"`
	ReadTimeout    Duration `toml:"read_timeout"`
	IdleTimeout    Duration `toml:"idle_timeout"`
	MaxConnections int      `toml:"max_connections"`
}

type AdminConfig struct {
	Listen    string `toml:"listen"`
	Token     string `toml:"token"`
	TokenFile string `toml:"token_file"`
	Pprof     bool   `toml:"pprof"`
}

type StorageConfig struct {
	Path                   string   `toml:"path"`
	Retention              Duration `toml:"retention"`
	UndeliverableRetention Duration `toml:"undeliverable_retention"`
	DedupWindow            Duration `toml:"dedup_window"`
	MaxPending             int64    `toml:"max_pending"`
	MinFreeBytes           Size     `toml:"min_free_bytes"`
}

type DeliveryConfig struct {
	Workers         int      `toml:"workers"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	DenyNetworks    []string `toml:"deny_networks"`

	deny []netip.Prefix
}

type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// NotifyConfig is the optional operational webhook.
type NotifyConfig struct {
	URL          string           `toml:"url"`
	FailingAfter int              `toml:"failing_after"`
	Signing      *SigningSettings `toml:"signing"`
}

// EndpointSettings is one [[endpoints]] table or [defaults]. Pointer fields
// tell "not set, inherit" from a set zero value (schedule = [] means no
// retries).
type EndpointSettings struct {
	Name             string            `toml:"name"`
	URL              string            `toml:"url"`
	Events           []string          `toml:"events"`
	Headers          map[string]string `toml:"headers"`
	Envelope         *EnvelopeSetting  `toml:"envelope"`
	Signing          *SigningSettings  `toml:"signing"`
	Timeout          *Duration         `toml:"timeout"`
	Schedule         *[]Duration       `toml:"schedule"`
	StopOn4xx        *bool             `toml:"stop_on_4xx"`
	MaxRetryAfter    *Duration         `toml:"max_retry_after"`
	Jitter           *float64          `toml:"jitter"`
	MaxInFlight      *int              `toml:"max_in_flight"`
	RateLimit        *float64          `toml:"rate_limit"`
	MaxResponseBytes *Size             `toml:"max_response_bytes"`
	TestOnCreate     *bool             `toml:"test_on_create"`
	TestEventType    *string           `toml:"test_event_type"`
}

// SigningSettings is [endpoints.signing] / [defaults.signing].
type SigningSettings struct {
	Scheme          *string  `toml:"scheme"`
	Secret          *string  `toml:"secret"`
	SecretFile      *string  `toml:"secret_file"`
	SecretEnv       *string  `toml:"secret_env"`
	PreviousSecrets []string `toml:"previous_secrets"`
	Header          *string  `toml:"header"`
	Prefix          *string  `toml:"prefix"`
	Encoding        *string  `toml:"encoding"`
	Content         *string  `toml:"content"`
	TimestampHeader *string  `toml:"timestamp_header"`
}

// Built-in endpoint defaults (Standard Webhooks' retry schedule).
var (
	defaultSchedule         = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	defaultTimeout          = 5 * time.Second
	defaultMaxRetryAfter    = time.Hour
	defaultMaxInFlight      = 16
	defaultMaxResponseBytes = 4 << 10
)

// DefaultConfig returns the configuration used for every key the file
// does not set.
func DefaultConfig() *Config {
	return &Config{
		Ingest:   IngestConfig{Listen: "127.0.0.1:8525", MaxEventBytes: 256 << 10, MaxInflight: 32 << 20, ReadTimeout: Duration(30 * time.Second), IdleTimeout: Duration(10 * time.Second), MaxConnections: 10000},
		Admin:    AdminConfig{Listen: "127.0.0.1:8526"},
		Storage:  StorageConfig{Path: "./data/hookd.db", Retention: Duration(72 * time.Hour), UndeliverableRetention: Duration(720 * time.Hour), DedupWindow: Duration(24 * time.Hour), MaxPending: 10_000_000, MinFreeBytes: 64 << 20},
		Delivery: DeliveryConfig{Workers: 64, ShutdownTimeout: Duration(10 * time.Second), DenyNetworks: []string{"169.254.0.0/16", "fe80::/10"}},
		Log:      LogConfig{Level: "info", Format: "json"},
		Notify:   NotifyConfig{FailingAfter: 5},
	}
}

// ConfigError names the file, key and line of a configuration problem.
type ConfigError struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %s", e.Msg)
	return b.String()
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// LoadConfig reads, parses, validates and resolves (reads secrets) the
// file at path. The daemon at start, a reload and check-config all use it.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrConfig, path, err)
	}
	c, err := ParseConfig(path, b)
	if err != nil {
		return nil, err
	}
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseConfig decodes and validates a file's bytes. It has no side effects:
// secrets are read by Resolve. name is used in error messages.
func ParseConfig(name string, b []byte) (*Config, error) {
	c := DefaultConfig()
	c.path = name
	c.lines = indexKeys(b)
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %w", ErrConfig, &ConfigError{File: name, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message})
		}
		return nil, fmt.Errorf("%w: %w", ErrConfig, &ConfigError{File: name, Msg: err.Error()})
	}
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, c.errAt(k.String(), "unknown key"))
	}
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c, nil
}

func (c *Config) errAt(key, format string, args ...any) error {
	return &ConfigError{File: c.path, Line: c.lines.find(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

var nameRe = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, c.errAt(key, format, args...)) }
	for key, v := range map[string]string{"ingest.listen": c.Ingest.Listen, "admin.listen": c.Admin.Listen} {
		if err := checkListen(v); err != nil {
			bad(key, "%v", err)
		}
	}
	if sameListener(c.Ingest.Listen, c.Admin.Listen) {
		bad("admin.listen", "%q: ingest.listen uses the same address; the two APIs need their own listeners", c.Admin.Listen)
	}
	if c.Ingest.Token != "" && c.Ingest.TokenFile != "" {
		bad("ingest.token_file", "set token or token_file, not both")
	}
	if c.Admin.Token != "" && c.Admin.TokenFile != "" {
		bad("admin.token_file", "set token or token_file, not both")
	}
	if c.Ingest.MaxEventBytes <= 0 || c.Ingest.MaxEventBytes > 64<<20 {
		bad("ingest.max_event_bytes", "must be between 1 byte and 64MiB")
	}
	if c.Ingest.MaxInflight < 1 {
		bad("ingest.max_inflight_bytes", "must be at least 1 byte")
	}
	if c.Storage.Path == "" {
		bad("storage.path", "must not be empty")
	}
	if c.Storage.Retention <= 0 {
		bad("storage.retention", "must be positive")
	}
	if c.Storage.UndeliverableRetention <= 0 {
		bad("storage.undeliverable_retention", "must be positive")
	}
	if c.Storage.DedupWindow > c.Storage.Retention {
		bad("storage.dedup_window", "must not be longer than storage.retention (an id is deduplicated as long as its event is stored)")
	}
	if c.Storage.MaxPending < 0 {
		bad("storage.max_pending", "must not be negative (0 = unlimited)")
	}
	if c.Delivery.Workers < 1 || c.Delivery.Workers > 10000 {
		bad("delivery.workers", "must be between 1 and 10000")
	}
	if c.Delivery.ShutdownTimeout <= 0 {
		bad("delivery.shutdown_timeout", "must be positive")
	}
	c.Delivery.deny = nil
	for _, n := range c.Delivery.DenyNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			bad("delivery.deny_networks", "%q: want a CIDR such as 169.254.0.0/16", n)
			continue
		}
		c.Delivery.deny = append(c.Delivery.deny, p)
	}
	if c.Ingest.ReadTimeout <= 0 {
		bad("ingest.read_timeout", "must be positive")
	}
	if c.Ingest.IdleTimeout <= 0 {
		bad("ingest.idle_timeout", "must be positive")
	}
	// Idle is never longer than a request may take to arrive: a short
	// read_timeout alone must not need idle_timeout set too.
	c.Ingest.IdleTimeout = min(c.Ingest.IdleTimeout, c.Ingest.ReadTimeout)
	if c.Ingest.MaxConnections < 1 {
		bad("ingest.max_connections", "must be at least 1")
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format", "must be json or console")
	}
	if c.Defaults.Name != "" || c.Defaults.URL != "" || c.Defaults.Events != nil {
		bad("defaults", "name, url and events belong to [[endpoints]], not [defaults]")
	}
	seen := map[string]bool{}
	for i := range c.Endpoints {
		e := &c.Endpoints[i]
		p := fmt.Sprintf("endpoints[%d]", i)
		switch {
		case !nameRe.MatchString(e.Name):
			bad(p+".name", "%q: must be 1-64 characters of [a-z0-9_-]", e.Name)
		case seen[e.Name]:
			bad(p+".name", "duplicate endpoint name %q", e.Name)
		}
		seen[e.Name] = true
		if err := checkURL(e.URL); err != nil {
			bad(p+".url", "%v", err)
		}
		if len(e.Events) == 0 {
			bad(p+".events", "must list at least one event type or pattern (\"*\" for all)")
		}
		if c.Notify.URL != "" && e.Name == notifyEndpoint {
			bad(p+".name", "%q is reserved for [notify]", e.Name)
		}
	}
	if c.Notify.URL != "" {
		if err := checkURL(c.Notify.URL); err != nil {
			bad("notify.url", "%v", err)
		}
		if c.Notify.FailingAfter < 1 {
			bad("notify.failing_after", "must be at least 1")
		}
	}
	return errs
}

// AdminToken is the admin API's bearer token ("" for none), read from
// token or token_file.
func (c *Config) AdminToken() string { return c.adminToken }

// notifyEndpoint is the internal endpoint name [notify] delivers through.
const notifyEndpoint = "hookd-notify"

func checkListen(v string) error {
	if p, ok := strings.CutPrefix(v, "unix:"); ok {
		if p == "" {
			return errors.New("unix: needs a socket path")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("%q: want host:port or unix:/path", v)
	}
	return nil
}

// sameListener reports whether two listen addresses would collide: the
// same socket path, or the same non-zero port on the same host or on a
// wildcard host (which binds every address). Port 0 picks a free port.
func sameListener(a, b string) bool {
	if pa, ok := strings.CutPrefix(a, "unix:"); ok {
		pb, ok := strings.CutPrefix(b, "unix:")
		return ok && filepath.Clean(pa) == filepath.Clean(pb)
	}
	ha, porta, errA := net.SplitHostPort(a)
	hb, portb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || porta != portb || porta == "0" {
		return false
	}
	canon := func(h string) string {
		if h == "localhost" {
			return "127.0.0.1"
		}
		if ip, err := netip.ParseAddr(h); err == nil {
			if ip.IsUnspecified() {
				return ""
			}
			return ip.Unmap().String()
		}
		return h
	}
	ha, hb = canon(ha), canon(hb)
	return ha == hb || ha == "" || hb == ""
}

func checkURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: must be an absolute http:// or https:// URL", v)
	}
	return nil
}

// Resolve applies [defaults] to every endpoint, reads secrets (secret_file,
// secret_env) and builds each endpoint's delivery config, checking it.
// Errors name the key, never a secret's value.
func (c *Config) Resolve() error {
	var errs []error
	var err error
	if c.ingestToken, err = readToken(c.Ingest.Token, c.Ingest.TokenFile); err != nil {
		errs = append(errs, c.errAt("ingest.token_file", "%v", err))
	}
	if c.adminToken, err = readToken(c.Admin.Token, c.Admin.TokenFile); err != nil {
		errs = append(errs, c.errAt("admin.token_file", "%v", err))
	}
	if _, _, err := c.NotifyEndpoint(); err != nil {
		errs = append(errs, err)
	}
	c.Resolved = nil
	for i := range c.Endpoints {
		p := fmt.Sprintf("endpoints[%d]", i)
		ec, err := c.resolveEndpoint(p, &c.Endpoints[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.Resolved = append(c.Resolved, ec)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// NotifyEndpoint returns the [notify] target as an endpoint config, or
// false when notifications are off.
func (c *Config) NotifyEndpoint() (delivery.EndpointConfig, bool, error) {
	if c.Notify.URL == "" {
		return delivery.EndpointConfig{}, false, nil
	}
	e := EndpointSettings{Name: notifyEndpoint, URL: c.Notify.URL, Events: []string{"hookd.*"}, Signing: c.Notify.Signing}
	ec, err := c.resolveEndpoint("notify", &e)
	ec.Internal = true
	return ec, true, err
}

func (c *Config) resolveEndpoint(p string, e *EndpointSettings) (delivery.EndpointConfig, error) {
	d := &c.Defaults
	ec := delivery.EndpointConfig{
		Name: e.Name, URL: e.URL, Events: e.Events, Headers: mergeHeaders(d.Headers, e.Headers),
		Timeout:          pick(e.Timeout, d.Timeout, Duration(defaultTimeout)).D(),
		MaxInFlight:      pick(e.MaxInFlight, d.MaxInFlight, defaultMaxInFlight),
		RateLimit:        pick(e.RateLimit, d.RateLimit, 0),
		MaxResponseBytes: int(pick(e.MaxResponseBytes, d.MaxResponseBytes, Size(defaultMaxResponseBytes))),
		TestOnCreate:     pick(e.TestOnCreate, d.TestOnCreate, false),
		TestEventType:    pick(e.TestEventType, d.TestEventType, "hookd.test"),
		Policy: delivery.Policy{
			StopOn4xx:     pick(e.StopOn4xx, d.StopOn4xx, false),
			MaxRetryAfter: pick(e.MaxRetryAfter, d.MaxRetryAfter, Duration(defaultMaxRetryAfter)).D(),
			Jitter:        pick(e.Jitter, d.Jitter, 0),
		},
	}
	ec.Policy.Schedule = defaultSchedule
	if s := pick(e.Schedule, d.Schedule, nil); s != nil {
		ec.Policy.Schedule = make([]time.Duration, len(s))
		for i, v := range s {
			ec.Policy.Schedule[i] = v.D()
		}
	}
	switch {
	case ec.Timeout <= 0 || ec.Timeout > 5*time.Minute:
		return ec, c.errAt(p+".timeout", "must be between 1ms and 5m")
	case ec.MaxInFlight < 1:
		return ec, c.errAt(p+".max_in_flight", "must be at least 1")
	case ec.RateLimit < 0:
		return ec, c.errAt(p+".rate_limit", "must not be negative")
	case ec.MaxResponseBytes < 0 || ec.MaxResponseBytes > 1<<20:
		return ec, c.errAt(p+".max_response_bytes", "must be between 0 and 1MiB")
	case ec.Policy.Jitter < 0 || ec.Policy.Jitter > 1:
		return ec, c.errAt(p+".jitter", "must be between 0 and 1")
	case !idRe.MatchString(ec.TestEventType):
		return ec, c.errAt(p+".test_event_type", "must be 1-128 characters of [A-Za-z0-9._:-]")
	}

	ec.Envelope = delivery.StandardEnvelope
	env := e.Envelope
	if env == nil {
		env = d.Envelope
	}
	if env != nil && !env.Standard {
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&ec.Envelope.ID, env.ID)
		set(&ec.Envelope.Type, env.Type)
		set(&ec.Envelope.Time, env.Time)
		set(&ec.Envelope.Data, env.Data)
		if env.TimeFormat != "" {
			ec.Envelope.TimeFormat = env.TimeFormat
		}
		ec.Envelope.Static = env.Static
	}

	sc, key, err := resolveSigning(e.Signing, d.Signing)
	if err != nil {
		return ec, c.errAt(p+".signing."+key, "%v", err)
	}
	ec.Signing = sc
	if _, err := delivery.NewEndpoint(ec); err != nil {
		var fe *delivery.FieldError
		if errors.As(err, &fe) {
			return ec, c.errAt(p+"."+fe.Field, "%v", fe.Err)
		}
		return ec, c.errAt(p, "%v", err)
	}
	return ec, nil
}

func pick[T any](v, def *T, builtin T) T {
	if v != nil {
		return *v
	}
	if def != nil {
		return *def
	}
	return builtin
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
		out[k] = v
	}
	return out
}

// resolveSigning merges an endpoint's signing table over the defaults'
// and reads the secret. The secret source (secret, secret_file,
// secret_env) is inherited as a whole. It returns the key to blame.
func resolveSigning(own, def *SigningSettings) (delivery.SigningConfig, string, error) {
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
		b, err := os.ReadFile(*src.SecretFile)
		if err != nil {
			return sc, "secret_file", fmt.Errorf("cannot read secret file %s: %v", *src.SecretFile, errors.Unwrap(err))
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
	str := func(a, b *string) string { return pick(a, b, "") }
	sc.Scheme = str(own.Scheme, def.Scheme)
	if sc.Scheme == "" {
		sc.Scheme = "none"
		if sc.Secret != "" {
			sc.Scheme = "standard"
		}
	}
	sc.Header = str(own.Header, def.Header)
	sc.Prefix = pick(own.Prefix, def.Prefix, "sha256=")
	sc.Encoding = str(own.Encoding, def.Encoding)
	sc.Content = str(own.Content, def.Content)
	sc.TimestampHeader = str(own.TimestampHeader, def.TimestampHeader)
	return sc, "scheme", nil
}
