package delivery

import "time"

// Clock is the scheduler's source of time and timers. The daemon uses the
// real clock; tests pass a fake one and step the scheduler by hand, so no
// test has to sleep or guess how long the loop needs.
type Clock interface {
	Now() time.Time
	// NewTicker drives the loop's wheel ticks and periodic scans.
	NewTicker(d time.Duration) Timer
	// NewTimer bounds waits: the shutdown deadline, a watchdog ping.
	NewTimer(d time.Duration) Timer
}

// Timer is a ticker or a one-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop()
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) NewTicker(d time.Duration) Timer { return realTicker{time.NewTicker(d)} }

func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop()               { r.t.Stop() }
