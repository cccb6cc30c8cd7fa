// Package store is hookd's only access to its bbolt database: events, the
// due-time-ordered delivery queue, attempts, dedup keys, the undeliverable
// bucket and endpoint state.
//
// # Durability
//
// Every write goes through one committer goroutine. It takes whatever
// writes are waiting (up to 1024), applies them in one read-write
// transaction and commits; bbolt's commit fsyncs the file. Callers are
// answered only after that commit returned, so an ingest request that got
// its 202 is on disk. There is no artificial batching delay: under light
// load a batch holds one write, under heavy load batches grow by
// themselves while the previous fsync runs (group commit).
//
// A failed commit (disk full, I/O error, read-only file system) rolls the
// whole transaction back: nothing of it is visible and every caller in the
// batch gets ErrStorage. If one operation in a batch fails for its own
// reasons, the batch is retried one operation at a time so neighbours are
// not failed with it.
//
// # The queue
//
// A pending delivery has a key in the queue bucket: its due time as 8
// big-endian bytes followed by "eventID\x00endpoint". bbolt keeps keys
// sorted, so the bucket is a time-ordered index and "what is due next" is
// a cursor walk from the first key; nothing scans the whole backlog.
// Records carry their own due time, so an outcome computed for an older
// due time (the delivery was redelivered or parked meanwhile) is recorded
// as an attempt but does not move the delivery ("stale" outcome), except
// that a 2xx always marks it delivered.
//
// # Caveats
//
// The pending count is kept in the meta bucket and updated in the same
// transaction as the queue, so it survives restarts without a scan. Bulk
// operations (parking an endpoint's deliveries, redelivering the
// undeliverable bucket, retention purges) read in a read transaction and
// write in chunks of 1000 so they never hold the single writer for long.
// The database file is created 0600 in a 0700 directory and locked: a
// second process fails with ErrLocked after LockTimeout.
package store
