// Command hookd is a webhook delivery daemon: see README.md.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"time"

	"hookd/cli"
	"hookd/config"
	"hookd/daemon"
)

func main() {
	cmd, args := cli.Subcommand(os.Args[1:])
	if cmd != "run" {
		os.Exit(cli.Run(cmd, args, os.Stdout, os.Stderr))
	}
	os.Exit(run(args))
}

// tuning says which runtime settings hookd chose (the environment set none
// of them) and may move once the daemon runs.
type tuning struct{ gc, limit bool }

// tuneRuntime sets defaults measured under mixed ingest and delivery load
// on 2 cores (README "Performance"); GOMAXPROCS, GOGC and GOMEMLIMIT in the
// environment override them.
func tuneRuntime() (t tuning) {
	if os.Getenv("GOMAXPROCS") == "" {
		// The log writer and the committer spend much of their time in
		// fsync; one P more than the CPUs lets each resume at once instead
		// of queueing behind request handlers (about +6% events/s).
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
	if os.Getenv("GOGC") == "" {
		// The start collects often (settleMemory sets runGOGC): it decodes
		// several times the managed endpoints' size as garbage between
		// them, and the holes a rare collection leaves keep spans in use
		// for good (with 100,000 endpoints and GOGC=400, 66 MB of 180).
		debug.SetGCPercent(startGOGC)
		t.gc = true
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The soft limit makes the collector work harder instead of letting
		// the heap grow past it (keepGarbageRoom moves it with the heap).
		debug.SetMemoryLimit(garbageRoom)
		t.limit = true
	}
	return t
}

const (
	startGOGC = 100
	// Every event allocates a few KB that die within milliseconds:
	// collecting less often saves ~8% CPU (+6% events/s).
	runGOGC = 400
	// garbageRoom is how far past the daemon's lasting heap (its endpoints,
	// about 1 KB for each managed one) the heap may grow with the garbage
	// of events in flight before the collector works harder.
	garbageRoom = 256 << 20
)

// settleMemory runs once the daemon is up. The start's decoding leaves
// several times the endpoints' size as garbage: a full collection gives it
// back to the OS rather than keep the start's peak as the idle size.
func settleMemory(t tuning) {
	debug.FreeOSMemory()
	if t.gc {
		debug.SetGCPercent(runGOGC)
	}
	if t.limit {
		keepGarbageRoom()
	}
}

// keepGarbageRoom sets the memory limit garbageRoom past the heap the last
// collection found live. A fixed limit counts the daemon's lasting heap
// against the room for garbage: with 100,000 managed endpoints (over half
// of garbageRoom at start, more once each has statistics) the collector
// ran without pause under load (60% of the CPU, a fifth of the events per
// second). run calls it every second, so the room follows the live heap.
func keepGarbageRoom() {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	debug.SetMemoryLimit(int64(live[0].Value.Uint64()) + garbageRoom)
}

// run starts the daemon and turns signals into lifecycle calls: TERM and
// INT stop it (a second one forces exit), HUP reloads the config.
func run(args []string) int {
	tuned := tuneRuntime()
	path, err := daemon.ParseRunFlags(args, os.Stderr)
	if err != nil {
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookd:", err)
		return 1
	}
	// Catch signals before Open: an early SIGHUP must not kill the process
	// (its default action); it is handled once the daemon runs.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	d := daemon.New(cfg)
	d.Notify = daemon.SystemdNotifier()
	if err := d.Open(); err != nil {
		fmt.Fprintln(os.Stderr, "hookd:", err)
		return 1
	}
	settleMemory(tuned)
	var every <-chan time.Time
	if tuned.limit {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		every = t.C
	}
	for {
		var s os.Signal
		select {
		case <-every:
			keepGarbageRoom()
			continue
		case s = <-sig:
		}
		if s == syscall.SIGHUP {
			d.Reload()
			// A reload builds every managed endpoint again: as after the
			// start, give their garbage back to the OS instead of keeping
			// the peak as the idle size (100,000 endpoints: RSS 94 MB
			// before a reload, ~420 MB after it without this).
			debug.FreeOSMemory()
			continue
		}
		go func() {
			for s := range sig {
				if s != syscall.SIGHUP {
					// A second TERM/INT during shutdown: leave now. bbolt's
					// file stays consistent; unfinished work is retried.
					fmt.Fprintln(os.Stderr, "hookd: forced exit")
					os.Exit(1)
				}
			}
		}()
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "hookd:", err)
			return 1
		}
		return 0
	}
}
