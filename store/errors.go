package store

import "errors"

// Sentinel errors callers branch on.
var (
	// ErrLocked: another process has the database open.
	ErrLocked = errors.New("database is locked by another process (is hookd already running on this file?)")
	// ErrSchema: the file was written by an incompatible version.
	ErrSchema = errors.New("unsupported schema version")
	// ErrClosed: the store is closing or closed; the write was not made.
	ErrClosed = errors.New("store closed")
	// ErrStorage: a commit failed (disk full, I/O error, read-only file
	// system). Nothing of the failed transaction is visible.
	ErrStorage = errors.New("storage unwritable")
	// ErrNotFound: no such event or delivery.
	ErrNotFound = errors.New("not found")
	// ErrTooManyPending: accepting the event would exceed max_pending.
	ErrTooManyPending = errors.New("too many pending deliveries")
)
