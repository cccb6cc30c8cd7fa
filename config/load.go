package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"hookd/delivery"

	"golang.org/x/net/idna"
)

// ConfigError names the file, key and line of a configuration problem.
type ConfigError struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
	Err  error // a sentinel callers branch on, if any
}

func (e *ConfigError) Unwrap() error { return e.Err }

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	for _, s := range []string{e.Key, e.Msg} {
		if s == "" {
			continue
		}
		if b.Len() > 0 { // no file: a managed endpoint's field
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// LoadConfig reads, parses, validates and resolves (reads secrets) the
// file at path. The daemon at start, a reload and check-config all use it.
// Load reads, parses, validates and resolves (reads secrets) the file at
// path. The daemon at start, a reload and check-config all use it.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrConfig, path, err)
	}
	c, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates a file's bytes. It has no side effects:
// secrets are read by Resolve. name is used in error messages.
func Parse(name string, b []byte) (*Config, error) {
	c := Default()
	c.path = name
	c.lines = indexKeys(b)
	// A file that does not parse is reported by the decoder below, with
	// the line of its syntax error.
	var tree map[string]any
	_, syntaxErr := toml.Decode(string(b), &tree)
	if syntaxErr == nil {
		if errs := c.checkTypes(tree); len(errs) > 0 {
			return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
		}
	}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(c)
	if err != nil {
		return nil, c.decodeError(b, err, syntaxErr != nil)
	}
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, c.ErrAt(k.String(), "unknown key"))
	}
	errs = append(errs, c.tokenErrors(md, "ingest", "admin")...)
	// Unset, undeliverable_retention is at least retention: a retention
	// over the default 30 days alone is not a config error.
	if !md.IsDefined("storage", "undeliverable_retention") && c.Storage.UndeliverableRetention < c.Storage.Retention {
		c.Storage.UndeliverableRetention = c.Storage.Retention
	}
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c, nil
}

// tokenErrors refuses, in each of sections (ingest, admin), a token set
// empty, which would turn the check off as if the key were not there (md
// tells set from absent), and a token set next to token_file.
func (c *Config) tokenErrors(md toml.MetaData, sections ...string) []error {
	var errs []error
	for _, sec := range sections {
		token, file := c.Ingest.Token, c.Ingest.TokenFile
		if sec == "admin" {
			token, file = c.Admin.Token, c.Admin.TokenFile
		}
		switch {
		case md.IsDefined(sec, "token") && strings.TrimSpace(token) == "":
			errs = append(errs, c.ErrAt(sec+".token", "is empty: set a token, or remove the key for none"))
		case token != "" && file != "":
			errs = append(errs, c.ErrAt(sec+".token_file", "set token or token_file, not both"))
		case token != "" && badToken(token) != nil:
			errs = append(errs, c.ErrAt(sec+".token", "%v", badToken(token)))
		case token != strings.TrimSpace(token):
			// HTTP strips them from the header: no request could match.
			errs = append(errs, c.ErrAt(sec+".token", "has spaces at either end, which an Authorization header cannot carry"))
		}
	}
	return errs
}

// badToken refuses a token that an Authorization header cannot carry:
// every request, the CLI's too, then got 401 or failed to send.
func badToken(t string) error {
	if strings.ContainsFunc(t, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return errors.New("must not contain control characters or line breaks (an Authorization header carries it)")
	}
	return nil
}

// decodeError is the decoder's err for the file's bytes b as a
// ConfigError naming its line and key. syntax says the file does not
// parse: the parser's message then quotes what it found, which may be a
// secret written without its quotes (in an inline table, a multi-line
// array, a header's value), and is not shown; our own types' messages
// quote nothing secret.
func (c *Config) decodeError(b []byte, err error, syntax bool) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%w: %w", ErrConfig, &ConfigError{File: c.path, Msg: err.Error()})
	}
	line := pe.Position.Line
	if at := pe.Position.Start; at > 0 && at < len(b) {
		// The parser counts a line's closing newline as the next
		// line's: a header missing its "]" was reported a line late.
		line = 1 + bytes.Count(b[:at], []byte("\n"))
	}
	key := c.lines.byLine[line]
	if key == "" && pe.LastKey != "" {
		// The parser's last key, if it is set on this line (a value
		// it refused below a line the index could not place).
		last := pe.LastKey[strings.LastIndex(pe.LastKey, ".")+1:]
		if k := keyRe.FindStringSubmatch(lineText(b, line)); k != nil && strings.Trim(k[1], `"`) == last {
			key = pe.LastKey
		}
	}
	msg := pe.Message
	if syntax {
		msg = quotedRe.ReplaceAllString(msg, "…")
	}
	if secretLine(key, lineText(b, line)) {
		// An unquoted number too ("… is out of range for int64").
		msg = "not a valid value (not shown: it may be a secret; write a string in quotes)"
	}
	return fmt.Errorf("%w: %w", ErrConfig, &ConfigError{File: c.path, Line: line, Key: key, Msg: msg})
}

var (
	// quotedRe is a quoted string or character in the parser's message.
	quotedRe = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)+'`)
	// secretKeyRe finds a key whose value is a secret, in a dotted key or
	// set on a line (an inline table's too).
	secretKeyRe = regexp.MustCompile(`(?:^|[\s{,."])(?:secret|previous_secrets|token)"?\s*(?:=|$|\.)`)
)

// secretLine says whether a syntax error on a line setting key (if
// known), whose text is text, may show a secret.
func secretLine(key, text string) bool {
	return secretKeyRe.MatchString(key) || secretKeyRe.MatchString(text)
}

// lineText is the text of line n (1-based) of b.
func lineText(b []byte, n int) string {
	lines := strings.Split(string(b), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}

// ErrAt is a ConfigError for key, with the line that sets it.
func (c *Config) ErrAt(key, format string, args ...any) error {
	return &ConfigError{File: c.path, Line: c.lines.find(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// nameRe is the endpoint name rule.
var nameRe = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// reporter collects validation errors, each naming its key and line.
type reporter struct {
	c    *Config
	errs []error
}

func (r *reporter) bad(key, format string, args ...any) {
	r.errs = append(r.errs, r.c.ErrAt(key, format, args...))
}

// validate checks every section; a section's checks sit together.
func (c *Config) validate() []error {
	r := &reporter{c: c}
	c.validateListeners(r)
	c.validateStorage(r)
	c.validateDelivery(r)
	c.validateEndpoints(r)
	c.validateEventTypes(r)
	c.validatePortal(r)
	return r.errs
}

func (c *Config) validatePortal(r *reporter) {
	p := &c.Portal
	if p.Listen != "" {
		if err := checkListen(p.Listen); err != nil {
			r.bad("portal.listen", "%v", err)
		}
		for key, v := range map[string]string{"ingest.listen": c.Ingest.Listen, "admin.listen": c.Admin.Listen} {
			if sameListener(p.Listen, v) {
				r.bad("portal.listen", "%q: %s uses the same address; the portal needs its own listener", p.Listen, key)
			}
		}
	}
	if p.PublicURL != "" {
		// No path: the portal's pages link from the root of their host, and
		// its __Host- cookie must have Path=/ (a proxy serving it under
		// /portal would send customers to the platform's own /endpoints).
		u, err := url.Parse(p.PublicURL)
		switch {
		case err != nil || checkURL(p.PublicURL) != nil || u.RawQuery != "" || strings.Contains(p.PublicURL, "#") || u.ForceQuery || strings.Trim(u.Path, "/") != "":
			r.bad("portal.public_url", "%q: must be an absolute http:// or https:// URL of a host's root, without path, query or fragment (the portal is served at the root of its host)", p.PublicURL)
		case u.User != nil:
			// Every link minted would carry them.
			r.bad("portal.public_url", "%q: must not hold a user name or password", p.PublicURL)
		default:
			if err := checkURLForm(p.PublicURL); err != nil {
				r.bad("portal.public_url", "%v", err)
			} else if err := checkPublicHost(u.Hostname()); err != nil {
				r.bad("portal.public_url", "%q: %v", p.PublicURL, err)
			}
			// As browsers write an origin: the cookie's rule, the links and
			// the Origin check read it (HTTPS:// lost the Secure cookie; a
			// root dot made the framing parent another site).
			p.PublicURL = origin(u)
		}
	}
	if p.SessionTTL < Duration(time.Minute) {
		r.bad("portal.session_ttl", "must be at least 1m")
	}
	for i, o := range p.FrameAncestors {
		if o, err := frameAncestor(o); err != nil {
			r.bad(fmt.Sprintf("portal.frame_ancestors[%d]", i), "%v", err)
		} else {
			p.FrameAncestors[i] = o
		}
	}
	if strings.TrimSpace(p.Title) == "" || len(p.Title) > 100 {
		r.bad("portal.title", "must be 1-100 characters")
	}
	for i, h := range c.Admin.AllowedHosts {
		if n, err := allowedHost(h); err != nil {
			r.bad(fmt.Sprintf("admin.allowed_hosts[%d]", i), "%q: must be a host name or host:port (no wildcards)", h)
		} else {
			c.Admin.AllowedHosts[i] = n
		}
	}
}

func (c *Config) validateListeners(r *reporter) {
	for key, v := range map[string]string{"ingest.listen": c.Ingest.Listen, "admin.listen": c.Admin.Listen} {
		if err := checkListen(v); err != nil {
			r.bad(key, "%v", err)
		}
	}
	if sameListener(c.Ingest.Listen, c.Admin.Listen) {
		r.bad("admin.listen", "%q: ingest.listen uses the same address; the two APIs need their own listeners", c.Admin.Listen)
	}
	if c.Ingest.MaxEventBytes <= 0 || c.Ingest.MaxEventBytes > 64<<20 {
		r.bad("ingest.max_event_bytes", "must be between 1 byte and 64MiB")
	}
	if c.Ingest.MaxInflight < 1 {
		r.bad("ingest.max_inflight_bytes", "must be at least 1 byte")
	}
	if c.Ingest.ReadTimeout <= 0 {
		r.bad("ingest.read_timeout", "must be positive")
	}
	if c.Ingest.IdleTimeout <= 0 {
		r.bad("ingest.idle_timeout", "must be positive")
	}
	// Idle is never longer than a request may take to arrive: a short
	// read_timeout alone must not need idle_timeout set too.
	c.Ingest.IdleTimeout = min(c.Ingest.IdleTimeout, c.Ingest.ReadTimeout)
	if c.Ingest.MaxConnections < 1 {
		r.bad("ingest.max_connections", "must be at least 1")
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		r.bad("log.level", "%v", err)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		r.bad("log.format", "must be json or console")
	}
}

func (c *Config) validateStorage(r *reporter) {
	if c.Storage.Path == "" {
		r.bad("storage.path", "must not be empty")
	}
	if c.Storage.Retention <= 0 {
		r.bad("storage.retention", "must be positive")
	}
	if c.Storage.UndeliverableRetention <= 0 {
		r.bad("storage.undeliverable_retention", "must be positive")
	} else if c.Storage.UndeliverableRetention < c.Storage.Retention {
		// A parked delivery's event is purged with its delivered ones,
		// after retention at least: a shorter undeliverable_retention was
		// silently not kept.
		r.bad("storage.undeliverable_retention", "must not be shorter than storage.retention (%s): an event with a parked delivery is kept at least as long as any event", ShortDuration(c.Storage.Retention.D()))
	}
	if c.Storage.DedupWindow > c.Storage.Retention {
		r.bad("storage.dedup_window", "must not be longer than storage.retention (an id is deduplicated as long as its event is stored)")
	}
	if c.Storage.MaxPending < 0 {
		r.bad("storage.max_pending", "must not be negative (0 = unlimited)")
	}
}

// prefixes parses a deny list, reporting each entry that is not a CIDR.
func (r *reporter) prefixes(key string, list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range list {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			r.bad(key, "%q: want a CIDR such as 10.0.0.0/8", n)
			continue
		}
		// Addresses are unmapped before they are compared (::ffff:127.0.0.1
		// is 127.0.0.1): a mapped prefix is compared in the same form, or
		// it would never match.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p)
	}
	return out
}

func (c *Config) validateDelivery(r *reporter) {
	if c.Delivery.Workers < 1 || c.Delivery.Workers > 10000 {
		r.bad("delivery.workers", "must be between 1 and 10000")
	}
	if c.Delivery.ShutdownTimeout <= 0 {
		r.bad("delivery.shutdown_timeout", "must be positive")
	}
	c.Delivery.Deny = r.prefixes("delivery.deny_networks", c.Delivery.DenyNetworks)
	c.Tenants.Deny = r.prefixes("tenants.deny_networks", c.Tenants.DenyNetworks)
	if c.Tenants.MaxEndpoints < 1 {
		r.bad("tenants.max_endpoints", "must be at least 1")
	}
	if c.Tenants.MaxPending < 0 {
		r.bad("tenants.max_pending", "must not be negative (0 = unlimited)")
	}
	if c.Notify.URL != "" {
		if err := checkURL(c.Notify.URL); err != nil {
			r.bad("notify.url", "%v", err)
		} else if TargetsSelf(c.Notify.URL, c.listenAddrs()) {
			r.bad("notify.url", "%q is one of hookd's own listeners", c.Notify.URL)
		}
	} else if c.Notify.Signing != nil {
		r.bad("notify.signing", "is set but notify.url is not: nothing would be sent")
	}
	// It also says when an endpoint is "failing", with or without a URL.
	if c.Notify.FailingAfter < 1 {
		r.bad("notify.failing_after", "must be at least 1")
	}
}

func (c *Config) validateEndpoints(r *reporter) {
	if c.Defaults.Name != "" || c.Defaults.URL != "" || c.Defaults.Events != nil || c.Defaults.Tenant != "" || c.Defaults.Description != "" {
		r.bad("defaults", "name, url, events, tenant and description belong to [[endpoints]], not [defaults]")
	}
	if c.Defaults.Filter != "" {
		r.bad("defaults.filter", "a filter belongs to [[endpoints]], not [defaults]")
	}
	self := c.listenAddrs()
	seen := map[string]bool{}
	for i := range c.Endpoints {
		e := &c.Endpoints[i]
		p := fmt.Sprintf("endpoints[%d]", i)
		switch {
		case !nameRe.MatchString(e.Name):
			r.bad(p+".name", "%q: must be 1-64 characters of [a-z0-9_-]", e.Name)
		case seen[e.Name]:
			r.bad(p+".name", "duplicate endpoint name %q", e.Name)
		case c.Notify.URL != "" && e.Name == NotifyEndpoint:
			r.bad(p+".name", "%q is reserved for [notify]", e.Name)
		}
		seen[e.Name] = true
		if err := checkURLForm(e.URL); err != nil {
			r.bad(p+".url", "%v", err)
		} else if TargetsSelf(e.URL, self) {
			r.bad(p+".url", "%q is one of hookd's own listeners", e.URL)
		}
		if e.Tenant != "" && !ValidID(e.Tenant) {
			r.bad(p+".tenant", "%q: %s", e.Tenant, IDRule)
		} else if _, set := c.lines.byKey[p+".tenant"]; set && e.Tenant == "" {
			// Written from an empty variable, it would make a platform
			// endpoint, which every tenant's events reach.
			r.bad(p+".tenant", "is empty (leave the key out for a platform endpoint)")
		}
		if err := checkDescription(e.Description); err != nil {
			r.bad(p+".description", "%v", err)
		}
		if len(e.Events) == 0 {
			r.bad(p+".events", "must list at least one event type or pattern (\"*\" for all)")
		} else if err := c.CheckPatterns(e.Events); err != nil {
			r.bad(p+".events", "%v", err)
		}
	}
}

func (c *Config) validateEventTypes(r *reporter) {
	seen := map[string]bool{}
	for i, et := range c.EventTypes {
		p := fmt.Sprintf("event_types[%d]", i)
		switch {
		case !IsID(et.Name):
			r.bad(p+".name", "%q: %s", et.Name, TypeRule)
		case seen[et.Name]:
			r.bad(p+".name", "duplicate event type %q", et.Name)
		case et.Example != "" && !json.Valid([]byte(et.Example)):
			r.bad(p+".example", "must be a JSON value (a string holding JSON, e.g. '{\"id\":1}')")
		}
		seen[et.Name] = true
	}
}

func checkListen(v string) error {
	if p, ok := strings.CutPrefix(v, "unix:"); ok {
		if p == "" {
			return errors.New("unix: needs a socket path")
		}
		return nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q: want host:port or unix:/path", v)
	}
	// check-config passed a port the start then refused; the start's own
	// reading of it (a number, or a service name) decides.
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535 (0: any free one) or a service name", v)
	}
	return nil
}

// TargetsSelf says whether the endpoint URL raw names one of the
// listeners in self by a literal address or localhost. A name is checked
// after resolution, on each attempt (delivery.IsSelf).
func TargetsSelf(raw string, self []netip.AddrPort) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	port := map[string]uint64{"http": 80, "https": 443}[u.Scheme]
	if p := u.Port(); p != "" {
		if port, err = strconv.ParseUint(p, 10, 16); err != nil {
			return false
		}
	}
	var addrs []netip.Addr
	if host := strings.TrimSuffix(strings.ToLower(u.Hostname()), "."); host == "localhost" || strings.HasSuffix(host, ".localhost") {
		addrs = localhostAddrs
	} else if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	}
	return slices.ContainsFunc(addrs, func(a netip.Addr) bool { return delivery.IsSelf(a, uint16(port), self) })
}

// localhostAddrs are what localhost names, for TargetsSelf and listenAddrs.
var localhostAddrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}

// listenAddrs are the file's TCP listen addresses with a fixed port, as
// TargetsSelf takes them (localhost as 127.0.0.1 and ::1).
func (c *Config) listenAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, v := range []string{c.Ingest.Listen, c.Admin.Listen, c.Portal.Listen} {
		host, port, err := net.SplitHostPort(v)
		p, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil || p == 0 {
			continue
		}
		if host == "localhost" {
			for _, a := range localhostAddrs {
				out = append(out, netip.AddrPortFrom(a, uint16(p)))
			}
		} else if a, err := netip.ParseAddr(host); err == nil || host == "" {
			if host == "" {
				a = netip.IPv6Unspecified()
			}
			out = append(out, netip.AddrPortFrom(a, uint16(p)))
		}
	}
	return out
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

// checkPublicHost refuses a public_url host a browser cannot open or
// writes otherwise in an Origin than origin would.
func checkPublicHost(host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		switch {
		case a.Zone() != "":
			return errors.New("an IPv6 zone is not for browsers")
		case a.Is4In6():
			return fmt.Errorf("write the IPv4 address %s", a.Unmap())
		}
		return nil
	}
	a, err := browserIDNA.ToASCII(host)
	if err != nil {
		return fmt.Errorf("host name: %v", err)
	}
	// After the mapping: 。 and ． are dots too.
	if name := strings.TrimSuffix(a, "."); name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return errors.New("the host name has an empty label")
	}
	return nil
}

// browserIDNA maps a host name as the URL standard has browsers do
// (UTS #46 without its hyphen and STD3 checks: hooks_dev and ab--cd are
// names browsers open).
var browserIDNA = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false),
	idna.CheckHyphens(false), idna.StrictDomainName(false), idna.VerifyDNSLength(false))

// origin is u's scheme and host as a browser writes them in an Origin
// (for a host checkPublicHost accepts): lower case, the host without the
// root's dot, a name in Unicode in its ASCII form, an IPv6 address in its
// shortest form, no port the scheme implies.
// allowedHost writes an [admin] allowed_hosts entry as a browser sends
// the Host header: ASCII (a name in another script in its xn-- form),
// lower case, without a trailing dot. "*.example.com" and "bücher.example"
// were accepted and matched no browser's Host.
func allowedHost(h string) (string, error) {
	name, port := h, ""
	if n, p, err := net.SplitHostPort(h); err == nil {
		name, port = n, p
	}
	if a, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		// As the daemon compares: with a port, the Host header's form
		// ([fd00::2]:8526); without, the bare address it strips to.
		if port != "" {
			return net.JoinHostPort(a.String(), port), nil
		}
		return a.String(), nil
	}
	if a, err := browserIDNA.ToASCII(name); err == nil {
		name = a
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == ':')
	}) {
		return "", errors.New("not a host name")
	}
	if port != "" {
		return net.JoinHostPort(name, port), nil
	}
	return name, nil
}

// frameAncestor checks one of [portal] frame_ancestors and writes it as
// browsers match a CSP source: ASCII, lower case, no default port. They
// ignore a source they cannot read, so a typo (a quote, a name in another
// script, port 99999) let the header through and the platform's page
// could not frame the portal, with no word at the start.
func frameAncestor(o string) (string, error) {
	bad := fmt.Errorf("%q: must be an origin such as \"https://app.example.com\" or \"https://*.example.com\"", o)
	u, err := url.Parse(o)
	if err != nil || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || strings.Contains(o, "#") {
		return "", bad
	}
	if err := checkURLForm(o); err != nil {
		return "", err
	}
	wild := strings.HasPrefix(u.Host, "*.")
	u.Host = strings.TrimPrefix(u.Host, "*.")
	out, _ := url.Parse(origin(u))
	host := out.Hostname()
	if _, err := netip.ParseAddr(host); err != nil && (host == "" || strings.ContainsFunc(host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-')
	})) {
		return "", bad
	}
	if wild {
		out.Host = "*." + out.Host
	}
	return out.String(), nil
}

func origin(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	} else {
		if a, err := browserIDNA.ToASCII(host); err == nil {
			host = a
		}
		host = strings.TrimSuffix(strings.ToLower(host), ".")
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return (&url.URL{Scheme: u.Scheme, Host: host}).String()
}

func checkURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: must be an absolute http:// or https:// URL", v)
	}
	return nil
}

// checkURLForm refuses, on top of checkURL, what a URL written today gets
// wrong but one stored before the check keeps: a port out of range, an IP
// address in a form resolvers disagree on.
func checkURLForm(v string) error {
	if err := checkURL(v); err != nil {
		return err
	}
	if strings.ContainsFunc(v, unicode.IsSpace) {
		// Sent as is, a space splits the request line: every attempt
		// fails with the receiver's 400.
		return fmt.Errorf("%q: must not contain spaces (write a space as %%20)", v)
	}
	if i := strings.IndexFunc(v, Unprintable); i >= 0 || !utf8.ValidString(v) {
		// Percent-encoded, a URL needs none of these; raw, they act on a
		// terminal or a page that shows the URL (a fragment is not even
		// sent).
		return fmt.Errorf("%+q: must not contain control characters or bidirectional marks (percent-encode them)", v)
	}
	u, _ := url.Parse(v)
	if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%q: a port after \":\" or no \":\"", v)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return fmt.Errorf("%q: port must be between 1 and 65535", v)
		}
	}
	if host := u.Hostname(); numericHost(host) {
		if _, err := netip.ParseAddr(strings.TrimSuffix(host, ".")); err != nil {
			return fmt.Errorf("%q: %s is an IP address in a form resolvers disagree on (decimal, octal, hex or short); write it as a dotted quad", v, host)
		}
	}
	return nil
}

// checkDescription refuses what a terminal or a page would act on rather
// than show: control characters (an escape sequence in `hookd endpoints
// show`), bidirectional overrides, invalid UTF-8. A tenant writes it.
func checkDescription(d string) error {
	if len(d) > maxDescription {
		return errors.New("must be at most 1 KiB")
	}
	if !utf8.ValidString(d) {
		return errors.New("must be UTF-8")
	}
	if i := strings.IndexFunc(d, Unprintable); i >= 0 {
		return fmt.Errorf("must not contain control characters (%+q at byte %d)", []rune(d[i:])[0], i)
	}
	return nil
}

// Unprintable reports what a terminal or a page would act on rather than
// show: a control character but tab and newline (a description in a file
// may have lines; a table is laid out with them), a bidirectional
// override, isolate or mark, a line or paragraph separator. The CLI
// escapes these when it prints a table.
func Unprintable(r rune) bool {
	return r != '\t' && r != '\n' && unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x200e || r == 0x200f || r == 0x061c || r == 0x2028 || r == 0x2029
}

// numericHost reports whether host is an IP address or means to be one: its
// last label is a number (no top-level domain is), as in 127.1, 2130706433
// or 0x7f.1, which the C resolver reads as 127.0.0.1 and Go's does not
// resolve at all.
func numericHost(host string) bool {
	if strings.Contains(host, ":") {
		return true // an IPv6 literal
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := strings.ToLower(labels[len(labels)-1])
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// Resolve applies [defaults] to every endpoint, reads secrets (secret_file,
// secret_env) and builds each endpoint's delivery config, checking it.
