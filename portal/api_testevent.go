package portal

import (
	"hookd/api"
	"hookd/client"
)

// apiTestEndpoint sends a signed test event to the endpoint now and
// answers the attempt (POST /api/endpoints/{name}/test).
func (s *Server) apiTestEndpoint(r *request) error {
	var in client.TestRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if err := api.NonEmpty(r.ctx.PostBody(), "type", "the endpoint's test type"); err != nil {
		return api.BadRequest("%v", err)
	}
	out, err := s.ops.TestEndpoint(r.ctx, r.sess.Scope, r.args[0], in)
	return api.Reply(r.ctx, 200, out, err)
}
