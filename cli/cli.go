// Package cli is hookd's operator command line: every subcommand but run,
// which starts the daemon (package daemon). The subcommands that inspect
// or steer a running daemon go through its admin API with package client;
// none opens the database, which the running daemon keeps locked.
package cli

import (
	"flag"
	"fmt"
	"io"

	"hookd/daemon"
	"hookd/delivery"
	"hookd/seal"
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
	"tenants":       tenants,
	"deliveries":    deliveries,
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
  gen-secret [-key]           print a new whsec_ signing secret (-key: a secrets key)
  version                     print the version

Talking to a running daemon's admin API (flags: -config FILE | -admin URL, -token T, -json):
  events show ID                              an event, its deliveries and every attempt
  redeliver ID [-endpoint NAME]               send an event again, delivered or not
  deliveries [-tenant T] [-endpoint NAME] [-status S] [-type T] [-since T] [-until T]
                                              the deliveries log, newest first (-limit, -cursor)
  undeliverable list [-endpoint NAME]         parked deliveries, oldest first (-limit, -cursor)
  undeliverable redeliver [-endpoint NAME] [-since T] [-until T]
  endpoints [-tenant T]                       endpoints with source, tenant, state, pending, in flight, failures
  test ENDPOINT [-type T] [-data JSON]        send a signed test event now
  backup -out FILE                            copy the whole database while hookd runs (restore: start hookd on it)

Managed endpoints (created through the admin API, kept by the daemon) and tenants:
  endpoints create -url URL [-tenant T] [-events a,b] [-name N] [-scheme S] [-secret S] [-description D]
                                              create one (-events default *); prints its secret
  endpoints show NAME                         one endpoint, config or managed
  endpoints update NAME [-url URL] [-events a,b] [-description D] [-disabled true|false]
                                              change only what the flags name
  endpoints delete NAME                       delete; its pending deliveries become undeliverable
  endpoints rotate-secret NAME [-overlap 24h] [-secret S]
                                              new secret; the old ones sign alongside until -overlap ends
  endpoints secret NAME                       read the secret back, and the old ones still signing
  tenants                                     tenants with endpoints, pending, undeliverable, failing
  tenants delete TENANT                       delete a tenant's managed endpoints (config ones stay)
  tenants portal-link TENANT [-ttl] [-caps]   mint a single-use link to the tenant's portal
Any other setting: create and update take -set key=value (repeatable; a dotted key reaches into
an object: signing.header=X, metadata.crm=acme; the value is JSON when it parses as JSON, else a
string; null resets to the default), and update takes -patch JSON, a merge patch.

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

func genSecret(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen-secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.Bool("key", false, "print a secrets key for [storage] secrets_key_file instead (32 random bytes, base64)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: hookd gen-secret [-key]")
		return exitUsage
	}
	if *key {
		fmt.Fprintln(stdout, seal.NewKey())
	} else {
		fmt.Fprintln(stdout, delivery.NewStandardSecret())
	}
	return exitOK
}
