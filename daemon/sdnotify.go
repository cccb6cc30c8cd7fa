package daemon

import (
	"os"
	"strings"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// SystemdNotifier returns a function that sends sd_notify states to
// $NOTIFY_SOCKET, or nil when hookd does not run under systemd.
func SystemdNotifier() func(state ...string) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	return func(state ...string) {
		sdaemon.SdNotify(false, strings.Join(state, "\n"))
	}
}

func (d *Daemon) notify(state ...string) {
	if d.Notify != nil {
		d.Notify(state...)
	}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}

// feedWatchdog pings systemd (every half WatchdogSec), but only while the
// scheduler loop keeps running: a wedged scheduler gets the process
// restarted instead of being kept alive by a healthy HTTP goroutine.
func (d *Daemon) feedWatchdog(interval time.Duration) {
	if d.sched.Ping(interval / 4) {
		d.notify("WATCHDOG=1")
	} else {
		d.log.Error().Dur("waited", interval/4).Msg("scheduler loop does not answer; withholding watchdog ping")
	}
}
