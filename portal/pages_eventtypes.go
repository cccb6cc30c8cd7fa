package portal

import "hookd/client"

type eventTypesData struct {
	Items []client.EventType
}

// eventTypesPage is the platform's event type catalogue with each type's
// description and example.
func (s *Server) eventTypesPage(r *request) error {
	return s.render(r, 200, "event_types", "event-types", "Event types", eventTypesData{Items: s.ops.EventTypes().Items})
}
