package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"hookd/delivery"
)

// APISettings is what the admin API takes to create or change a managed
// endpoint: the keys of an [[endpoints]] table (durations and sizes as
// strings, signing an object), plus metadata and, for PATCH, disabled
// (state, not settings: the same as the enable and disable routes).
type APISettings struct {
	EndpointSettings
	Metadata map[string]string `json:"metadata,omitempty"`
	Disabled *bool             `json:"disabled,omitempty"`
}

// SecretSet is a managed endpoint's signing secrets: the current one and,
// after a rotation, the previous ones that still sign until they expire.
type SecretSet struct {
	Secret   string           `json:"secret,omitempty"`
	Previous []PreviousSecret `json:"previous,omitempty"`
}

// PreviousSecret is a rotated-out secret and when it stops signing.
type PreviousSecret struct {
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Limits on what the API accepts beyond the file's rules.
const (
	maxDescription = 1 << 10
	maxMetadata    = 4 << 10
	maxURL         = 2 << 10
)

// fieldErrorf is a *ConfigError whose Key is a JSON field of the API's
// settings.
func fieldErrorf(key, format string, args ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// GenerateSecret returns a new secret for scheme: standard's whsec_ and 32
// random bytes in base64, or 32 random bytes as 64 hex characters for
// hmac-sha256 (used as the raw key).
func GenerateSecret(scheme string) string {
	if scheme == "hmac-sha256" {
		b := make([]byte, 32)
		rand.Read(b)
		return hex.EncodeToString(b)
	}
	return delivery.NewStandardSecret()
}

// Scheme is the signing scheme s asks for, the built-in rule applied: a
// managed endpoint without signing is signed "standard".
func (s *APISettings) Scheme() string {
	if s.Signing != nil && s.Signing.Scheme != nil {
		return *s.Signing.Scheme
	}
	return "standard"
}

// BuildManaged validates a managed endpoint's settings by the same code
// as an [[endpoints]] table ([defaults] apply too) and builds it with its
// secrets. Errors are *ConfigError whose Key is the JSON field.
func (c *Config) BuildManaged(id string, s *APISettings, secrets SecretSet, now time.Time) (*delivery.Endpoint, error) {
	e := s.EndpointSettings // a copy: the secret below is not stored with the settings
	switch {
	case !nameRe.MatchString(e.Name):
		return nil, fieldErrorf("name", "%q: must be 1-64 characters of [a-z0-9_-]", e.Name)
	case e.Tenant != "" && !ValidID(e.Tenant):
		return nil, fieldErrorf("tenant", "%q: %s", e.Tenant, IDRule)
	case len(e.Description) > maxDescription:
		return nil, fieldErrorf("description", "must be at most 1 KiB")
	case len(e.Events) == 0:
		return nil, fieldErrorf("events", "must list at least one event type or pattern (\"*\" for all)")
	case e.Signing != nil && (e.Signing.SecretFile != nil || e.Signing.SecretEnv != nil):
		return nil, fieldErrorf("signing", "secret_file and secret_env are for the config file; send secret, or none to have one generated")
	case e.Signing != nil && e.Signing.PreviousSecrets != nil:
		return nil, fieldErrorf("signing.previous_secrets", "use POST /v1/endpoints/{name}/rotate-secret, which keeps the old secret signing for an overlap")
	case e.TestEventType != nil && !IsID(*e.TestEventType):
		return nil, fieldErrorf("test_event_type", TypeRule)
	}
	if err := checkURL(e.URL); err != nil {
		return nil, fieldErrorf("url", "%v", err)
	}
	n := 0
	for k, v := range s.Metadata {
		n += len(k) + len(v)
	}
	if n > maxMetadata {
		return nil, fieldErrorf("metadata", "must be at most 4 KiB")
	}
	signing := SigningSettings{}
	if e.Signing != nil {
		signing = *e.Signing
	}
	scheme := s.Scheme()
	signing.Scheme = &scheme
	signing.Secret = nil
	signing.PreviousSecrets = nil
	if scheme != "none" {
		signing.Secret = &secrets.Secret
	}
	var expire []time.Time
	for _, p := range secrets.Previous {
		if p.ExpiresAt.After(now) {
			signing.PreviousSecrets = append(signing.PreviousSecrets, p.Secret)
			expire = append(expire, p.ExpiresAt)
		}
	}
	e.Signing = &signing
	ec, err := c.resolveEndpoint("", id, &e, managedEndpoint)
	var ep *delivery.Endpoint
	if err == nil {
		// What only a managed endpoint has: resolveEndpoint knows the file's keys.
		ec.Managed, ec.Metadata = true, s.Metadata
		ec.Signing.PreviousExpire = expire
		ep, err = c.newEndpoint("", ec)
	}
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, fieldErrorf(strings.TrimPrefix(ce.Key, "."), "%s", ce.Msg)
		}
		return nil, err
	}
	return ep, nil
}

// minSecretKey is the shortest key a secret sent through the API may
// carry: 128 bits (hookd generates 256; Standard Webhooks asks for 24 to
// 64 bytes).
const minSecretKey = 16

// CheckAPISecret refuses a secret sent through the API (create, patch,
// rotate-secret) that makes a weak key, or an hmac-sha256 one that a
// receiver could not type back: its key is the text itself. The file's
// secrets are the operator's and are not held to it.
func CheckAPISecret(scheme, secret string) error {
	switch scheme {
	case "standard":
		key, err := delivery.DecodeStandardSecret(secret)
		if err == nil && len(key) < minSecretKey {
			return fmt.Errorf("its key is %d bytes; at least %d (leave it out to have a 32-byte one generated)", len(key), minSecretKey)
		}
	case "hmac-sha256":
		if len(secret) < minSecretKey {
			return fmt.Errorf("is %d characters; at least %d (leave it out to have one generated)", len(secret), minSecretKey)
		}
		if strings.TrimSpace(secret) != secret || strings.IndexFunc(secret, unicode.IsControl) >= 0 {
			return errors.New("must not have control characters or surrounding spaces")
		}
	}
	return nil
}

// CheckNewManaged refuses, in settings sent through the API that
// BuildManaged built as ep, what BuildManaged lets through so that
// endpoints stored before these checks still build at start: a
// description a terminal would act on, a URL in a form resolvers disagree
// on, headers that would not go out as written, and a tenant's settings
// past the caps that keep one endpoint from making every delivery heavy or
// its retries a flood against a third party's URL (the operator's
// [defaults] is trusted). changed says which JSON fields the request set
// (nil: all, a create): a patch is checked on what it changes, so a stored
// endpoint stays editable in the fields its owner may change. Errors are
// *ConfigError whose Key is the field.
func CheckNewManaged(s *APISettings, ep *delivery.Endpoint, changed func(field string) bool) error {
	set := func(field string) bool { return changed == nil || changed(field) }
	if set("description") {
		if err := checkDescription(s.Description); err != nil {
			return fieldErrorf("description", "%v", err)
		}
	}
	if set("url") {
		if err := checkURLForm(s.URL); err != nil {
			return fieldErrorf("url", "%v", err)
		}
		if len(s.URL) > maxURL {
			return fieldErrorf("url", "must be at most 2 KiB")
		}
	}
	if set("metadata") {
		// Shown in the portal and the CLI's tables, like the description.
		for _, k := range slices.Sorted(maps.Keys(s.Metadata)) {
			if strings.IndexFunc(k, Unprintable) >= 0 {
				return fieldErrorf("metadata", "key %+q: must not contain control characters", k)
			}
			if strings.IndexFunc(s.Metadata[k], Unprintable) >= 0 {
				return fieldErrorf("metadata."+k, "must not contain control characters")
			}
		}
	}
	if set("signing") {
		if key, err := s.Signing.conflicts(ep.Signing.Scheme); err != nil {
			return fieldErrorf("signing."+key, "%v", err)
		}
		if s.Signing != nil && s.Signing.Secret != nil {
			if err := CheckAPISecret(ep.Signing.Scheme, *s.Signing.Secret); err != nil {
				return fieldErrorf("signing.secret", "%v", err)
			}
		}
	}
	if set("headers") || set("signing") {
		var fe *delivery.FieldError
		if err := ep.CheckHeaders(); errors.As(err, &fe) {
			return fieldErrorf(fe.Field, "%v", fe.Err)
		}
	}
	if set("filter") {
		if err := ep.CheckFilterWritten(); err != nil {
			return fieldErrorf("filter", "%v", err)
		}
	}
	if s.Tenant == "" {
		return nil
	}
	n, static := 0, 0
	for k, v := range s.Headers {
		n += len(k) + len(v)
	}
	if s.Envelope != nil {
		for k, v := range s.Envelope.Static {
			static += len(k) + len(v)
		}
	}
	switch {
	case set("envelope") && static > TenantMaxHeaderBytes:
		return fieldErrorf("envelope.static", "a tenant endpoint's static fields are at most 8KiB (they are sent with every delivery)")
	case set("events") && len(s.Events) > TenantMaxEvents:
		return fieldErrorf("events", "a tenant endpoint lists at most %d patterns", TenantMaxEvents)
	case set("headers") && len(s.Headers) > TenantMaxHeaders:
		return fieldErrorf("headers", "a tenant endpoint sets at most %d headers", TenantMaxHeaders)
	case set("headers") && n > TenantMaxHeaderBytes:
		return fieldErrorf("headers", "a tenant endpoint's headers are at most 8KiB")
	case set("filter") && ep.FilterUsesRegex():
		return fieldErrorf("filter", "a tenant endpoint's filter may not use matches (a regular expression can cost microseconds per byte of every event): use contains, startsWith or endsWith")
	case set("schedule") && s.Schedule != nil && len(*s.Schedule) > TenantMaxRetries:
		return fieldErrorf("schedule", "a tenant endpoint's schedule has at most %d retries", TenantMaxRetries)
	case set("schedule") && s.Schedule != nil && slices.ContainsFunc(*s.Schedule, func(d Duration) bool { return d.D() < TenantMinRetryDelay || d.D() > TenantMaxRetryDelay }):
		return fieldErrorf("schedule", "a tenant endpoint's retries are %s to %s apart", TenantMinRetryDelay, TenantMaxRetryDelay)
	}
	return nil
}
