package portal

import (
	"time"

	"hookd/api"
)

// maxCustomerOverlap bounds how long a customer's old secret keeps
// signing after a rotation: each one signs every request meanwhile.
const maxCustomerOverlap = 24 * time.Hour

// apiEndpointSecret reveals the signing secrets (the customer verifies
// signatures with them). Only the answer carries them: never a log line.
func (s *Server) apiEndpointSecret(r *request) error {
	out, err := s.ops.EndpointSecret(r.sess.Scope, r.args[0])
	return api.Reply(r.ctx, 200, out, err)
}

// apiRotateSecret rotates the signing secret. A customer gets a secret
// hookd generates, and the old one signs alongside for at most a day
// (SPEC §12: 24 h by default); operators at /ui/ may set either.
func (s *Server) apiRotateSecret(r *request) error {
	var in api.RotateBody
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if !r.sess.Scope.All() {
		if in.Secret != nil {
			return api.BadRequest("secret: hookd generates it; it cannot be set here")
		}
	}
	req, err := in.Request()
	if err != nil {
		return err
	}
	if !r.sess.Scope.All() {
		if v, err := time.ParseDuration(req.Overlap); req.Overlap != "" && (err != nil || v > maxCustomerOverlap) {
			return api.BadRequest("overlap: a duration of at most %s", maxCustomerOverlap)
		}
	}
	out, err := s.ops.RotateSecret(r.ctx, r.sess.Scope, r.args[0], req)
	return api.Reply(r.ctx, 200, out, err)
}
