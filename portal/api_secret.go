package portal

import "hookd/client"

// apiEndpointSecret reveals the signing secrets (the customer verifies
// signatures with them). Only the answer carries them: never a log line.
func (s *Server) apiEndpointSecret(r *request) error {
	out, err := s.ops.EndpointSecret(r.sess.Scope, r.args[0])
	if err != nil {
		return err
	}
	writeJSON(r.ctx, 200, out)
	return nil
}

func (s *Server) apiRotateSecret(r *request) error {
	var in client.RotateRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := s.ops.RotateSecret(r.ctx, r.sess.Scope, r.args[0], in)
	if err != nil {
		return err
	}
	writeJSON(r.ctx, 200, out)
	return nil
}
