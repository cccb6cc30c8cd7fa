// Package delivery turns pending deliveries into signed HTTP requests:
// the time-wheel scheduler, the bounded worker pool, the HTTP sender,
// envelopes, signing schemes and the retry policy.
//
// # Scheduling
//
// The bbolt due index (package store) is the source of truth and the
// outer, unbounded level of the timer. The Scheduler holds only the near
// horizon (30s) in memory, in a hashed timing wheel with 10ms slots, and
// at most MaxTracked deliveries at a time; a backlog of millions of
// far-future retries costs disk, not memory, and startup reads only the
// first keys of the index. New deliveries reach the scheduler right after
// the write-ahead log's sync (store.Options.OnQueued), with their record,
// so the worker need not read it back (up to carryBytes of bodies); a
// periodic scan (every second) loads what came within the horizon and
// anything the fast path skipped.
//
// A delivery is tracked from when it is loaded until its attempt's outcome
// is committed, so it is never dispatched twice at once. Ready deliveries
// are dispatched round-robin across endpoints, within each endpoint's
// max_in_flight and rate_limit, to a fixed pool of workers: a slow or dead
// endpoint can hold at most its own share of the workers.
//
// The loop is a sequence of steps (take in new work, scan if due, advance
// the wheel, dispatch). The Scheduler reaches the database through the
// Store interface and time through a Clock, so tests drive it step by step
// with fakes instead of sleeping.
//
// # Shutdown
//
// Close stops dispatching and gives attempts in flight shutdown_timeout to
// finish, however long their endpoint's timeout. At that deadline it
// cancels them: each attempt runs on a connection of its own for its
// duration, which the cancellation closes, so it ends wherever it was
// (dialling, sending, waiting for the response). Cancelled attempts are not
// recorded; their deliveries stay pending and are attempted again after the
// restart.
//
// # Guarantees
//
// At-least-once: a delivery is marked delivered only after a 2xx was
// received and that outcome committed. A crash, or a shutdown that cancels
// attempts, repeats the attempts that were in flight; it never loses one.
// Deliveries of one endpoint are not ordered: retries and concurrency
// reorder them. The body is rendered once at ingest and identical on every
// attempt; the signature and its timestamp are computed fresh for each
// attempt.
//
// # Files
//
//   - scheduler.go: the Scheduler, its Options, Start and Close, its public
//     methods and the Store and Attempter interfaces it depends on.
//   - loop.go: the loop and its step: inbox, horizon, scan, wheel, dispatch.
//   - worker.go: workers and attempts; stats.go: per-endpoint statistics
//     and the outcome log; clock.go, wheel.go.
//   - sender.go and lanes.go: one HTTP attempt and its connection.
//   - endpoint.go, envelope.go, signing.go, template.go, retry.go: what an
//     endpoint receives and when it is retried.
package delivery
