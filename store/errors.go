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
	// ErrBadCursor: a page cursor this query did not return (another
	// query's, or made up).
	ErrBadCursor = errors.New("bad cursor: not one this query returned")
	// ErrExists: a managed endpoint with that name exists.
	ErrExists = errors.New("already exists")
	// ErrKeyUsed: a create within IdempotencyWindow recorded that
	// Idempotency-Key.
	ErrKeyUsed = errors.New("idempotency key already used")
	// ErrTooManyPending: accepting the event would exceed max_pending.
	ErrTooManyPending = errors.New("too many pending deliveries")
	// ErrTenantTooManyPending: accepting the event would take its tenant's
	// endpoints past their Quota.
	ErrTenantTooManyPending = errors.New("too many pending deliveries for the tenant")
)

// Errors of Open about the secrets key (see sealing.go).
var (
	// ErrSealKeyMissing: the database's secrets are sealed and no key was
	// given. Starting would leave every managed endpoint without its secret.
	ErrSealKeyMissing = errors.New("the database's secrets are sealed and no secrets key is set: set [storage] secrets_key_file to the key that sealed them")
	// ErrSealKeyWrong: the key given is not the one that sealed the
	// database. hookd never re-seals with another key: the secrets could
	// not be read to do so.
	ErrSealKeyWrong = errors.New("the secrets key is not the one that sealed the database's secrets: set [storage] secrets_key_file to that key's file")
)
