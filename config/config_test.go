package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"hookd/delivery"
	"hookd/seal"
)

// signsWith reports whether ep signs with secret: the hmac-sha256 scheme's
// built-in content is the body.
func signsWith(ep *delivery.Endpoint, secret string) bool {
	m := &delivery.Message{ID: "msg_1", Type: "t", Timestamp: time.Unix(1, 0), Body: []byte(`{}`)}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(m.Body)
	want := hex.EncodeToString(mac.Sum(nil))
	for _, h := range ep.Sign(m) {
		if strings.HasSuffix(h.Value, want) {
			return true
		}
	}
	return false
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Resolved) != 1 || c.Resolved[0].Signing.Scheme != "standard" || c.Ingest.Listen != "127.0.0.1:8525" {
		t.Fatalf("unexpected example config: %+v", c.Resolved)
	}
	if got := c.Resolved[0].Policy.Schedule; len(got) != 7 || got[0] != 5*time.Second {
		t.Fatalf("default schedule %v", got)
	}
}

func TestExamplesDirConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.toml")
	for _, f := range files {
		t.Setenv("HOOKD_EXAMPLE_SECRET", "example-secret")
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestConfigErrorsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		name, toml, want string
	}{
		{"unknown key", "[storage]\npath = \"x.db\"\nretension = \"1h\"\n", "t.toml:3: storage.retension: unknown key"},
		{"unknown endpoint key", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nschedul = [\"1s\"]\n", "t.toml:5: endpoints.schedul: unknown key"},
		{"bad duration", "[storage]\nretention = \"3 days\"\n", "t.toml:2: storage.retention: invalid duration"},
		{"syntax", "[storage]\npath = \n", "t.toml:2"},
		{"bad level", "[log]\nlevel = \"loud\"\n", "t.toml:2: log.level"},
		{"second endpoint url", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n[[endpoints]]\nname = \"b\"\nurl = \"ftp://x\"\nevents = [\"*\"]\n", "t.toml:7: endpoints[1].url"},
		{"duplicate name", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n", "endpoints[1].name: duplicate"},
		{"bad signing scheme", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  scheme = \"rsa\"\n  secret = \"x\"\n", "t.toml:5: endpoints[0].signing"},
		{"bad envelope", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nenvelope = { id = \"x\", type = \"x\" }\n", "t.toml:5: endpoints[0].envelope"},
		{"secret file", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  secret_file = \"/nonexistent/s\"\n", "t.toml:6: endpoints[0].signing.secret_file"},
		{"bad secret", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  secret = \"whsec_%%%%TOPSECRET\"\n", "endpoints[0].signing"},
		{"defaults no endpoint can take", "[defaults]\ntimeout = \"0s\"\n", `t.toml:2: defaults.timeout: must be between 1ms and 5m`}, // with no [[endpoints]] to find it
		{"defaults header template", "[defaults]\nheaders = { X-A = \"{nope}\" }\n", `t.toml:2: defaults.headers.X-A: unknown placeholder {nope}`},
		{"empty tenant", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\ntenant = \"\"\n", `t.toml:5: endpoints[0].tenant: is empty (leave the key out for a platform endpoint)`},
		{"bad ordering", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nordering = \"lifo\"\n", `t.toml:5: endpoints[0].ordering: "lifo": must be "none" or "fifo"`},
		{"bad filter", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nfilter = 'data.outcome = \"completed\"'\n", "t.toml:5: endpoints[0].filter: unexpected token Operator(\"=\") (column 14)"},
		{"unknown filter name", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nfilter = 'dta.x > 1'\n", "t.toml:5: endpoints[0].filter: unknown name dta (column 1)"},
		{"filter in defaults", "[defaults]\nfilter = 'true'\n", "t.toml:2: defaults.filter: a filter belongs to [[endpoints]]"},
		{"bad header name", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nheaders = { \"X Bad\" = \"v\" }\n", "endpoints[0].headers.X Bad: the name must be"},
		{"header set by signing", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nheaders = { \"Webhook-Signature\" = \"v\" }\n  [endpoints.signing]\n  secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", "endpoints[0].headers.Webhook-Signature: the endpoint's signing sets"},
		{"header in defaults", "[defaults]\nheaders = { Host = \"x\" }\n[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n[[endpoints]]\nname = \"b\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n", "invalid configuration: t.toml:2: defaults.headers.Host: hookd sets this header itself"}, // once, not per endpoint
		{"bad value", "[defaults]\ntimeout = 5s\n", "t.toml:2: defaults.timeout: expected"},
		{"header without its bracket", "[defaults]\ntimeout = \"5s\"\n[[endpoints]\nname = \"a\"\n", "invalid configuration: t.toml:3: expected end of table array name"},
		{"control in description", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\ndescription = \"\\u001b[31mred\"\n", "t.toml:5: endpoints[0].description: must not contain control characters"},
		{"signature header hookd sets", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  scheme = \"hmac-sha256\"\n  secret = \"k\"\n  header = \"Host\"\n", `endpoints[0].signing: header "Host": hookd sets this header itself`},
		{"signature prefix with CRLF", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  scheme = \"hmac-sha256\"\n  secret = \"k\"\n  header = \"X-Sig\"\n  prefix = \"a\\r\\nX-B: c\"\n", "control characters"},
		{"timestamp header twice", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  scheme = \"hmac-sha256\"\n  secret = \"k\"\n  header = \"X-Sig\"\n  timestamp_header = \"x-sig\"\n", "signing sets"},
		{"portal under a path", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"https://example.com/webhooks\"\n", "t.toml:3: portal.public_url"},
		{"portal with user info", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"https://u:pw@example.com\"\n", "t.toml:3: portal.public_url: \"https://u:pw@example.com\": must not hold a user name or password"},
		{"portal zone", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"http://[fe80::1%25eth0]:8080\"\n", "t.toml:3: portal.public_url: \"http://[fe80::1%25eth0]:8080\": an IPv6 zone is not for browsers"},
		{"portal mapped", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"https://[::ffff:127.0.0.1]\"\n", "write the IPv4 address 127.0.0.1"},
		{"portal root", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"https://.\"\n", "the host name has an empty label"},
		{"portal wide dots", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"https://hooks。。example.com\"\n", "the host name has an empty label"},
		{"portal dots", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"https://hooks.example.com..\"\n", "the host name has an empty label"},
		{"portal fragment", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"https://hooks.example.com#\"\n", "without path, query or fragment"},
		{"portal port", "[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \"https://example.com:99999\"\n", "t.toml:3: portal.public_url: \"https://example.com:99999\": port must be between 1 and 65535"},
		{"secret without signing", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  scheme = \"none\"\n  secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", `t.toml:7: endpoints[0].signing.secret: is set but scheme is "none"`},
		{"secret under a none default", "[defaults.signing]\nscheme = \"none\"\n[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", `endpoints[0].signing.secret: is set but scheme is "none"`},
		{"hmac key under standard", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n  header = \"X-Sig\"\n", `t.toml:7: endpoints[0].signing.header: is a setting of scheme "hmac-sha256", not of "standard"`},
		{"scheme typo", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  scheme = \"hmac-sha265\"\n  secret = \"k\"\n  header = \"X-Sig\"\n", "t.toml:5: endpoints[0].signing: "},
		{"defaults header with notify", "[defaults]\nheaders = { Host = \"x\" }\n[notify]\nurl = \"http://127.0.0.1/n\"\n[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n", "defaults.headers.Host: hookd sets this header itself"},
		{"bracket in a multi-line string", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\ndescription = \"\"\"\n[see the docs]\n\"\"\"\ntimeout = \"forever\"\n", "t.toml:8: endpoints.timeout: invalid duration"},
		// BurntSushi/toml drops a non-table value for a map without an error: these set no header.
		{"headers as an array", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nheaders = [\"X-A: 1\"]\n", "t.toml:5: endpoints[0].headers: must be a table, not an array"},
		{"headers as a string", "[defaults]\nheaders = \"X-A: 1\"\n", "t.toml:2: defaults.headers: must be a table, not a string"},
		{"header value a number", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nheaders = { X-A = 1 }\n", "t.toml:5: endpoints[0].headers.X-A: must be a string, not an integer"},
		{"events a string", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = \"*\"\n", "t.toml:4: endpoints[0].events: must be an array, not a string"},
		{"event pattern a number", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"a\", 2]\n", "t.toml:4: endpoints[0].events[1]: must be a string, not an integer"},
		{"integer as a string", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nmax_in_flight = \"4\"\n", "t.toml:5: endpoints[0].max_in_flight: must be an integer, not a string"},
		{"boolean as a string", "[admin]\npprof = \"yes\"\n", "t.toml:2: admin.pprof: must be true or false, not a string"},
		{"signing a string", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nsigning = \"standard\"\n", "t.toml:5: endpoints[0].signing: must be a table, not a string"},
		{"section a value", "storage = \"x.db\"\n", "t.toml:1: storage: must be a table, not a string"},
		{"size a boolean", "[ingest]\nmax_event_bytes = true\n", `t.toml:2: ingest.max_event_bytes: size must be an integer or a string like "256KiB", not a boolean`},
		{"empty token", "[ingest]\ntoken = \" \"\n", "t.toml:2: ingest.token: is empty"},
		{"empty admin token", "[admin]\ntoken = \"\"\n", "t.toml:2: admin.token: is empty"},
		{"listen port out of range", "[ingest]\nlisten = \"127.0.0.1:99999\"\n", "t.toml:2: ingest.listen: \"127.0.0.1:99999\": the port must be a number from 0 to 65535"},
		{"listen port not a number", "[admin]\nlisten = \"127.0.0.1:8526x\"\n", "t.toml:2: admin.listen: \"127.0.0.1:8526x\": the port must be a number"},
		{"undeliverable retention shorter", "[storage]\nretention = \"3m\"\nundeliverable_retention = \"1m\"\ndedup_window = \"1m\"\n", "t.toml:3: storage.undeliverable_retention: must not be shorter than storage.retention (3m)"},
		{"empty token file", "[admin]\ntoken_file = \"/dev/null\"\n", "t.toml:2: admin.token_file: token file /dev/null is empty"},
		{"token with spaces at the ends", "[admin]\ntoken = \" padded \"\n", "t.toml:2: admin.token: has spaces at either end"},
		{"token with a control character", "[admin]\ntoken = \"abc\\u0001def\"\n", "t.toml:2: admin.token: must not contain control characters or line breaks"},
		{"token of two lines", "[ingest]\ntoken = \"\"\"\nabc\ndef\"\"\"\n", "t.toml:2: ingest.token: must not contain control characters"},
		// Read with the file, as the start reads it: check-config passed both.
		{"portal key file missing", "[portal]\nkey_file = \"/nonexistent/portal.key\"\n", "t.toml:2: portal.key_file: open /nonexistent/portal.key: no such file or directory"},
		{"portal key file short", "[portal]\nkey_file = \"/dev/null\"\n", "t.toml:2: portal.key_file: /dev/null must hold at least 32 bytes"},
		{"secret without quotes", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  secret = TOPSECRETletters\n", "t.toml:6: endpoints[0].signing.secret: not a valid value (not shown"},
		{"previous secret without quotes", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  previous_secrets = [\"whsec_x\", TOPSECRET]\n", "t.toml:6: endpoints[0].signing.previous_secrets: not a valid value"},
		{"token a big number", "[ingest]\ntoken = 12345678901234567890TOPSECRET\n", "t.toml:2: ingest.token: not a valid value"},
		{"key in upper case", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nURL = \"http://127.0.0.1/two\"\nevents = [\"*\"]\n", "t.toml:4: endpoints[0].URL: unknown key (keys are lower case: url)"},
		{"section in upper case", "[Storage]\npath = \"x.db\"\n", "t.toml:1: Storage: unknown key (keys are lower case: storage)"},
		{"days past what a duration holds", "[storage]\nretention = \"213504d\"\n", `t.toml:2: storage.retention: invalid duration "213504d"`},
		{"size past what an integer holds", "[storage]\nmin_free_bytes = \"8589934592GiB\"\n", `t.toml:2: storage.min_free_bytes: invalid size "8589934592GiB"`},
		{"jitter not a number", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\njitter = nan\n", "t.toml:5: endpoints[0].jitter: must be between 0 and 1"},
		{"rate limit infinite", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nrate_limit = inf\n", "t.toml:5: endpoints[0].rate_limit: must be a number, 0 or more"},
		{"space in the URL", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/a b\"\nevents = [\"*\"]\n", "t.toml:3: endpoints[0].url: \"http://127.0.0.1/a b\": must not contain spaces"},
		{"costly matches", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nfilter = 'data.s matches \".{300}c\"'\n", "t.toml:5: endpoints[0].filter: matches patterns compile to 303 regexp instructions"},
		{"reduce", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nfilter = 'reduce(data.a, #acc + #acc, \"ab\") != \"\"'\n", "t.toml:5: endpoints[0].filter: reduce is not available in filters (column 1)"},
		{"escape in the URL", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/a#\\u001b[31m\"\nevents = [\"*\"]\n", `t.toml:3: endpoints[0].url: "http://127.0.0.1/a#\x1b[31m": must not contain control characters`},
		{"bidi mark in the URL", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\u202e\"\nevents = [\"*\"]\n", `t.toml:3: endpoints[0].url: "http://127.0.0.1/\u202e": must not contain control characters`},
		{"signature in Content-Type", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  scheme = \"hmac-sha256\"\n  secret = \"k\"\n  header = \"Content-Type\"\n", `endpoints[0].signing: header "Content-Type": hookd sets this header itself`},
		{"failing_after without a URL", "[notify]\nfailing_after = 0\n", "t.toml:2: notify.failing_after: must be at least 1"},
		{"notify signing without a URL", "[notify.signing]\nscheme = \"bogus\"\n", "t.toml:1: notify.signing: is set but notify.url is not"},
		{"date in static", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nenvelope = { data = \"data\", static = { t = 07:32:00 } }\n", "t.toml:5: endpoints[0].envelope: envelope.static.t: a TOML date or time; write it as a string"},
		{"secret in an inline table", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nsigning = { scheme = \"standard\", secret = whsecTOPSECRET }\n", "t.toml:5: endpoints[0].signing: not a valid value (not shown"},
		{"secret in a multi-line array", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  previous_secrets = [\n  \"a\",\n  TOPSECRET,\n]\n", "t.toml:8"},
		{"a header's value unquoted", "[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\nheaders = { X-Api-Key = TOPSECRET }\n", "t.toml:5: endpoints[0].headers"},
		{"token and token_file", "[ingest]\ntoken = \"t\"\ntoken_file = \"/dev/null\"\n", "t.toml:3: ingest.token_file: set token or token_file, not both"},
		{"empty token in an inline table", "ingest = { token = \"\" }\n", "ingest.token: is empty"},
		{"duration as a number", "[defaults]\ntimeout = 0\n", `t.toml:2: defaults.timeout: must be a string such as "5s", not an integer`},
		{"duration as a time", "[storage]\nretention = 00:00:05\n", `t.toml:2: storage.retention: must be a string such as "5s", not a date-time`},
		{"decimal address", "[[endpoints]]\nname = \"a\"\nurl = \"http://2130706433/\"\nevents = [\"*\"]\n", "t.toml:3: endpoints[0].url"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		p := filepath.Join(dir, "t.toml")
		os.WriteFile(p, []byte(c.toml), 0o600)
		_, err := Load(p)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: not ErrConfig: %v", c.name, err)
		}
		msg := strings.ReplaceAll(err.Error(), p, "t.toml")
		if n := strings.Count(msg, c.want); n != 1 {
			t.Errorf("%s:\n got %s\nwant %s (once, got %d)", c.name, msg, c.want, n)
		}
		if strings.Contains(msg, "TOPSECRET") {
			t.Errorf("%s: error leaks the secret: %s", c.name, msg)
		}
	}
}

func TestDefaultsInherited(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[defaults]
timeout = "2s"
schedule = ["1s"]
stop_on_4xx = true
headers = { "X-A" = "a" }
  [defaults.signing]
  scheme = "hmac-sha256"
  secret = "shared"
[[endpoints]]
name = "inherits"
url = "http://127.0.0.1/"
events = ["*"]
[[endpoints]]
name = "overrides"
url = "http://127.0.0.1/"
events = ["*"]
schedule = []
headers = { "X-B" = "b" }
  [endpoints.signing]
  scheme = "none"
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	a, b := c.Resolved[0], c.Resolved[1]
	if a.Timeout != 2*time.Second || len(a.Policy.Schedule) != 1 || !a.Policy.StopOn4xx || a.Signing.Scheme != "hmac-sha256" || !signsWith(a, "shared") || a.Headers["X-A"] != "a" {
		t.Fatalf("inherits: %+v", a)
	}
	if len(b.Policy.Schedule) != 0 || b.Signing.Scheme != "none" || b.Headers["X-A"] != "a" || b.Headers["X-B"] != "b" {
		t.Fatalf("overrides: %+v", b)
	}
}

func TestSecretSources(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s"), []byte("from-file\n"), 0o600)
	t.Setenv("HOOKD_T_SECRET", "from-env")
	c, err := Parse("t.toml", []byte(`
[[endpoints]]
name = "f"
url = "http://127.0.0.1/"
events = ["*"]
  [endpoints.signing]
  scheme = "hmac-sha256"
  secret_file = "`+filepath.Join(dir, "s")+`"
[[endpoints]]
name = "e"
url = "http://127.0.0.1/"
events = ["*"]
  [endpoints.signing]
  scheme = "hmac-sha256"
  secret_env = "HOOKD_T_SECRET"
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	if !signsWith(c.Resolved[0], "from-file") || !signsWith(c.Resolved[1], "from-env") {
		t.Fatal("an endpoint does not sign with the secret its secret_file or secret_env holds")
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "4KiB": 4096, "1MiB": 1 << 20, "2 MiB": 2 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	if _, err := parseSize("4kb"); err == nil {
		t.Error("4kb accepted")
	}
}

// Every key of the file is live or restart-only, and the table names no
// key that does not exist.
func TestEveryKeyIsClassed(t *testing.T) {
	keys := Keys()
	for _, k := range keys {
		if ClassOf(k) == 0 {
			t.Errorf("%s: neither live nor restart-only (config/keys.go reloadClass)", k)
		}
	}
	for k := range reloadClass {
		if !slices.Contains(keys, k) {
			t.Errorf("reloadClass names %s, which is not a key", k)
		}
	}
}

func TestCheckReloadNamesTheKey(t *testing.T) {
	a, _ := Parse("t.toml", []byte("[ingest]\nlisten = \"127.0.0.1:1\"\n"))
	b, _ := Parse("t.toml", []byte("[ingest]\nlisten = \"127.0.0.1:2\"\n"))
	err := CheckReload(a, b)
	if !errors.Is(err, ErrNotReloadable) || !strings.Contains(err.Error(), "t.toml:2: ingest.listen") {
		t.Fatalf("%v", err)
	}
	c, _ := Parse("t.toml", []byte("[ingest]\nlisten = \"127.0.0.1:1\"\ntoken = \"x\"\n[log]\nformat = \"console\"\n"))
	if err := CheckReload(a, c); err != nil {
		t.Fatalf("live keys refused: %v", err)
	}
}

// ordering comes from [defaults] like any delivery setting, but never to
// the [notify] target: an alert must not wait behind another. Nor does its
// disable_after, nor does a 410 disable it: alerts do not stop for good.
// A filter is compiled once, with the endpoint.
func TestOrderingAndFilter(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[defaults]
ordering = "fifo"
disable_after = "1h"
[notify]
url = "http://127.0.0.1/alerts"
[[endpoints]]
name = "crm"
url = "http://127.0.0.1/crm"
events = ["conversation.*"]
[[endpoints]]
name = "slack"
url = "http://127.0.0.1/slack"
events = ["conversation.ended"]
ordering = "none"
filter = 'data.outcome == "completed"'
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	crm, slack := c.Resolved[0], c.Resolved[1]
	if !crm.Ordered() || crm.Filtered() || slack.Ordered() || !slack.Filtered() || c.NotifyTo.Ordered() {
		t.Fatalf("crm ordered %v filtered %v; slack ordered %v filtered %v; notify ordered %v",
			crm.Ordered(), crm.Filtered(), slack.Ordered(), slack.Filtered(), c.NotifyTo.Ordered())
	}
	if n := c.NotifyTo; n.DisableAfter != 0 || !n.Policy.KeepOn410 || crm.DisableAfter != time.Hour || crm.Policy.KeepOn410 {
		t.Fatalf("notify: disable_after %v, keep on 410 %v; crm: %v, %v", n.DisableAfter, n.Policy.KeepOn410, crm.DisableAfter, crm.Policy.KeepOn410)
	}
}

// A managed endpoint stored before the matches rules, or before reduce
// was refused, builds (a start does not stop for it); a create or patch
// that writes such a filter is refused. A stored filter with reduce never
// runs: it accepts nothing.
func TestCostlyMatchesRefusedWhereWrittenOnly(t *testing.T) {
	c, err := Parse("t.toml", []byte("\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	for _, filter := range []string{`data.s matches ".{300}c"`, `len(reduce(data.a, #acc + #acc, "ab")) > 0`} {
		var s APISettings
		s.Name, s.URL, s.Events, s.Filter = "p", "http://203.0.113.9/", []string{"*"}, filter
		ep, err := c.BuildManaged("m:p", &s, SecretSet{Secret: GenerateSecret("standard")}, time.Now())
		if err != nil {
			t.Fatalf("a stored endpoint with %s does not build: %v", filter, err)
		}
		if err := CheckNewManaged(&s, ep, nil); err == nil || !strings.Contains(err.Error(), "filter") {
			t.Fatalf("a create with %s: %v", filter, err)
		}
		if err := CheckNewManaged(&s, ep, func(f string) bool { return f == "url" }); err != nil {
			t.Fatalf("a patch of the URL alone: %v", err)
		}
	}
}

// [defaults.signing] may hold what some endpoints' schemes use and others
// ignore: hmac-sha256 tuning next to an unsigned endpoint loads.
func TestDefaultsSigningMayServeSeveralSchemes(t *testing.T) {
	_, err := parseResolved(`
[defaults.signing]
header = "X-Sig"
[notify]
url = "http://127.0.0.1/n"
[[endpoints]]
name = "plain"
url = "http://127.0.0.1/"
events = ["*"]
[[endpoints]]
name = "mac"
url = "http://127.0.0.1/"
events = ["*"]
  [endpoints.signing]
  scheme = "hmac-sha256"
  secret = "k"
`)
	if err != nil {
		t.Fatal(err)
	}
}

// A deny list's IPv4-mapped prefix is kept unmapped, the form addresses are
// compared in: it never matched (found by black-box testing).
func TestMappedDenyPrefix(t *testing.T) {
	c, err := Parse("t.toml", []byte("[tenants]\ndeny_networks = [\"::ffff:127.0.0.0/104\", \"fc00::/7\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Tenants.Deny); got != "[127.0.0.0/8 fc00::/7]" {
		t.Fatalf("deny list %s", got)
	}
	if !delivery.Denied(netip.MustParseAddr("::ffff:127.0.0.1"), c.Tenants.Deny) || !delivery.Denied(netip.MustParseAddr("127.0.0.1"), c.Tenants.Deny) {
		t.Fatal("127.0.0.1 not denied")
	}
}

// The CLI's reading of a file: [admin] only, checked as Parse checks it,
// a wildcard listen reached on loopback, and nothing quoted from a line
// that does not parse.
func TestAdminAccess(t *testing.T) {
	for in, want := range map[string]string{
		"[admin]\nlisten = \"0.0.0.0:9999\"\ntoken = \"t\"\n[log]\nlevel = 5\n": "127.0.0.1:9999 t",
		"[admin]\nlisten = \"[::]:9999\"\n":                                     "[::1]:9999 ",
		"[admin]\nlisten = \":9999\"\n":                                         "127.0.0.1:9999 ",
		"[admin]\nlisten = \"unix:/run/h.sock\"\n":                              "unix:/run/h.sock ",
		"[ingest]\nlisten = \"127.0.0.1:1\"\n":                                  "127.0.0.1:8526 ",
		"[admin]\nlistne = \"x\"\n":                                             "t.toml:2: admin.listne: unknown key",
		"[admin]\ntoken = \"\"\n":                                               "t.toml:2: admin.token: is empty",
		"[admin]\ntoken = 5\n":                                                  "t.toml:2: admin.token: must be a string, not an integer",
		"[admin]\ntoken = \"t\"\ntoken_file = \"/dev/null\"\n":                  "t.toml:3: admin.token_file: set token or token_file, not both",
		"[admin]\ntoken = TOPSECRET\n":                                          "t.toml:2: admin.token: not a valid value (not shown",
		"[[endpoints]]\nheaders = { X-Key = TOPSECRET }\n":                      "t.toml:2",
	} {
		listen, token, err := AdminAccess("t.toml", []byte(in), true)
		got := listen + " " + token
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, want) || strings.Contains(got, "TOPSECRET") {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// public_url is kept as browsers write an origin: the session cookie's
// Secure and the minted links follow its scheme, whatever its case.
func TestPublicURLIsNormalized(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://Hooks.Example.com/":       "https://hooks.example.com",
		"https://hooks.example.com.:443":   "https://hooks.example.com",
		"http://Bücher.example:8080":       "http://xn--bcher-kva.example:8080",
		"http://[::1]:80":                  "http://[::1]",
		"https://[2001:DB8:0::1]:8443":     "https://[2001:db8::1]:8443",
		"https://Hooks.Example.COM。:443":   "https://hooks.example.com",
		"https://hooks_dev.ab--cd.example": "https://hooks_dev.ab--cd.example",
	} {
		c, err := Parse("t.toml", []byte("[portal]\nlisten = \"127.0.0.1:8527\"\npublic_url = \""+in+"\"\n"))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if c.Portal.PublicURL != want {
			t.Errorf("public_url %q is kept as %q, want %q", in, c.Portal.PublicURL, want)
		}
	}
}

// frame_ancestors are written as browsers match a CSP source, and what
// they would ignore is refused at load: a name in another script went
// into the header raw, port 99999 and a stray quote were accepted
// (black-box testing).
func TestFrameAncestors(t *testing.T) {
	for in, want := range map[string]string{
		"https://app.example.com":       "https://app.example.com",
		"https://*.example.com":         "https://*.example.com",
		"https://bücher.example.com":    "https://xn--bcher-kva.example.com",
		"https://APP.example.com:443/":  "https://app.example.com",
		"http://[::1]:8080":             "http://[::1]:8080",
		"https://app.example.com:99999": "",
		"https://app.example.com'":      "",
		"app.example.com":               "",
		"https://u:p@app.example.com":   "",
		"https://app.example.com/x":     "",
	} {
		got, err := frameAncestor(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
}

// Key, token and secret files are files of at most 64 KiB: a FIFO held a
// reload (and the stop behind it) until something wrote to it, and
// /dev/zero was read until memory ran out (black-box testing).
func TestSmallFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A writer that holds it open and writes nothing: a read waited for
	// data even without O_NONBLOCK's wait for a writer.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	twoLines := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(twoLines, []byte("abc\ndef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for cfg, want := range map[string]string{
		"[admin]\ntoken_file = \"" + twoLines + "\"\n":  "admin.token_file: token file " + twoLines + ": must not contain control characters",
		"[admin]\ntoken_file = \"" + fifo + "\"\n":      "admin.token_file: read token file " + fifo + ": " + fifo + " is a FIFO or a socket, not a file",
		"[admin]\ntoken_file = \"/dev/zero\"\n":         "admin.token_file: read token file /dev/zero: /dev/zero is larger than 64 KiB",
		"[storage]\nsecrets_key_file = \"/dev/zero\"\n": "storage.secrets_key_file: /dev/zero is larger than 64 KiB",
		"[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevents = [\"*\"]\n  [endpoints.signing]\n  secret_file = \"" + fifo + "\"\n": "is a FIFO or a socket, not a file",
	} {
		_, err := parseResolved(cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", cfg, err, want)
		}
	}
}

// A reload refuses a key file that now holds another key: the secrets
// key's change was taken, and the next start refused the database sealed
// with the old one (black-box testing).
func TestReloadRefusesAnotherKeyInTheSameFile(t *testing.T) {
	dir := t.TempDir()
	sealKey, portalKey := filepath.Join(dir, "secrets.key"), filepath.Join(dir, "portal.key")
	write := func(path, v string) {
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(sealKey, seal.NewKey())
	write(portalKey, strings.Repeat("a", 40))
	text := fmt.Sprintf("[storage]\nsecrets_key_file = %q\n[portal]\nkey_file = %q\n", sealKey, portalKey)
	load := func() *Config {
		c, err := parseResolved(text)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := load()
	if err := CheckReload(old, load()); err != nil {
		t.Fatalf("the same keys: %v", err)
	}
	for path, v := range map[string]string{sealKey: seal.NewKey(), portalKey: strings.Repeat("b", 40)} {
		was, _ := os.ReadFile(path)
		write(path, v)
		err := CheckReload(old, load())
		if !errors.Is(err, ErrNotReloadable) || !strings.Contains(err.Error(), "holds another key") {
			t.Errorf("%s changed: %v", path, err)
		}
		write(path, string(was))
	}
}

// A tenant endpoint takes the caps over what it inherits, "whatever
// [defaults] says": a [defaults] change made every stored tenant endpoint
// fail to build, and the start with them (black-box testing). Set on the
// endpoint itself, a value over a cap is refused.
func TestTenantCapsOverDefaults(t *testing.T) {
	base := "[defaults]\ntimeout = \"60s\"\nmax_in_flight = 64\nmax_response_bytes = \"1MiB\"\n[[endpoints]]\nname = \"a\"\ntenant = \"t1\"\nurl = \"https://example.com/\"\nevents = [\"*\"]\n"
	c, err := parseResolved(base)
	if err != nil {
		t.Fatal(err)
	}
	if ep := c.Resolved[0]; ep.Timeout != TenantMaxTimeout || ep.MaxInFlight != TenantMaxInFlight || ep.MaxResponseBytes != TenantMaxResponseBytes {
		t.Fatalf("inherited over the caps: timeout %v, max_in_flight %d, max_response_bytes %d", ep.Timeout, ep.MaxInFlight, ep.MaxResponseBytes)
	}
	_, err = parseResolved(base + "timeout = \"60s\"\n")
	if err == nil || !strings.Contains(err.Error(), "endpoints[0].timeout: a tenant endpoint's timeout is at most 30s") {
		t.Fatalf("set over the cap: %v", err)
	}
}

// Unset, undeliverable_retention follows a retention over its default
// (it was a config error naming a key nobody set); listen ports are read
// as the start reads them (leading zeros, service names). Both were
// refused by today's stricter checks (review).
func TestLenientWhereTheStartIs(t *testing.T) {
	c, err := Parse("t.toml", []byte("[storage]\nretention = \"800h\"\ndedup_window = \"1h\"\n[ingest]\nlisten = \"127.0.0.1:019463\"\n[admin]\nlisten = \"127.0.0.1:https\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.UndeliverableRetention != Duration(800*time.Hour) {
		t.Fatalf("undeliverable_retention %v", c.Storage.UndeliverableRetention)
	}
}

// allowed_hosts are written as browsers send Host: "*.wild.example",
// "bücher.example" and "dot.example." were accepted and matched no browser
// (black-box testing).
func TestAllowedHosts(t *testing.T) {
	for in, want := range map[string]string{
		"hookd.internal":      "hookd.internal",
		"Hookd.Internal:8526": "hookd.internal:8526",
		"bücher.example":      "xn--bcher-kva.example",
		"dot.example.":        "dot.example",
		"10.0.0.5":            "10.0.0.5",
		"[::1]:8526":          "[::1]:8526",
		"[fd00::2]":           "fd00::2",
		"*.wild.example":      "",
		"a b":                 "",
	} {
		got, err := allowedHost(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
}

// parseResolved is Load on text in memory: parsed, then resolved.
func parseResolved(text string) (*Config, error) {
	c, err := Parse("t.toml", []byte(text))
	if err == nil {
		err = c.Resolve()
	}
	return c, err
}
