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
// # Guarantees
//
// At-least-once: a delivery is marked delivered only after a 2xx was
// received and that outcome committed. A crash or an abandoned shutdown
// repeats attempts that were in flight; it never loses one. Deliveries of
// one endpoint are not ordered: retries and concurrency reorder them.
// The body is rendered once at ingest and identical on every attempt; the
// signature and its timestamp are computed fresh for each attempt.
package delivery
