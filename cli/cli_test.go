package cli

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"hookd/seal"
)

func TestCheckConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run("check-config", []string{"-config", "../config.example.toml"}, &out, &errb); code != 0 {
		t.Fatalf("example: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"OK", "endpoint example", "signing  standard", "retries  [5s 5m 30m 2h 5h 10h 10h]", "ordering none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "whsec_") {
		t.Error("summary shows a secret")
	}

	p := filepath.Join(t.TempDir(), "broken.toml")
	os.WriteFile(p, []byte("[delivery]\nworkers = 0\n"), 0o600)
	out.Reset()
	errb.Reset()
	if code := Run("check-config", []string{"-config", p}, &out, &errb); code != 1 {
		t.Fatalf("broken: exit %d", code)
	}
	if !strings.Contains(errb.String(), "broken.toml:2: delivery.workers") {
		t.Fatalf("error %q does not name key and line", errb.String())
	}
	// A file named without -config is not checked: a usage error, not an OK for the default.
	if code := Run("check-config", []string{"-config", "../config.example.toml", p}, &out, &errb); code != 2 {
		t.Fatalf("an extra argument: exit %d", code)
	}
}

func TestGenSecret(t *testing.T) {
	var out bytes.Buffer
	Run("gen-secret", nil, &out, &out)
	s := strings.TrimSpace(out.String())
	if !strings.HasPrefix(s, "whsec_") || len(s) != len("whsec_")+44 {
		t.Fatalf("secret %q", s)
	}
}

// The key gen-secret -key prints is one LoadKey accepts, as the operator
// saves it (with the newline).
func TestGenSecretKey(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run("gen-secret", []string{"-key"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s := strings.TrimSpace(out.String()); len(s) != 44 || strings.HasPrefix(s, "whsec_") {
		t.Fatalf("key %q", s)
	}
	p := filepath.Join(t.TempDir(), "secrets.key")
	os.WriteFile(p, out.Bytes(), 0o600)
	if _, err := seal.LoadKey(p); err != nil {
		t.Fatal(err)
	}
	if code := Run("gen-secret", []string{"-nope"}, &out, &errb); code != exitUsage {
		t.Fatalf("unknown flag: exit %d", code)
	}
}

func TestSubcommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		cmd  string
		rest []string
	}{
		{nil, "run", nil},
		{[]string{"-config", "f"}, "run", []string{"-config", "f"}},
		{[]string{"run", "-h"}, "run", []string{"-h"}},
		{[]string{"-h"}, "help", []string{}},
		{[]string{"--help"}, "help", []string{}},
		{[]string{"-help"}, "help", []string{}},
		{[]string{"help"}, "help", []string{}},
		{[]string{"events", "show", "x"}, "events", []string{"show", "x"}},
	} {
		cmd, rest := Subcommand(c.args)
		if cmd != c.cmd || !slices.Equal(rest, c.rest) {
			t.Errorf("Subcommand(%q) = %q %q, want %q %q", c.args, cmd, rest, c.cmd, c.rest)
		}
	}
}

func TestHelpAndUnknown(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run("help", nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "undeliverable list") {
		t.Fatalf("help: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := Run("frobnicate", nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown: exit %d\n%s", code, errb.String())
	}
}

func TestAdminFromConfig(t *testing.T) {
	srv := fakeAdmin(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("t\n"), 0o600)
	cfg := filepath.Join(dir, "hookd.toml")
	// The endpoint's secret file does not exist, and the rest of the file
	// is invalid (a bad edit a reload refused): the CLI needs only [admin].
	os.WriteFile(cfg, []byte("[admin]\nlisten = \""+strings.TrimPrefix(srv.URL, "http://")+"\"\ntoken_file = \""+tokenFile+"\"\n\n"+
		"[log]\nlevel = \"verbose\"\n"+
		"[[endpoints]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/\"\nevents = [\"*\"]\n[endpoints.signing]\nsecret_file = \"/nonexistent\"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := Run("endpoints", []string{"-config", cfg}, &out, &errb); code != 0 || !strings.Contains(out.String(), "crm") {
		t.Fatalf("endpoints -config: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := Run("endpoints", []string{"-config", filepath.Join(dir, "missing.toml")}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-admin URL") {
		t.Fatalf("no config, no -admin: exit %d %s", code, errb.String())
	}
}

func TestUnreachable(t *testing.T) {
	srv := fakeAdmin(t)
	srv.Close()
	var out, errb bytes.Buffer
	if code := Run("endpoints", []string{"-admin", srv.URL}, &out, &errb); code != 3 || !strings.Contains(errb.String(), "is hookd running") {
		t.Fatalf("exit %d %s", code, errb.String())
	}
	// An address no request can go to is a usage error, not a daemon out of reach.
	errb.Reset()
	if code := Run("endpoints", []string{"-admin", "://bad"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "want host:port") {
		t.Fatalf("-admin ://bad: exit %d %s", code, errb.String())
	}
}

// Tables show what a tenant or a receiver wrote with its control
// characters escaped: an escape sequence must not reach the terminal.
func TestTablesEscapeControlCharacters(t *testing.T) {
	var out bytes.Buffer
	f := &adminFlags{}
	f.print(&out, nil, func(w io.Writer) {
		io.WriteString(w, "NAME\tDESCRIPTION\n")
		io.WriteString(w, "ep\t\x1b]0;pwned\x07\x1b[31mRED \u202eevil \xff ok é\n")
	})
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\u202e\xff") || !strings.Contains(got, `\x1b]0;pwned\a\x1b[31mRED \u202eevil \xff ok é`) {
		t.Fatalf("%q", got)
	}
}

// -since and -until of undeliverable redeliver take a duration ago, as
// hookd deliveries does, or an RFC 3339 time.
func TestParseTimeTakesADurationAgo(t *testing.T) {
	before := time.Now()
	got, err := parseTime("2h")
	after := time.Now()
	if err != nil || got.Before(before.Add(-2*time.Hour)) || got.After(after.Add(-2*time.Hour)) {
		t.Fatalf("2h: %v %v", got, err)
	}
	if got, err := parseTime("2026-11-25T08:00:00Z"); err != nil || !got.Equal(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("RFC 3339: %v %v", got, err)
	}
	if _, err := parseTime("yesterday"); err == nil {
		t.Fatal("yesterday accepted")
	}
}

// The flag package keeps the last of a flag given twice; the CLI refuses
// it, but for -set, a list.
func TestRepeatedFlagIsRefused(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var sets setFlags
	fs.Var(&sets, "set", "")
	fs.Bool("json", false, "")
	fs.String("tenant", "", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-set", "a=1", "-set", "b=2", "pos"}, ""},
		{[]string{"-tenant", "-json", "-json"}, ""}, // -json is -tenant's value the first time
		{[]string{"-json", "name", "-json=false"}, "json"},
		{[]string{"-tenant=a", "name", "--tenant", "b"}, "tenant"},
		{[]string{"-tenant", "a", "--", "-tenant", "b"}, ""},
		{[]string{"-unknown", "-unknown"}, ""}, // the flag package names it
	} {
		if got := repeated(fs, c.args); got != c.want {
			t.Errorf("%q: %q, want %q", c.args, got, c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := Run("endpoints", []string{"-admin", "http://127.0.0.1:1", "-tenant", "a", "-tenant", "b"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-tenant is given twice") {
		t.Fatalf("exit %d %s", code, errb.String())
	}
	// After --, everything is an argument, not a flag to take the last of.
	f := newAdminFlags("x", io.Discard)
	tenant := f.fs.String("tenant", "", "")
	if pos, ok := f.parse([]string{"-tenant", "a", "p1", "--", "p2", "-tenant", "b"}); !ok || *tenant != "a" || strings.Join(pos, " ") != "p1 p2 -tenant b" {
		t.Fatalf("--: %v %q %q", ok, *tenant, pos)
	}
}

// A -set key that a named flag, or another -set, also sets is refused:
// the last would win unseen.
func TestSetClashIsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "-url", "http://x/", "-tenant", "a", "-set", "tenant=b"}, "-set tenant: tenant is set by its own flag"},
		{[]string{"create", "-url", "http://x/", "-secret", "s", "-set", `signing={"scheme":"none"}`}, "-set signing: signing.secret is set by its own flag"},
		{[]string{"create", "-url", "http://x/", "-set", "timeout=1s", "-set", "timeout=2s"}, "-set timeout: given twice"},
		{[]string{"update", "-disabled", "true", "-set", "disabled=false", "ep1"}, "-set disabled: disabled is set by its own flag"},
	} {
		var out, errb bytes.Buffer
		if code := Run("endpoints", append(c.args, "-admin", "http://127.0.0.1:1"), &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d %s, want %q", c.args, code, errb.String(), c.want)
		}
	}
}

// The table shows an event's data on one line, cut where it would fill the
// screen, and never in the middle of a character.
func TestShortJSON(t *testing.T) {
	if got := shortJSON([]byte("{\n  \"a\": 1\n}")); got != `{"a":1}` {
		t.Fatalf("compact: %q", got)
	}
	long := []byte(`"` + strings.Repeat("é", 150) + `"`) // 302 bytes
	got := shortJSON(long)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "… (302 bytes; -json shows all)") || len(got) > shownJSON+len("… (302 bytes; -json shows all)") {
		t.Fatalf("cut: %q", got)
	}
}
