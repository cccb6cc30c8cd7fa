package portal

import (
	"errors"
	"fmt"

	"hookd/api"
	"hookd/client"
)

var (
	errNoRoute      = &api.Error{Status: 404, Code: "not_found", Message: "no such page"}
	errNoSession    = &api.Error{Status: 401, Code: "unauthorized", Message: "no session or the session expired: open a new portal link"}
	errNoUISession  = &api.Error{Status: 401, Code: "unauthorized", Message: "log in at /ui/login with the admin token"}
	errPortalOff    = errors.New("the portal is off: set [portal] listen")
	errTokenInvalid = &api.Error{Status: 401, Code: "unauthorized", Message: "This link is not valid. Ask for a new one."}
	errTokenExpired = &api.Error{Status: 401, Code: "unauthorized", Message: "This link has expired. Ask for a new one."}
	errTokenUsed    = &api.Error{Status: 401, Code: "unauthorized", Message: "This link was already used. Ask for a new one."}
	errTokenRevoked = &api.Error{Status: 401, Code: "unauthorized", Message: "This link was revoked. Ask for a new one."}
)

// ErrPortalOff is Mint's error when there is no portal listener to log
// in to.
var ErrPortalOff = errPortalOff

func errForbidden(msg string) *api.Error {
	return &api.Error{Status: 403, Code: "forbidden", Message: msg}
}

// toAPIError maps an error to what the browser sees (as the admin API
// does) and reports whether it was expected. Storage details and anything
// unexpected stay in the log: the answer is "internal error", which
// echoes nothing, so no secret can leak through it.
func toAPIError(err error) (*api.Error, bool) {
	ae := api.ErrorOf(err)
	var known *api.Error
	return ae, errors.As(err, &known) || ae.Status != 500
}

// fail answers err: JSON on /api/, the error page elsewhere.
func (s *Server) fail(r *request, isAPI bool, err error) {
	ae, known := toAPIError(err)
	if !known || ae.Status >= 500 {
		// The path names the resource, never a secret: tokens travel in
		// the query, which is not logged.
		s.log.Error().Err(err).Str("path", string(r.ctx.Path())).Int("status", ae.Status).Msg("portal request failed")
	}
	if ae.RetryAfter > 0 {
		r.ctx.Response.Header.Set("Retry-After", fmt.Sprint(ae.RetryAfter))
	}
	if isAPI {
		writeJSON(r.ctx, ae.Status, client.ErrorBody{Error: client.ErrorDetail{Code: ae.Code, Message: ae.Message}})
		return
	}
	if err := s.render(r, ae.Status, "error", "", pageTitle(ae.Status), ae); err != nil {
		r.ctx.Error(ae.Message, ae.Status) // the templates are embedded: not expected
	}
}

func (s *Server) methodNotAllowed(r *request, isAPI bool, allow string) {
	r.ctx.Response.Header.Set("Allow", allow)
	s.fail(r, isAPI, &api.Error{Status: 405, Code: "method_not_allowed", Message: "use " + allow})
}

func pageTitle(status int) string {
	switch status {
	case 401:
		return "Not signed in"
	case 403:
		return "Not allowed"
	case 404:
		return "Not found"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return "Bad request"
}

var writeJSON = api.WriteJSON
