// Package store is hookd's only access to its bbolt database (events, the
// due-time-ordered delivery queue, attempts, dedup keys, the undeliverable
// bucket and endpoint state) and to the write-ahead log in front of it
// (the directory <database>.wal next to the file).
//
// # Durability
//
// New events take the write-ahead log (walwriter.go, wal.go): the log writer
// goroutine takes every ingest request waiting, decides duplicates and
// max_pending for the batch, appends the accepted events to the current
// log segment with one write and one fdatasync, and only then answers the
// callers (group commit: batches grow by themselves while the previous
// sync runs; only a batch far below the usual size waits up to 200 µs for
// the requests about to arrive, which breaks the convoy of one-request
// syncs that otherwise forms under load). A log sync writes a few
// kilobytes to one file; a bbolt commit rewrites every touched bucket's
// pages and syncs twice, which is why acknowledgements do not wait for it.
//
// Every bbolt write goes through one committer goroutine: it takes whatever
// is waiting (logged events, attempt outcomes, operator actions), applies
// it in one read-write transaction of at most maxTxWeight writes and
// commits, at most every commitInterval (50 ms), since nothing
// latency-critical waits for it. If more than maxUnapplied logged events
// (or maxUnappliedBytes of their records) wait for it (a burst through the
// batch API), the log writer waits for the
// committer before it logs more, which bounds memory and slows the
// emitter down instead of failing it. The
// transaction that applies logged events also records how far the log is
// applied; after a crash Open replays the log from there. Applying is
// idempotent (an event already stored is skipped), so replaying a record
// twice changes nothing. Until their commit, logged events are held in
// memory ("unapplied") so that duplicate checks, pending counts and
// workers see them; reads of events (Event, EventDetail) first wait for
// the committer, so a read after a 202 finds the event.
//
// A failed commit (disk full, I/O error, read-only file system) rolls the
// whole transaction back: nothing of it is visible and every caller in the
// batch gets ErrStorage. If one operation in a batch fails for its own
// reasons, the batch is retried one operation at a time so neighbours are
// not failed with it. Logged events whose commit failed are kept and
// retried every 100 ms; meanwhile new events are refused with ErrStorage.
// A failed log write or sync is cut back off the segment and answered with
// ErrStorage; the next write starts a new segment.
//
// # The queue
//
// A pending delivery has a key in the queue bucket: its due time as 8
// big-endian bytes followed by "eventID\x00endpoint". bbolt keeps keys
// sorted, so the bucket is a time-ordered index and "what is due next" is
// a cursor walk from the first key; nothing scans the whole backlog.
// Records carry their own due time, so an outcome computed for an older
// due time (the delivery was redelivered or parked meanwhile) is recorded
// as an attempt but does not move the delivery ("stale" outcome, reported
// back as Outcome.Superseded), except that a 2xx marks a parked one
// delivered. A redelivered one stays pending: its resend was asked for
// after the attempt began.
//
// # Ordered endpoints
//
// Every event gets a sequence number in log order, which is
// acknowledgement order, and its deliveries carry it. A pending delivery
// of an endpoint with ordering = "fifo" is kept in that endpoint's ordered
// index (endpoint, sequence number) instead of the due queue; its due time
// is in its record. OrderedHead returns an endpoint's first one. A
// redelivery takes a new, higher number: it joins the tail. An outcome
// marked Ordered is committed after orderedCommitInterval rather than the
// full commit interval, since its endpoint waits for it. See ordered.go.
//
// # Caveats
//
// The total pending count is kept in the meta bucket and updated in the
// same transaction as the queue. Each endpoint's count is kept in memory
// only and counted from the queue's and the ordered index's keys at Open
// (countPending), which costs about 0.1 s a million pending deliveries:
// kept in meta, it was a write to a random page for each delivery of
// every commit. Each endpoint's undeliverable count likewise, from the
// undeliverable bucket's keys (countParked). The deliveries log's endpoint
// and tenant indexes are likewise written as sorted runs, batch by batch,
// rather than key by key into one tree (deliverylog.go, logruns.go). Bulk
// operations (parking an endpoint's deliveries, redelivering the
// undeliverable bucket, retention purges) read in a read transaction and
// write in chunks of 1000 so they never hold the single writer for long.
// The database file is created 0600 in a 0700 directory and locked: a
// second process fails with ErrLocked after LockTimeout; the log is only
// touched while that lock is held. Log segments are 16 MiB; fully applied
// ones are recycled (renamed and overwritten, see wal.go) or deleted when
// the log writer starts a new segment. Each segment's header carries the
// database's id (random, made with the database): Open refuses, with
// ErrForeignWAL, a log written for another database rather than replay it
// (a restored backup next to a stale log, a database deleted and made
// anew). A database from a build before ids gets one at its first Open,
// after its log, which has no headers, is replayed. Attempt outcomes are committed in the
// next bbolt transaction, not fsynced one by one: a crash repeats the
// deliveries of roughly the last commitInterval (at least once; the
// kill -9 test measures how many), and never loses an acknowledged event.
//
// # Secrets
//
// Secrets kept in the database are package seal blobs: sealed with
// Options.SealKey, in clear without one. The first key used is recorded in
// the meta bucket in the same transaction that seals the secrets stored in
// clear before (every place listed in sealedPlaces); from then on Open
// refuses to start without that key or with another (sealing.go).
//
// # Online backup
//
// Snapshot (backup.go) first waits for the committer, so every event
// acknowledged before it is in bbolt, then holds a read transaction whose
// WriteTo is a complete database file. Ingest and delivery go on
// meanwhile, but bbolt reuses no page freed while the snapshot is open (the
// file grows) and a commit that must enlarge the memory map waits for it:
// hold snapshots briefly.
package store
