package daemon

import (
	"crypto/subtle"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"hookd/api"
	"hookd/client"
)

// apiError is an error with the HTTP status and machine-readable code the
// API answers with, shared with the portal. Every handler error goes
// through writeError, the one place that maps domain errors to statuses.
type apiError = api.Error

var badRequest = api.BadRequest

var (
	errUnauthorized = &apiError{Status: 401, Code: "unauthorized", Message: "missing or wrong bearer token"}
	errNotFound     = api.ErrNotFound
	errShutdown     = api.ErrShutdown
	errUnsupported  = &apiError{Status: 415, Code: "unsupported_media_type", Message: "Content-Type must be application/json or application/*+json, with no charset but utf-8"}
	errEncoding     = &apiError{Status: 415, Code: "unsupported_media_type", Message: "Content-Encoding: not supported; send the body uncompressed"}
	errDiskLow      = &apiError{Status: 503, Code: "storage_full", Message: "free disk space is under storage.min_free_bytes; nothing was stored", RetryAfter: 30}
	errTooLarge     = &apiError{Status: 413, Code: "too_large", Message: "request body is over the listener's limit (ingest: ingest.max_event_bytes; admin: 1 MiB; portal: 64 KiB)"}
	// Readiness at max_pending, where ingest answers 429 too_many_pending.
	errPendingFull = &apiError{Status: 503, Code: "too_many_pending", Message: "pending deliveries are at storage.max_pending: events are refused until deliveries drain", RetryAfter: 10}
	errBusy        = &apiError{Status: 503, Code: "busy", Message: "ingest is working on ingest.max_inflight_bytes of requests; nothing was stored, retry shortly", RetryAfter: 1}
)

// unknownEndpoint is a 404 that names the endpoint, so a typo is not
// mistaken for an event that does not exist.
func unknownEndpoint(name string) *apiError {
	return &apiError{Status: 404, Code: "not_found", Message: fmt.Sprintf("endpoint %q: no such endpoint", name)}
}

// unknownEvent is unknownEndpoint's twin for events (one outside the
// scope included: the answer is the same as for one that never was).
func unknownEvent(id string) *apiError {
	return &apiError{Status: 404, Code: "not_found", Message: fmt.Sprintf("event %q: no such event", id)}
}

func methodNotAllowed(allow string) *apiError {
	return &apiError{Status: 405, Code: "method_not_allowed", Message: "use " + allow}
}

// toAPIError maps an error from below to what the client sees.
var toAPIError = api.ErrorOf

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

// checkToken compares the bearer token in constant time. An empty token
// means none is required. The scheme's name is case-insensitive (RFC 9110
// §11.1): "bearer" is Bearer too.
func checkToken(ctx *fasthttp.RequestCtx, token string) bool {
	if token == "" {
		return true
	}
	scheme, got, ok := strings.Cut(string(ctx.Request.Header.Peek("Authorization")), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

var writeJSON = api.WriteJSON
