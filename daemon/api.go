package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"hookd/client"
	"hookd/store"
)

// apiError is an error with the HTTP status and machine-readable code the
// API answers with. Every handler error goes through writeError, the one
// place that maps domain errors to statuses.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds; 0 for none
}

func (e *apiError) Error() string { return e.Message }

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: 400, Code: "invalid_request", Message: fmt.Sprintf(format, args...)}
}

var (
	errUnauthorized = &apiError{Status: 401, Code: "unauthorized", Message: "missing or wrong bearer token"}
	errNotFound     = &apiError{Status: 404, Code: "not_found", Message: "no such resource"}
	errShutdown     = &apiError{Status: 503, Code: "shutting_down", Message: "hookd is shutting down", RetryAfter: 5}
	errUnsupported  = &apiError{Status: 415, Code: "unsupported_media_type", Message: "Content-Type must be application/json"}
	errDiskLow      = &apiError{Status: 503, Code: "storage_full", Message: "free disk space is under storage.min_free_bytes; nothing was stored", RetryAfter: 30}
	errTooLarge     = &apiError{Status: 413, Code: "too_large", Message: "request body is over ingest.max_event_bytes"}
	errBusy         = &apiError{Status: 503, Code: "busy", Message: "ingest is working on ingest.max_inflight_bytes of requests; nothing was stored, retry shortly", RetryAfter: 1}
)

// reasonDisabled is why a delivery to a disabled endpoint is undeliverable.
const reasonDisabled = "endpoint disabled"

// unknownEndpoint is a 404 that names the endpoint, so a typo is not
// mistaken for an event that does not exist.
func unknownEndpoint(name string) *apiError {
	return &apiError{Status: 404, Code: "not_found", Message: fmt.Sprintf("endpoint %q: no such endpoint", name)}
}

func methodNotAllowed(allow string) *apiError {
	return &apiError{Status: 405, Code: "method_not_allowed", Message: "use " + allow}
}

// toAPIError maps an error from below to what the client sees. Storage
// details stay in the log; the client learns only what it can act on.
func toAPIError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrTooManyPending):
		return &apiError{Status: 429, Code: "too_many_pending", Message: "pending deliveries are over storage.max_pending; retry later", RetryAfter: 10}
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled):
		return errShutdown
	case errors.Is(err, store.ErrStorage):
		return &apiError{Status: 503, Code: "storage_unavailable", Message: "storage is not writable (disk full or I/O error); nothing was stored", RetryAfter: 5}
	}
	return &apiError{Status: 500, Code: "internal", Message: "internal error"}
}

func (d *Daemon) writeError(ctx *fasthttp.RequestCtx, err error) {
	ae := toAPIError(err)
	if ae.Status >= 500 {
		d.log.Error().Err(err).Str("path", string(ctx.Path())).Int("status", ae.Status).Msg("request failed")
	}
	if ae.RetryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", fmt.Sprint(ae.RetryAfter))
	}
	writeJSON(ctx, ae.Status, errorBody(ae))
}

func errorBody(ae *apiError) client.ErrorBody {
	return client.ErrorBody{Error: client.ErrorDetail{Code: ae.Code, Message: ae.Message}}
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// checkToken compares the bearer token in constant time. An empty token
// means none is required.
func checkToken(ctx *fasthttp.RequestCtx, token string) bool {
	if token == "" {
		return true
	}
	got, ok := strings.CutPrefix(string(ctx.Request.Header.Peek("Authorization")), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func isJSON(ct []byte) bool {
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(string(ct), ";", 2)[0]))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
