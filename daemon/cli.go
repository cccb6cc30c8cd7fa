package daemon

import (
	"slices"

	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"hookd/store"
	"io"
	"strings"
	"time"
)

const defaultConfigPath = "/etc/hookd/hookd.toml"

// ParseRunFlags parses `hookd run` flags and returns the config path.
func ParseRunFlags(args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfigPath, "configuration file")
	err := fs.Parse(args)
	return *path, err
}

// Command runs a subcommand other than run and returns the exit code.
func Command(cmd string, args []string, stdout, stderr io.Writer) int {
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "hookd", Version)
		return 0
	case "gen-secret":
		fmt.Fprintln(stdout, GenSecret())
		return 0
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "check-db":
		return checkDB(args, stdout, stderr)
	case "events", "redeliver", "undeliverable", "endpoints", "test":
		return adminCommand(cmd, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hookd: unknown command %q\n\n%s", cmd, usage)
	return 2
}

const usage = `usage: hookd <command> [flags]

  run -config FILE            run the daemon (default command)
  check-config -config FILE   validate a config file and print a summary
  check-db -path FILE         check a stopped daemon's database and count its records
  gen-secret                  print a new whsec_ signing secret
  version                     print the version

Talking to a running daemon's admin API (flags: -config FILE | -admin URL, -token T, -json):
  events show ID                              an event, its deliveries and every attempt
  redeliver ID [-endpoint NAME]               send an event again, delivered or not
  undeliverable list [-endpoint NAME]         parked deliveries, oldest first (-limit, -cursor)
  undeliverable redeliver [-endpoint NAME] [-since T] [-until T]
  endpoints                                   endpoints with state, pending, in flight, failures
  test ENDPOINT [-type T] [-data JSON]        send a signed test event now

Exit codes: 0 ok, 1 the API refused or the test failed, 2 usage, 3 daemon not reachable.
`

// GenSecret returns a new Standard Webhooks secret: whsec_ and 32 random
// bytes in base64.
func GenSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	path, err := ParseRunFlags(args, stderr)
	if err != nil {
		return 2
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK\n", path)
	fmt.Fprintf(stdout, "ingest %s, admin %s, storage %s\n", cfg.Ingest.Listen, cfg.Admin.Listen, cfg.Storage.Path)
	for _, e := range cfg.Resolved {
		sched := make([]string, len(e.Policy.Schedule))
		for i, d := range e.Policy.Schedule {
			sched[i] = shortDur(d)
		}
		fmt.Fprintf(stdout, "endpoint %s\n  url      %s\n  events   %s\n  signing  %s\n  retries  [%s]", e.Name, e.URL,
			strings.Join(e.Events, ", "), e.Signing.Scheme, strings.Join(sched, " "))
		if e.Policy.StopOn4xx {
			fmt.Fprint(stdout, " stop_on_4xx")
		}
		fmt.Fprintln(stdout)
	}
	if cfg.Notify.URL != "" {
		fmt.Fprintf(stdout, "notify %s (failing after %d)\n", cfg.Notify.URL, cfg.Notify.FailingAfter)
	}
	return 0
}

func checkDB(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("path", "", "database file (stop the daemon first)")
	if err := fs.Parse(args); err != nil || *path == "" {
		fmt.Fprintln(stderr, "usage: hookd check-db -path FILE")
		return 2
	}
	counts, err := store.Inspect(*path)
	if err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: consistent\n", *path)
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(stdout, "  %-18s %d\n", k, counts[k])
	}
	return 0
}

func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
