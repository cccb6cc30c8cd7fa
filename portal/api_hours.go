package portal

import "time"

// Hours is GET /api/endpoints/{name}/hours: attempts per hour over the
// last 24 hours by outcome, oldest first, for the endpoint's chart.
type Hours struct {
	Start     time.Time `json:"start"`
	Delivered [24]int   `json:"delivered"`
	Failed    [24]int   `json:"failed"`
}

func (s *Server) apiEndpointHours(r *request) error {
	h, err := s.ops.EndpointHours(r.sess.Scope, r.args[0])
	if err != nil {
		return err
	}
	writeJSON(r.ctx, 200, Hours{Start: h.Start, Delivered: h.Delivered, Failed: h.Failed})
	return nil
}
