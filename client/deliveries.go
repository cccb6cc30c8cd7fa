package client

import (
	"context"
	"time"
)

// DeliveryQuery selects deliveries from GET /v1/deliveries, newest first.
// Since and Until take RFC 3339 times or a duration meaning that long ago
// ("1h"); empty fields do not filter.
type DeliveryQuery struct {
	Tenant, Endpoint, Status, Type, Since, Until string
	Limit                                        int
	Cursor                                       string
}

// DeliveryList answers GET /v1/deliveries.
type DeliveryList struct {
	Items      []LoggedDelivery `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// LoggedDelivery is one delivery of the log.
type LoggedDelivery struct {
	EventID     string       `json:"event_id"`
	Type        string       `json:"type"`
	Tenant      string       `json:"tenant,omitempty"`
	Endpoint    string       `json:"endpoint"`
	Status      string       `json:"status"` // pending, delivered or undeliverable
	Attempts    int          `json:"attempts"`
	CreatedAt   time.Time    `json:"created_at"`
	LastAttempt *LastAttempt `json:"last_attempt,omitempty"`
}

// LastAttempt is the newest attempt of a logged delivery.
type LastAttempt struct {
	At     time.Time `json:"at"`
	Status int       `json:"status"`
	Error  string    `json:"error,omitempty"`
}

// Deliveries returns a page of the deliveries log.
func (a *Admin) Deliveries(ctx context.Context, q DeliveryQuery) (*DeliveryList, error) {
	return call[DeliveryList](ctx, a.c, "GET", pagePath("/v1/deliveries", q.Limit, q.Cursor,
		"tenant", q.Tenant, "endpoint", q.Endpoint, "status", q.Status, "type", q.Type, "since", q.Since, "until", q.Until), nil)
}
