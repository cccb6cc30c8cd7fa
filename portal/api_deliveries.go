package portal

import (
	"hookd/api"
	"hookd/client"
)

// apiDeliveries is the deliveries log, newest first, with the admin
// route's query parameters; a customer's is fixed to its tenant.
func (s *Server) apiDeliveries(r *request) error {
	limit, err := api.Limit(r.ctx.QueryArgs().Peek("limit"))
	if err != nil {
		return err
	}
	q := client.DeliveryQuery{Tenant: tenantQuery(r), Endpoint: query(r, "endpoint"), Status: query(r, "status"),
		Type: query(r, "type"), Since: query(r, "since"), Until: query(r, "until"), Limit: limit, Cursor: query(r, "cursor")}
	out, err := s.ops.Deliveries(r.sess.Scope, q)
	return api.Reply(r.ctx, 200, out, err)
}

func (s *Server) apiEvent(r *request) error {
	out, err := s.ops.Event(r.sess.Scope, r.args[0])
	return api.Reply(r.ctx, 200, out, err)
}

func (s *Server) apiRedeliver(r *request) error {
	var in client.RedeliverRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if err := api.RedeliverNamed(r.ctx.PostBody()); err != nil {
		return api.BadRequest("%v", err)
	}
	out, err := s.ops.Redeliver(r.ctx, r.sess.Scope, r.args[0], in)
	return api.Reply(r.ctx, 202, out, err)
}

func (s *Server) apiRedeliverUndeliverable(r *request) error {
	var body api.UndeliverableRedeliver
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if err := api.RedeliverNamed(r.ctx.PostBody()); err != nil {
		return api.BadRequest("%v", err)
	}
	in, err := body.Request(s.now())
	if err != nil {
		return err
	}
	out, err := s.ops.RedeliverUndeliverable(r.ctx, r.sess.Scope, in)
	return api.Reply(r.ctx, 202, out, err)
}

func (s *Server) apiEventTypes(r *request) error {
	writeJSON(r.ctx, 200, s.ops.EventTypes())
	return nil
}
