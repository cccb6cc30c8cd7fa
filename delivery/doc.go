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
// so the worker need not read it back (up to carryBytes of bodies) unless
// a redeliver or a parking moved deliveries since (store.Moved); a
// periodic scan (every second) loads what came within the horizon and
// anything the fast path skipped.
//
// A delivery is tracked from when it is loaded until its attempt's outcome
// is committed, so it is never dispatched twice at once. Ready deliveries
// are dispatched oldest first across endpoints (by due time), within each
// endpoint's max_in_flight and rate_limit, to a fixed pool of workers; each
// endpoint gets first its share of the workers (workers ÷ endpoints with
// deliveries waiting), and only the workers still free go to those over
// it, so neither a flood at one endpoint nor a slow or dead one holds the
// others' share. Oldest first keeps a backlog over many endpoints draining
// in the order it was stored, which the store writes in a few pages per
// commit; round robin served each endpoint's queue by the same count, far
// apart in the keys, and cost two to four times the page writes. A slow
// endpoint (no prompt HTTP answer to its last attempt) has one attempt in
// flight, and slow ones together hold at most half the workers, so many
// dead endpoints cannot hold them all either; one not tried since start
// probes one attempt at a time outside that share (loop.go, slowShare).
//
// # Many endpoints
//
// With 100,000 tenant endpoints most of the cost is cold memory, for the
// collector and for each event. So the scheduler keeps one record per
// endpoint (its ready queue, in-flight count and statistics) that every
// tracked delivery points at, instead of looking the endpoint up in maps
// at each step; and the Table packs the endpoints it indexes in one pass
// (at start and reload) into a few large arrays. The caveat: a packed
// array lives as long as any endpoint in it, so endpoints patched or
// deleted since the last reload keep their packed copies until the next.
//
// # Ordered endpoints
//
// An endpoint with ordering = "fifo" gets one delivery at a time, in the
// order its events were acknowledged. Its pending deliveries are not on
// the due queue but in the store's ordered index, by sequence number
// (assigned in write-ahead-log order, which is acknowledgement order): the
// due queue's time order is not that order, since a retried head is due
// after the deliveries behind it. The scheduler holds one of them per
// endpoint, the head, and reads the next from the store only after the
// head's outcome is committed (fifo.go). A failing head is retried on its
// schedule and holds back the rest until it is delivered or parked;
// meanwhile its endpoint shows blocked_since. Ordered outcomes are
// committed within a few milliseconds rather than the usual 50, since the
// endpoint waits for them: that is what bounds its throughput.
//
// # Filters
//
// An endpoint's filter (filter.go) is an expr expression over the event's
// type, tenant, id and parsed data, compiled when the endpoint is built and
// evaluated at ingest; what it may do is bounded so that its cost grows
// with the expression and the event, not faster.
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
// Deliveries of an endpoint without ordering are not ordered: retries and
// concurrency reorder them. An ordered endpoint's receiver sees first
// arrivals in strictly increasing acknowledgement order across SIGTERM,
// SIGHUP and kill -9: the next delivery is sent only after the previous
// one's outcome is committed, so a crash can repeat only the last head
// (never head, next, head). A redelivery joins the tail. Whether a
// delivery is ordered is decided when it is queued; changing an endpoint's
// ordering applies to what is queued from then on. The body is rendered
// once at ingest and identical on every attempt; the signature and its
// timestamp are computed fresh for each attempt.
//
// # Files
//
//   - scheduler.go: the Scheduler, its Options, Start and Close, its public
//     methods and the Store and Attempter interfaces it depends on.
//   - loop.go: the loop and its step: inbox, horizon, scan, wheel, dispatch.
//   - fifo.go: ordered endpoints' heads; filter.go: endpoint filters.
//   - worker.go: workers and attempts; stats.go: per-endpoint records
//     (queue, in flight, statistics) and the outcome log; clock.go,
//     wheel.go.
//   - sender.go and lanes.go: one HTTP attempt and its connection.
//   - endpoint.go, envelope.go, signing.go, template.go, retry.go: what an
//     endpoint receives and when it is retried.
package delivery
