package client

import (
	"context"
	"encoding/json"
)

// EventType is one entry of the event type catalogue ([[event_types]]).
type EventType struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Example     json.RawMessage `json:"example,omitempty"`
}

// EventTypeList answers GET /v1/event-types (the whole catalogue, one page).
type EventTypeList struct {
	Items      []EventType `json:"items"`
	NextCursor string      `json:"next_cursor"`
}

// EventTypes returns the event type catalogue.
func (a *Admin) EventTypes(ctx context.Context) (*EventTypeList, error) {
	return call[EventTypeList](ctx, a.c, "GET", "/v1/event-types", nil)
}
