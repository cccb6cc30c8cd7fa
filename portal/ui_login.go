package portal

import (
	"crypto/subtle"
	"encoding/json"

	"github.com/valyala/fasthttp"

	"hookd/api"
)

// uiLogin is POST /ui/login: the admin token, form-encoded (token=…) or
// JSON ({"token":…}), becomes an operator's session. A browser cannot
// send the bearer token, so /ui/ asks for it once. The request must come
// from the UI's own origin (no login CSRF); there is no session yet to
// hold a CSRF token.
func (s *Server) uiLogin(r *request) {
	want := s.conf().AdminToken()
	h := &r.ctx.Request.Header
	asJSON := api.IsJSON(h.ContentType())
	if !s.sameOrigin(r) {
		s.uiLoginFail(r, asJSON, 403, errForbidden("Origin: the request does not come from this site"))
		return
	}
	var got string
	if asJSON {
		var in struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(r.ctx.PostBody(), &in); err != nil {
			s.fail(r, true, api.BadRequest("body: must be a JSON object with the token"))
			return
		}
		got = in.Token
	} else {
		got = string(r.ctx.PostArgs().Peek("token"))
	}
	if want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		s.uiLoginFail(r, asJSON, 401, errNoUISession)
		return
	}
	if err := s.startSession(r, operatorSession(), nil, want); err != nil {
		s.fail(r, asJSON, err)
		return
	}
	if asJSON {
		r.ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	seeOther(r.ctx, "/ui/endpoints")
}

func (s *Server) uiLoginFail(r *request, asJSON bool, status int, err error) {
	if asJSON {
		s.fail(r, true, err)
		return
	}
	msg := "That is not the admin token."
	if status == 403 {
		msg = "Log in from this page."
	}
	if err := s.render(r, status, "login", "", "Log in", msg); err != nil {
		s.fail(r, false, err)
	}
}
