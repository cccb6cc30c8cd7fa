package portal

import "hookd/api"

func (s *Server) apiEnableEndpoint(r *request) error  { return s.setDisabled(r, false) }
func (s *Server) apiDisableEndpoint(r *request) error { return s.setDisabled(r, true) }

func (s *Server) setDisabled(r *request, disabled bool) error {
	if err := noBody(r); err != nil {
		return err
	}
	out, err := s.ops.SetDisabled(r.ctx, r.sess.Scope, r.args[0], disabled)
	return api.Reply(r.ctx, 200, out, err)
}
