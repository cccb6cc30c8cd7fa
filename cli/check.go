package cli

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"hookd/config"
	"hookd/store"
)

// checkConfig loads the file exactly as the daemon does (secrets
// included), so a file that passes here starts.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", config.DefaultPath, "configuration file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 { // a file named without -config would be ignored
		fmt.Fprintln(stderr, "usage: hookd check-config [-config FILE]")
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: OK\n", *path)
	fmt.Fprintf(stdout, "ingest %s, admin %s, storage %s\n", cfg.Ingest.Listen, cfg.Admin.Listen, cfg.Storage.Path)
	for _, e := range cfg.Resolved {
		sched := make([]string, len(e.Policy.Schedule))
		for i, d := range e.Policy.Schedule {
			sched[i] = config.ShortDuration(d)
		}
		fmt.Fprintf(stdout, "endpoint %s\n  url      %s\n  events   %s\n  signing  %s\n  retries  [%s]", e.Name, e.URL,
			strings.Join(e.Events, ", "), e.Signing.Scheme, strings.Join(sched, " "))
		if e.Policy.StopOn4xx {
			fmt.Fprint(stdout, " stop_on_4xx")
		}
		fmt.Fprintf(stdout, "\n  ordering %s\n", e.Ordering)
		if e.Filter != "" {
			fmt.Fprintf(stdout, "  filter   %s\n", strings.Join(strings.Fields(e.Filter), " "))
		}
	}
	if cfg.Notify.URL != "" {
		fmt.Fprintf(stdout, "notify %s (failing after %d)\n", cfg.Notify.URL, cfg.Notify.FailingAfter)
	}
	return exitOK
}

// checkDB opens the database file itself, so it refuses while a daemon
// holds the file's lock.
func checkDB(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("path", "", "database file: a stopped daemon's, or a backup")
	if err := fs.Parse(args); err != nil || *path == "" {
		fmt.Fprintln(stderr, "usage: hookd check-db -path FILE")
		return exitUsage
	}
	counts, err := store.Inspect(*path)
	if err != nil {
		fmt.Fprintln(stderr, "hookd:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: consistent\n", *path)
	printCounts(stdout, counts)
	return exitOK
}

// printCounts lists store.Inspect's counts by name.
func printCounts(w io.Writer, counts map[string]int) {
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(w, "  %-18s %d\n", k, counts[k])
	}
}
