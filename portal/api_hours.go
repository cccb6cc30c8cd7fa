package portal

import "hookd/api"

// apiEndpointHours is GET /api/endpoints/{name}/hours: attempts per hour
// over the last 24 hours by outcome, oldest first, for the endpoint's
// chart.
func (s *Server) apiEndpointHours(r *request) error {
	h, err := s.ops.EndpointHours(r.sess.Scope, r.args[0])
	return api.Reply(r.ctx, 200, h, err)
}
