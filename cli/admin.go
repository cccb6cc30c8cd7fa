package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"hookd/client"
	"hookd/config"
)

// adminFlags are the flags every admin subcommand takes; a command adds
// its own to fs before parse.
type adminFlags struct {
	fs                   *flag.FlagSet
	config, admin, token string
	json                 bool
}

func newAdminFlags(name string, stderr io.Writer) *adminFlags {
	f := &adminFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.config, "config", config.DefaultPath, "config file naming the admin listener and token")
	f.fs.StringVar(&f.admin, "admin", "", "admin API URL (overrides -config), e.g. http://127.0.0.1:8526")
	f.fs.StringVar(&f.token, "token", "", "admin bearer token (overrides -config)")
	f.fs.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
	return f
}

// parse accepts flags before and after positional arguments and returns
// the positional ones; the flag package has already reported an error.
func (f *adminFlags) parse(args []string) ([]string, bool) {
	if name := repeated(f.fs, args); name != "" {
		fmt.Fprintf(f.fs.Output(), "hookd %s: -%s is given twice\n", f.fs.Name(), name)
		return nil, false
	}
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, false
		}
		rest := f.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...) // -- ends the flags, as in the flag package
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	ok := true
	f.fs.Visit(func(fl *flag.Flag) {
		// Left out, these mean no filter (every tenant, endpoint, type or
		// time), none (a platform endpoint) or all (capabilities); given
		// empty, from an unset variable (-tenant "$T"), they must not
		// silently mean the same.
		if blankRefused[fl.Name] && fl.Value.String() == "" && ok {
			fmt.Fprintf(f.fs.Output(), "hookd %s: -%s is empty (an unset variable?); leave the flag out for its default\n", f.fs.Name(), fl.Name)
			ok = false
		}
		// The API refuses a page of 0; the client would send none and get
		// the default page instead.
		if fl.Name == "limit" && fl.Value.String() == "0" && ok {
			fmt.Fprintf(f.fs.Output(), "hookd %s: -limit must be between 1 and 1000; leave it out for 100\n", f.fs.Name())
			ok = false
		}
	})
	return pos, ok
}

// blankRefused are the flags that may not be given empty (parse). Given
// empty, -name made a create that a retry repeats (a new generated name
// each time, not a 409), and -overlap "" a rotation with the default 24 h
// when 0s was meant (black-box testing).
var blankRefused = map[string]bool{"tenant": true, "endpoint": true, "status": true, "type": true, "since": true, "until": true, "caps": true,
	"name": true, "scheme": true, "secret": true, "overlap": true, "ttl": true, "data": true}

// repeated names a flag given twice in args, or "". The flag package keeps
// the last, so a command line that a script appends to (-tenant a …
// -tenant b) would act on b alone; only -set, a list, may repeat.
func repeated(fs *flag.FlagSet, args []string) string {
	seen := map[string]bool{}
	for i := 0; i < len(args) && args[i] != "--"; i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		fl := fs.Lookup(name)
		if !strings.HasPrefix(args[i], "-") || fl == nil {
			continue // a positional argument, or a flag the flag package reports
		}
		if _, list := fl.Value.(*setFlags); seen[name] && !list {
			return name
		}
		seen[name] = true
		if b, isBool := fl.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(isBool && b.IsBoolFlag()) {
			i++ // its value is the next argument
		}
	}
	return ""
}

// client builds the admin client from -admin and -token, or from the
// config file's [admin] table; endpoint secrets are not read.
func (f *adminFlags) client() (*client.Admin, error) {
	base, token := f.admin, f.token
	if base == "" || token == "" {
		b, err := os.ReadFile(f.config)
		if err != nil && base == "" {
			return nil, fmt.Errorf("read %s (or pass -admin URL): %v", f.config, err)
		}
		if err == nil {
			listen, fileToken, err := config.AdminAccess(f.config, b, token == "")
			if err != nil {
				return nil, err
			}
			if base == "" {
				base = listen
			}
			if token == "" {
				token = fileToken
			}
		}
	}
	if err := client.CheckBase(base); err != nil {
		return nil, fmt.Errorf("-admin %w", err)
	}
	return client.NewAdmin(base, client.Options{Token: token}), nil
}

// connect returns the admin client, or nil after reporting why not.
func (f *adminFlags) connect(stderr io.Writer) *client.Admin {
	a, err := f.client()
	if err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return nil
	}
	return a
}

// fail reports an admin call's error and returns the exit code for it.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "hookd:", err)
	if errors.Is(err, client.ErrUnreachable) {
		return exitUnreachable
	}
	return exitFailed
}

func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "hookd %s: %s\n", cmd, msg)
	return exitUsage
}

// print writes an answer as a table, or as JSON with -json.
func (f *adminFlags) print(w io.Writer, v any, table func(w io.Writer)) {
	if f.json {
		printJSON(w, v)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(terminalSafe{tw}) // escaped before the columns are measured
	tw.Flush()
}

// terminalSafe shows control characters (but the tab and newline that lay
// a table out), bidirectional overrides and invalid UTF-8 escaped, as Go
// quotes them: descriptions, metadata and responses come from tenants and
// receivers, and an escape sequence printed raw would drive the
// operator's terminal.
type terminalSafe struct{ w io.Writer }

func (t terminalSafe) Write(p []byte) (int, error) {
	if !bytes.ContainsFunc(p, config.Unprintable) && utf8.Valid(p) {
		return t.w.Write(p)
	}
	var b []byte
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = fmt.Appendf(b, `\x%02x`, p[i])
		case config.Unprintable(r):
			q := strconv.QuoteRune(r)
			b = append(b, q[1:len(q)-1]...)
		default:
			b = append(b, p[i:i+n]...)
		}
		i += n
	}
	if _, err := t.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// printJSON prints v indented with its keys sorted, as -json always has,
// so scripts that diff its output keep working. v was just decoded from
// the API's JSON, so it encodes.
func printJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	var generic any // maps encode with sorted keys
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.Decode(&generic)
	// Unescaped <, > and &: a filter such as data.total > 100 reads as
	// written.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(generic)
}

// dash stands in for an empty column so the table keeps its shape.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string { return t.Format(time.RFC3339Nano) }

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(*t)
}
