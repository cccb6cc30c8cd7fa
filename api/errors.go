package api

import (
	"context"
	"errors"

	"hookd/store"
)

// ErrShutdown answers a request that arrives while hookd stops.
var ErrShutdown = &Error{Status: 503, Code: "shutting_down", Message: "hookd is shutting down", RetryAfter: 5}

// ErrorOf maps an error from an operation to what a client sees. Storage
// details stay in the log; the client learns only what it can act on.
// Both HTTP layers answer with it.
func ErrorOf(err error) *Error {
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrTenantTooManyPending):
		return &Error{Status: 429, Code: "tenant_too_many_pending", Message: "this tenant's pending deliveries are over tenants.max_pending; retry later", RetryAfter: 10}
	case errors.Is(err, store.ErrTooManyPending):
		return &Error{Status: 429, Code: "too_many_pending", Message: "pending deliveries are over storage.max_pending; retry later", RetryAfter: 10}
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled):
		return ErrShutdown
	case errors.Is(err, store.ErrStorage):
		return &Error{Status: 503, Code: "storage_unavailable", Message: "storage is not writable (disk full or I/O error); nothing was stored", RetryAfter: 5}
	}
	return &Error{Status: 500, Code: "internal", Message: "internal error"}
}
