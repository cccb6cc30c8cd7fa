package portal

import (
	"hookd/api"
	"hookd/client"
)

func (s *Server) apiEndpoints(r *request) error {
	limit, err := api.Limit(r.ctx.QueryArgs().Peek("limit"))
	if err != nil {
		return err
	}
	out, err := s.ops.Endpoints(r.sess.Scope, client.EndpointQuery{Tenant: tenantQuery(r), Limit: limit, Cursor: query(r, "cursor")})
	return api.Reply(r.ctx, 200, out, err)
}

func (s *Server) apiEndpoint(r *request) error {
	out, err := s.ops.Endpoint(r.sess.Scope, r.args[0])
	return api.Reply(r.ctx, 200, out, err)
}

func (s *Server) apiCreateEndpoint(r *request) error {
	body := r.ctx.PostBody()
	if err := checkEndpointBody(r, body); err != nil {
		return err
	}
	out, err := s.ops.CreateEndpoint(r.ctx, r.sess.Scope, body)
	return api.Reply(r.ctx, 201, out, err)
}

func (s *Server) apiPatchEndpoint(r *request) error {
	body := r.ctx.PostBody()
	if err := checkEndpointBody(r, body); err != nil {
		return err
	}
	out, err := s.ops.PatchEndpoint(r.ctx, r.sess.Scope, r.args[0], body)
	return api.Reply(r.ctx, 200, out, err)
}

func (s *Server) apiDeleteEndpoint(r *request) error {
	if err := noBody(r); err != nil {
		return err
	}
	if err := s.ops.DeleteEndpoint(r.ctx, r.sess.Scope, r.args[0]); err != nil {
		return err
	}
	r.ctx.SetStatusCode(204)
	return nil
}
