package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"hookd/delivery"
	"hookd/seal"
)

// Config is the whole configuration file. Default fills every default;
// Parse decodes the file over it; Resolve reads secrets and builds the
// endpoints.
type Config struct {
	Ingest    IngestConfig       `toml:"ingest"`
	Admin     AdminConfig        `toml:"admin"`
	Storage   StorageConfig      `toml:"storage"`
	Delivery  DeliveryConfig     `toml:"delivery"`
	Log       LogConfig          `toml:"log"`
	Defaults  EndpointSettings   `toml:"defaults"`
	Endpoints []EndpointSettings `toml:"endpoints"`
	Notify    NotifyConfig       `toml:"notify"`
	Tenants   TenantsConfig      `toml:"tenants"`
	Portal    PortalConfig       `toml:"portal"`
	// EventTypes is the optional catalogue of the event types the platform
	// sends, shown to customers and used to catch typos in patterns.
	EventTypes []EventType `toml:"event_types"`

	// Filled by Resolve: every [[endpoints]] table built for delivery
	// (defaults applied, secrets read), in file order, and the [notify]
	// target (nil when notifications are off).
	Resolved []*delivery.Endpoint `toml:"-"`
	NotifyTo *delivery.Endpoint   `toml:"-"`
	// SealKey seals managed secrets at rest (nil without secrets_key_file).
	SealKey *seal.Key `toml:"-"`
	// PortalKey is [portal] key_file's key (nil without one).
	PortalKey []byte `toml:"-"`

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
	// AllowedHosts are Host names, besides loopback names and addresses,
	// the admin listener answers (a browser on a rebound DNS name must
	// not reach /ui/ or the API).
	AllowedHosts []string `toml:"allowed_hosts"`
}

// PortalConfig is [portal]: the customer portal (SPEC §12).
type PortalConfig struct {
	Listen string `toml:"listen"` // "" = no portal listener
	// PublicURL is where customers reach the portal (through the
	// platform's proxy); magic links are built from it.
	PublicURL  string   `toml:"public_url"`
	SessionTTL Duration `toml:"session_ttl"`
	// FrameAncestors are the origins allowed to embed the portal.
	FrameAncestors []string `toml:"frame_ancestors"`
	Title          string   `toml:"title"`
	// KeyFile holds the HMAC key of portal tokens; "" = a key generated
	// once and kept (sealed) in the database.
	KeyFile string `toml:"key_file"`
}

type StorageConfig struct {
	Path                   string   `toml:"path"`
	Retention              Duration `toml:"retention"`
	UndeliverableRetention Duration `toml:"undeliverable_retention"`
	DedupWindow            Duration `toml:"dedup_window"`
	MaxPending             int64    `toml:"max_pending"`
	MinFreeBytes           Size     `toml:"min_free_bytes"`
	SecretsKeyFile         string   `toml:"secrets_key_file"`
}

type DeliveryConfig struct {
	Workers         int      `toml:"workers"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	DenyNetworks    []string `toml:"deny_networks"`

	// Deny is DenyNetworks parsed (by validation).
	Deny []netip.Prefix `toml:"-"`
}

type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// EventType is one [[event_types]] entry.
type EventType struct {
	Name        string `toml:"name" json:"name"`
	Description string `toml:"description" json:"description,omitempty"`
	// Example is a JSON value: the data of a test event of this type.
	Example string `toml:"example" json:"-"`
}

// CheckPatterns refuses event patterns that can match no event type, and
// those that match no catalogued type when there is a catalogue: a typo
// ("conversation.endd") would otherwise subscribe to nothing, silently. It
// returns the first such pattern.
func (c *Config) CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		// An event type is 1-128 characters of [A-Za-z0-9._:-]: a pattern
		// with anything else, or longer, matches none.
		if p != "*" && !IsID(strings.TrimSuffix(p, "*")) {
			return fmt.Errorf("pattern %q can match no event type (1-128 characters of [A-Za-z0-9._:-], then * or nothing)", p)
		}
	}
	if len(c.EventTypes) == 0 {
		return nil
	}
	for _, p := range patterns {
		ok := false
		for _, et := range c.EventTypes {
			if ok = delivery.PatternMatches(p, et.Name); ok {
				break
			}
		}
		if !ok {
			return fmt.Errorf("pattern %q matches no type of the [[event_types]] catalogue", p)
		}
	}
	return nil
}

// Catalogued reports whether typ is in the [[event_types]] catalogue, or
// there is none.
func (c *Config) Catalogued(typ string) bool {
	return len(c.EventTypes) == 0 || slices.ContainsFunc(c.EventTypes, func(et EventType) bool { return et.Name == typ })
}

// Example is the catalogued example data of an event type, or nil.
func (c *Config) Example(typ string) json.RawMessage {
	for _, et := range c.EventTypes {
		if et.Name == typ && et.Example != "" {
			return json.RawMessage(et.Example)
		}
	}
	return nil
}

// TenantsConfig bounds what a tenant's endpoints (the platform's
// customers' input) may do.
type TenantsConfig struct {
	DenyNetworks []string `toml:"deny_networks"`
	MaxEndpoints int      `toml:"max_endpoints"`
	MaxPending   int64    `toml:"max_pending"`

	// Deny is DenyNetworks parsed (by validation).
	Deny []netip.Prefix `toml:"-"`
}

// What a tenant endpoint may set at most, whatever [defaults] says: one
// customer's slow receiver must not hold a platform's workers. The count
// and schedule caps apply to what is set through the API (CheckNewManaged):
// they keep one endpoint's settings from making every delivery heavy
// (headers go with each attempt) or its retries a flood against a third
// party's URL.
const (
	TenantMaxTimeout       = 30 * time.Second
	TenantMaxInFlight      = 16
	TenantMaxResponseBytes = 16 << 10
	TenantMaxEvents        = 256
	TenantMaxHeaders       = 32
	TenantMaxHeaderBytes   = 8 << 10
	TenantMaxRetries       = 32
	TenantMinRetryDelay    = time.Second
	TenantMaxRetryDelay    = 24 * time.Hour
)

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
	Name             string            `toml:"name" json:"name,omitempty"`
	Tenant           string            `toml:"tenant" json:"tenant,omitempty"`
	Description      string            `toml:"description" json:"description,omitempty"`
	URL              string            `toml:"url" json:"url,omitempty"`
	Events           []string          `toml:"events" json:"events,omitempty"`
	Headers          map[string]string `toml:"headers" json:"headers,omitempty"`
	Envelope         *EnvelopeSetting  `toml:"envelope" json:"envelope,omitempty"`
	Signing          *SigningSettings  `toml:"signing" json:"signing,omitempty"`
	Timeout          *Duration         `toml:"timeout" json:"timeout,omitempty"`
	Schedule         *[]Duration       `toml:"schedule" json:"schedule,omitempty"`
	StopOn4xx        *bool             `toml:"stop_on_4xx" json:"stop_on_4xx,omitempty"`
	MaxRetryAfter    *Duration         `toml:"max_retry_after" json:"max_retry_after,omitempty"`
	Jitter           *float64          `toml:"jitter" json:"jitter,omitempty"`
	MaxInFlight      *int              `toml:"max_in_flight" json:"max_in_flight,omitempty"`
	RateLimit        *float64          `toml:"rate_limit" json:"rate_limit,omitempty"`
	MaxResponseBytes *Size             `toml:"max_response_bytes" json:"max_response_bytes,omitempty"`
	DisableAfter     *Duration         `toml:"disable_after" json:"disable_after,omitempty"`
	TestOnCreate     *bool             `toml:"test_on_create" json:"test_on_create,omitempty"`
	TestEventType    *string           `toml:"test_event_type" json:"test_event_type,omitempty"`
	// Ordering is "none" or "fifo" (one delivery at a time, in
	// acknowledgement order); [defaults] may set it.
	Ordering *string `toml:"ordering" json:"ordering,omitempty"`
	// Filter is an expr expression over type, tenant, id and data; only
	// endpoints set it, not [defaults].
	Filter string `toml:"filter" json:"filter,omitempty"`
}

// SigningSettings is [endpoints.signing] / [defaults.signing].
type SigningSettings struct {
	Scheme          *string  `toml:"scheme" json:"scheme,omitempty"`
	Secret          *string  `toml:"secret" json:"secret,omitempty"`
	SecretFile      *string  `toml:"secret_file" json:"secret_file,omitempty"`
	SecretEnv       *string  `toml:"secret_env" json:"secret_env,omitempty"`
	PreviousSecrets []string `toml:"previous_secrets" json:"previous_secrets,omitempty"`
	Header          *string  `toml:"header" json:"header,omitempty"`
	Prefix          *string  `toml:"prefix" json:"prefix,omitempty"`
	Encoding        *string  `toml:"encoding" json:"encoding,omitempty"`
	Content         *string  `toml:"content" json:"content,omitempty"`
	TimestampHeader *string  `toml:"timestamp_header" json:"timestamp_header,omitempty"`
}

// Default returns the configuration used for every key the file does not
// set. With builtinEndpoint it is the one table of defaults: nothing
// downstream (delivery, the daemon) invents a default of its own.
func Default() *Config {
	return &Config{
		Ingest: IngestConfig{Listen: "127.0.0.1:8525", MaxEventBytes: 256 << 10, MaxInflight: 32 << 20,
			ReadTimeout: Duration(30 * time.Second), IdleTimeout: Duration(10 * time.Second), MaxConnections: 10000},
		Admin:  AdminConfig{Listen: "127.0.0.1:8526"},
		Portal: PortalConfig{SessionTTL: Duration(12 * time.Hour), Title: "Webhooks"},
		Storage: StorageConfig{Path: "./data/hookd.db", Retention: Duration(72 * time.Hour), UndeliverableRetention: Duration(720 * time.Hour),
			DedupWindow: Duration(24 * time.Hour), MaxPending: 10_000_000, MinFreeBytes: 64 << 20},
		Delivery: DeliveryConfig{Workers: 64, ShutdownTimeout: Duration(10 * time.Second), DenyNetworks: []string{"169.254.0.0/16", "fe80::/10"}},
		Log:      LogConfig{Level: "info", Format: "json"},
		Notify:   NotifyConfig{FailingAfter: 5},
		Tenants: TenantsConfig{MaxEndpoints: 50, MaxPending: 1_000_000, DenyNetworks: []string{
			"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
			"100.64.0.0/10", "fc00::/7", "169.254.0.0/16", "fe80::/10", "0.0.0.0/32",
			// IPv6 forms that carry an IPv4 address: IPv4-compatible
			// (::/96, with :: and ::1), NAT64 and 6to4.
			"::/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16"}},
	}
}

// builtinEndpoint is every endpoint setting's default: [defaults]
// overrides it, and each [[endpoints]] table overrides both. The retry
// schedule is Standard Webhooks'.
func builtinEndpoint() EndpointSettings {
	return EndpointSettings{
		Envelope:         &EnvelopeSetting{Standard: true},
		Timeout:          ptr(Duration(5 * time.Second)),
		Schedule:         &[]Duration{Duration(5 * time.Second), Duration(5 * time.Minute), Duration(30 * time.Minute), Duration(2 * time.Hour), Duration(5 * time.Hour), Duration(10 * time.Hour), Duration(10 * time.Hour)},
		StopOn4xx:        ptr(false),
		MaxRetryAfter:    ptr(Duration(time.Hour)),
		Jitter:           ptr(0.0),
		MaxInFlight:      ptr(16),
		RateLimit:        ptr(0.0),
		MaxResponseBytes: ptr(Size(4 << 10)),
		DisableAfter:     ptr(Duration(0)),
		TestOnCreate:     ptr(false),
		TestEventType:    ptr("hookd.test"),
		Ordering:         ptr(delivery.OrderingNone),
		Signing: &SigningSettings{
			// Scheme: "standard" when a secret is set, else "none" (resolveSigning).
			Header:          ptr("X-Webhook-Signature"),
			Prefix:          ptr("sha256="),
			Encoding:        ptr("hex"),
			Content:         ptr("{body}"),
			TimestampHeader: ptr(""),
		},
	}
}

func ptr[T any](v T) *T { return &v }

// Path is the file the config was read from.
func (c *Config) Path() string { return c.path }

// IngestToken and AdminToken are the bearer tokens ("" for none), read
// from token or token_file by Resolve.
func (c *Config) IngestToken() string { return c.ingestToken }
func (c *Config) AdminToken() string  { return c.adminToken }

// AdminAccess reads only what the CLI needs from the file at name (its
// bytes b) to reach the daemon's admin API: [admin] listen and its token
// (token, or token_file's contents, read only when needToken is set: no
// -token flag). The rest of the file is neither validated nor read (no
// endpoint secrets, which an operator running the CLI may not be allowed
// to read): right after a bad edit, which a reload refuses, the CLI still
// reaches the daemon running the old config. [admin] itself is checked as
// Parse checks it, and errors never quote what the parser found.
func AdminAccess(name string, b []byte, needToken bool) (listen, token string, err error) {
	c := Default()
	c.path, c.lines = name, indexKeys(b)
	var tree map[string]any
	if _, err := toml.Decode(string(b), &tree); err != nil {
		return "", "", c.decodeError(b, err, true)
	}
	if admin, ok := tree["admin"]; ok {
		if errs := c.checkTypes(map[string]any{"admin": admin}); len(errs) > 0 {
			return "", "", fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
		}
	}
	var f struct {
		Admin *AdminConfig `toml:"admin"`
	}
	f.Admin = &c.Admin
	md, err := toml.Decode(string(b), &f)
	if err != nil {
		return "", "", c.decodeError(b, err, false)
	}
	var errs []error
	for _, k := range md.Undecoded() {
		if strings.HasPrefix(k.String(), "admin.") {
			errs = append(errs, c.ErrAt(k.String(), "unknown key"))
		}
	}
	errs = append(errs, c.tokenErrors(md, "admin")...)
	if len(errs) > 0 {
		return "", "", fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	if needToken {
		if token, err = readToken(c.Admin.Token, c.Admin.TokenFile); err != nil {
			return "", "", c.ErrAt("admin.token_file", "%v", err)
		}
	}
	return loopbackFor(c.Admin.Listen), token, nil
}

// loopbackFor is where a client on this host reaches a listener on addr:
// a wildcard host (0.0.0.0, ::, none) as loopback, which the admin API's
// Host check accepts.
func loopbackFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // unix:/path
	}
	switch host {
	case "", "0.0.0.0":
		return net.JoinHostPort("127.0.0.1", port)
	case "::":
		return net.JoinHostPort("::1", port)
	}
	return addr
}

// AllEndpoints is every endpoint the scheduler serves: the configured
// ones and the [notify] target.
func (c *Config) AllEndpoints() []*delivery.Endpoint {
	if c.NotifyTo == nil {
		return c.Resolved
	}
	return append(c.Resolved[:len(c.Resolved):len(c.Resolved)], c.NotifyTo)
}

// DefaultPath is where hookd and its CLI look for the config when
// -config is not given.
const DefaultPath = "/etc/hookd/hookd.toml"

// NotifyEndpoint is the internal endpoint name [notify] delivers through.
const NotifyEndpoint = "hookd-notify"
