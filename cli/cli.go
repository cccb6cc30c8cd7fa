// Package cli is hookd's operator command line: every subcommand but run,
// which starts the daemon (package daemon). The subcommands that inspect
// or steer a running daemon go through its admin API with package client;
// none opens the database, which the running daemon keeps locked.
package cli

import (
	"fmt"
	"io"

	"hookd/daemon"
	"hookd/delivery"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1 // the command failed: the API answered with an error, or a test attempt failed
	exitUsage       = 2
	exitUnreachable = 3 // no daemon answered
)

// Subcommand splits hookd's arguments into the subcommand and its own
// arguments. Without a subcommand the daemon runs ("hookd -config F" is
// "hookd run -config F"), but a help flag asks for the command list rather
// than run's flags.
func Subcommand(args []string) (string, []string) {
	if len(args) == 0 {
		return "run", nil
	}
	switch a := args[0]; {
	case a == "-h" || a == "-help" || a == "--h" || a == "--help":
		return "help", args[1:]
	case a != "" && a[0] != '-':
		return a, args[1:]
	}
	return "run", args
}

var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"check-config":  checkConfig,
	"check-db":      checkDB,
	"gen-secret":    genSecret,
	"version":       version,
	"help":          help,
	"events":        events,
	"redeliver":     redeliver,
	"undeliverable": undeliverable,
	"endpoints":     endpoints,
	"test":          test,
	"backup":        backup,
}

// Run runs subcommand cmd (any but run) and returns the process exit code.
func Run(cmd string, args []string, stdout, stderr io.Writer) int {
	if f := commands[cmd]; f != nil {
		return f(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "hookd: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

const usage = `usage: hookd <command> [flags]

  run -config FILE            run the daemon (default command)
  check-config -config FILE   validate a config file and print a summary
  check-db -path FILE         check a stopped daemon's database, or a backup, and count its records
  gen-secret                  print a new whsec_ signing secret
  version                     print the version

Talking to a running daemon's admin API (flags: -config FILE | -admin URL, -token T, -json):
  events show ID                              an event, its deliveries and every attempt
  redeliver ID [-endpoint NAME]               send an event again, delivered or not
  undeliverable list [-endpoint NAME]         parked deliveries, oldest first (-limit, -cursor)
  undeliverable redeliver [-endpoint NAME] [-since T] [-until T]
  endpoints                                   endpoints with state, pending, in flight, failures
  test ENDPOINT [-type T] [-data JSON]        send a signed test event now
  backup -out FILE                            copy the whole database while hookd runs (restore: start hookd on it)

Exit codes: 0 ok, 1 the API refused or the test failed, 2 usage, 3 daemon not reachable.
`

func help(_ []string, stdout, _ io.Writer) int {
	fmt.Fprint(stdout, usage)
	return exitOK
}

func version(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "hookd", daemon.Version)
	return exitOK
}

func genSecret(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, delivery.NewStandardSecret())
	return exitOK
}
