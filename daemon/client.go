package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// The operator CLI talks to a running daemon's admin API; it never opens
// the database (the daemon holds its lock).

// Exit codes of the admin subcommands.
const (
	exitOK          = 0
	exitFailed      = 1 // the API answered with an error, or a test attempt failed
	exitUsage       = 2
	exitUnreachable = 3 // no daemon answered
)

type cliFlags struct {
	fs       *flag.FlagSet
	config   *string
	admin    *string
	token    *string
	jsonOut  *bool
	endpoint *string
}

func newCLIFlags(name string, stderr io.Writer) *cliFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &cliFlags{fs: fs,
		config:  fs.String("config", defaultConfigPath, "config file naming the admin listener and token"),
		admin:   fs.String("admin", "", "admin API URL (overrides -config), e.g. http://127.0.0.1:8526"),
		token:   fs.String("token", "", "admin bearer token (overrides -config)"),
		jsonOut: fs.Bool("json", false, "print the API's JSON instead of a table"),
	}
}

// parse accepts flags before and after positional arguments.
func (f *cliFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, err
		}
		args = f.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

type adminClient struct {
	base  string
	token string
	hc    *http.Client
}

// client builds the admin client from -admin/-token or the config file.
// Only the file's [admin] table matters; secrets are not read.
func (f *cliFlags) client() (*adminClient, error) {
	base, token := *f.admin, *f.token
	if base == "" || token == "" {
		b, err := os.ReadFile(*f.config)
		if err != nil && base == "" {
			return nil, fmt.Errorf("read %s (or pass -admin URL): %v", *f.config, err)
		}
		if err == nil {
			cfg, err := ParseConfig(*f.config, b)
			if err != nil {
				return nil, err
			}
			if base == "" {
				base = cfg.Admin.Listen
			}
			if token == "" {
				if token, err = readToken(cfg.Admin.Token, cfg.Admin.TokenFile); err != nil {
					return nil, err
				}
			}
		}
	}
	c := &adminClient{token: token, hc: &http.Client{Timeout: 30 * time.Second}}
	if sock, ok := strings.CutPrefix(base, "unix:"); ok {
		c.base = "http://hookd"
		c.hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
	} else if strings.Contains(base, "://") {
		c.base = strings.TrimRight(base, "/")
	} else {
		c.base = "http://" + base
	}
	return c, nil
}

// errUnreachable marks a daemon that did not answer.
var errUnreachable = errors.New("cannot reach the hookd admin API (is hookd running?)")

// call performs a request and decodes the JSON answer into out. API errors
// come back as *apiError.
func (c *adminClient) call(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errUnreachable, c.base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(b, &e)
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return json.Unmarshal(b, out)
}

func exitFor(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "hookd:", err)
	var ae *apiError
	switch {
	case errors.Is(err, errUnreachable):
		return exitUnreachable
	case errors.As(err, &ae):
		return exitFailed
	}
	return exitFailed
}

// adminCommand runs events/redeliver/undeliverable/endpoints/test.
func adminCommand(cmd string, args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags(cmd, stderr)
	var since, until, typ, data *string
	var limit *int
	var cursor *string
	switch cmd {
	case "redeliver":
		f.endpoint = f.fs.String("endpoint", "", "only this endpoint")
	case "undeliverable":
		f.endpoint = f.fs.String("endpoint", "", "only this endpoint")
		since = f.fs.String("since", "", "redeliver: parked at or after (RFC 3339)")
		until = f.fs.String("until", "", "redeliver: parked at or before (RFC 3339)")
		limit = f.fs.Int("limit", 100, "list: page size")
		cursor = f.fs.String("cursor", "", "list: page cursor from the previous page")
	case "test":
		typ = f.fs.String("type", "", "event type (default: the endpoint's test_event_type)")
		data = f.fs.String("data", "", "event data as JSON")
	}
	pos, err := f.parse(args)
	if err != nil {
		return exitUsage
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "hookd %s: %s\n", cmd, msg)
		return exitUsage
	}
	c, err := f.client()
	if err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return exitUsage
	}
	var out map[string]any
	switch cmd {
	case "events":
		if len(pos) != 2 || pos[0] != "show" {
			return usageErr("usage: hookd events show ID")
		}
		if err := c.call("GET", "/v1/events/"+url.PathEscape(pos[1]), nil, &out); err != nil {
			return exitFor(err, stderr)
		}
		return f.print(stdout, out, printEvent)
	case "redeliver":
		if len(pos) != 1 {
			return usageErr("usage: hookd redeliver ID [-endpoint NAME]")
		}
		if err := c.call("POST", "/v1/events/"+url.PathEscape(pos[0])+"/redeliver", map[string]string{"endpoint": *f.endpoint}, &out); err != nil {
			return exitFor(err, stderr)
		}
		return f.print(stdout, out, func(w io.Writer, m map[string]any) {
			fmt.Fprintf(w, "requeued %s for %s\n", m["id"], joinAny(m["endpoints"]))
		})
	case "undeliverable":
		if len(pos) != 1 || (pos[0] != "list" && pos[0] != "redeliver") {
			return usageErr("usage: hookd undeliverable list|redeliver [-endpoint NAME] [-since T] [-until T]")
		}
		if pos[0] == "list" {
			q := url.Values{"limit": {fmt.Sprint(*limit)}}
			if *f.endpoint != "" {
				q.Set("endpoint", *f.endpoint)
			}
			if *cursor != "" {
				q.Set("cursor", *cursor)
			}
			if err := c.call("GET", "/v1/undeliverable?"+q.Encode(), nil, &out); err != nil {
				return exitFor(err, stderr)
			}
			return f.print(stdout, out, printUndeliverable)
		}
		body := map[string]any{"endpoint": *f.endpoint}
		for k, v := range map[string]string{"since": *since, "until": *until} {
			if v == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return usageErr(fmt.Sprintf("-%s: want RFC 3339, e.g. 2026-11-25T08:00:00Z", k))
			}
			body[k] = t
		}
		if err := c.call("POST", "/v1/undeliverable/redeliver", body, &out); err != nil {
			return exitFor(err, stderr)
		}
		return f.print(stdout, out, func(w io.Writer, m map[string]any) { fmt.Fprintf(w, "requeued %v deliveries\n", m["redelivered"]) })
	case "endpoints":
		if err := c.call("GET", "/v1/endpoints", nil, &out); err != nil {
			return exitFor(err, stderr)
		}
		return f.print(stdout, out, printEndpoints)
	case "test":
		if len(pos) != 1 {
			return usageErr("usage: hookd test ENDPOINT [-type T] [-data JSON]")
		}
		body := map[string]any{}
		if *typ != "" {
			body["type"] = *typ
		}
		if *data != "" {
			if !json.Valid([]byte(*data)) {
				return usageErr("-data is not valid JSON")
			}
			body["data"] = json.RawMessage(*data)
		}
		if err := c.call("POST", "/v1/endpoints/"+url.PathEscape(pos[0])+"/test", body, &out); err != nil {
			return exitFor(err, stderr)
		}
		code := f.print(stdout, out, printTest)
		if out["ok"] != true {
			return exitFailed
		}
		return code
	}
	return exitUsage
}

func (f *cliFlags) print(w io.Writer, m map[string]any, table func(io.Writer, map[string]any)) int {
	if *f.jsonOut {
		b, _ := json.MarshalIndent(m, "", "  ")
		fmt.Fprintln(w, string(b))
		return exitOK
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw, m)
	tw.Flush()
	return exitOK
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case float64:
		return fmt.Sprint(x)
	case string:
		if x == "" {
			return "-"
		}
		return x
	}
	return fmt.Sprint(v)
}

func joinAny(v any) string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, str(x))
	}
	return strings.Join(out, ", ")
}

func asList(v any) []any { l, _ := v.([]any); return l }

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

func printEvent(w io.Writer, m map[string]any) {
	fmt.Fprintf(w, "event\t%s\ntype\t%s\ncreated\t%s\n\n", str(m["id"]), str(m["type"]), str(m["created_at"]))
	fmt.Fprintln(w, "ENDPOINT\tSTATE\tATTEMPT\tAT\tSTATUS\tLATENCY\tERROR / REASON")
	for _, x := range asList(m["deliveries"]) {
		d := asMap(x)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\t\t%s\n", str(d["endpoint"]), str(d["state"]), str(d["attempts"]),
			str(firstNonNil(d["next_attempt_at"], d["delivered_at"], d["parked_at"])), str(d["reason"]))
		for _, y := range asList(d["history"]) {
			a := asMap(y)
			fmt.Fprintf(w, "\t\t#%s\t%s\t%s\t%sms\t%s\n", str(a["n"]), str(a["at"]), str(a["status"]), str(a["latency_ms"]), str(a["error"]))
		}
	}
}

func firstNonNil(vs ...any) any {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func printUndeliverable(w io.Writer, m map[string]any) {
	fmt.Fprintln(w, "PARKED AT\tEVENT\tTYPE\tENDPOINT\tATTEMPTS\tLAST STATUS\tREASON")
	for _, x := range asList(m["items"]) {
		d := asMap(x)
		last := asMap(d["last_attempt"])
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", str(d["parked_at"]), str(d["event_id"]), str(d["event_type"]),
			str(d["endpoint"]), str(d["attempts"]), str(last["status"]), str(d["reason"]))
	}
	if c := str(m["next_cursor"]); c != "-" {
		fmt.Fprintf(w, "\nmore: -cursor %s\n", c)
	}
}

func printEndpoints(w io.Writer, m map[string]any) {
	fmt.Fprintln(w, "NAME\tSTATE\tPENDING\tIN FLIGHT\tFAILURES\tLAST SUCCESS\tLAST FAILURE\tURL")
	for _, x := range asList(m["endpoints"]) {
		e := asMap(x)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", str(e["name"]), str(e["state"]), str(e["pending"]), str(e["in_flight"]),
			str(e["consecutive_failures"]), str(e["last_success_at"]), str(e["last_failure_at"]), str(e["url"]))
	}
}

func printTest(w io.Writer, m map[string]any) {
	a := asMap(m["attempt"])
	verdict := "FAILED"
	if m["ok"] == true {
		verdict = "OK"
	}
	fmt.Fprintf(w, "%s\t%s\nevent\t%s\nstatus\t%s\nlatency\t%sms\n", verdict, str(m["endpoint"]), str(m["id"]), str(a["status"]), str(a["latency_ms"]))
	if e := str(a["error"]); e != "-" {
		fmt.Fprintf(w, "error\t%s\n", e)
	}
}
