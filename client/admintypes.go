package client

import (
	"encoding/json"
	"time"
)

// The admin API's request and response bodies. The daemon's handlers
// build their answers from these types; JSON names and shapes are part
// of the API.

// Attempt is one try to deliver an event to an endpoint.
type Attempt struct {
	N         int       `json:"n"` // 1 for the first attempt
	At        time.Time `json:"at"`
	Status    int       `json:"status"` // HTTP status; 0 when no answer came
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	// Response is the start of the receiver's body: JSON when it was, a
	// JSON string otherwise.
	Response json.RawMessage `json:"response,omitempty"`
}

// Delivery is an event's delivery to one endpoint. Which time is set
// depends on State: NextAttempt for pending, DeliveredAt for delivered,
// ParkedAt for undeliverable.
type Delivery struct {
	Endpoint    string     `json:"endpoint"`
	State       string     `json:"state"` // pending, delivered or undeliverable
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	ParkedAt    *time.Time `json:"parked_at,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	// History is every attempt, oldest first (Event only).
	History []Attempt `json:"history,omitempty"`
	// LastAttempt is the most recent attempt (ParkedDelivery only).
	LastAttempt *Attempt `json:"last_attempt,omitempty"`
}

// Event is GET /v1/events/{id}: the event, its deliveries and their
// attempts. Exactly one of Data and Payload is set, as it was posted.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	CreatedAt  time.Time       `json:"created_at"`
	Tenant     string          `json:"tenant,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Deliveries []Delivery      `json:"deliveries"`
}

// RedeliverRequest is the body of POST /v1/events/{id}/redeliver. An
// empty Endpoint resends to every endpoint the event had.
type RedeliverRequest struct {
	Endpoint string `json:"endpoint,omitempty"`
}

// Redelivered answers POST /v1/events/{id}/redeliver.
type Redelivered struct {
	ID        string   `json:"id"`
	Endpoints []string `json:"endpoints"`
}

// UndeliverableQuery selects a page of GET /v1/undeliverable.
type UndeliverableQuery struct {
	Endpoint string // "" for all
	Limit    int    // 1-1000; 0 for the daemon's default (100)
	Cursor   string // NextCursor of the previous page
}

// UndeliverablePage answers GET /v1/undeliverable, oldest first.
type UndeliverablePage struct {
	Items []ParkedDelivery `json:"items"`
	// NextCursor fetches the next page; "" on the last one.
	NextCursor string `json:"next_cursor"`
}

// ParkedDelivery is an undeliverable delivery with its event and last
// attempt.
type ParkedDelivery struct {
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	CreatedAt time.Time `json:"created_at"`
	Delivery
}

// RedeliverUndeliverableRequest is the body of POST
// /v1/undeliverable/redeliver. Zero fields do not narrow the selection.
type RedeliverUndeliverableRequest struct {
	Endpoint string    `json:"endpoint,omitempty"`
	Since    time.Time `json:"since,omitzero"` // parked at or after
	Until    time.Time `json:"until,omitzero"` // parked at or before
}

// RedeliveredUndeliverable answers POST /v1/undeliverable/redeliver.
type RedeliveredUndeliverable struct {
	Redelivered int `json:"redelivered"`
}

// EndpointList answers GET /v1/endpoints: a page, like every list.
type EndpointList struct {
	Items      []Endpoint `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

// EndpointQuery selects a page of endpoints; an empty Tenant means all.
type EndpointQuery struct {
	Tenant string
	Limit  int
	Cursor string
}

// Endpoint is an endpoint's configuration (never its secrets) and state.
type Endpoint struct {
	Name string `json:"name"`
	// ID is the endpoint's internal id (a config endpoint's name, or
	// name@tenant for a tenant's; m: and a base-36 number, or m:<ulid> if
	// made before 2026-11-26, for a managed one). Deliveries
	// belong to it: those of an endpoint no longer there show it in place
	// of the name.
	ID          string            `json:"id"`
	Source      string            `json:"source"` // config (the file) or api (managed)
	Tenant      string            `json:"tenant,omitempty"`
	Description string            `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	URL         string            `json:"url"`
	Events      []string          `json:"events"`
	// State is active, failing (failing_after consecutive failed
	// attempts) or disabled (410 Gone or an operator).
	State          string `json:"state"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	// DisabledBy is who disabled it: "operator" (the platform: its
	// customer cannot enable it), "tenant" or "hookd" (a 410 Gone or
	// disable_after); absent for a disable stored before hookd recorded who.
	DisabledBy          string     `json:"disabled_by,omitempty"`
	Scheme              string     `json:"signing_scheme"`
	Pending             int64      `json:"pending"`
	InFlight            int        `json:"in_flight"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastSuccess         *time.Time `json:"last_success_at,omitempty"`
	LastFailure         *time.Time `json:"last_failure_at,omitempty"`
	LastFailureStatus   int        `json:"last_failure_status,omitempty"`
	LastFailureError    string     `json:"last_failure_error,omitempty"`
	// Ordering is none or fifo (one delivery at a time, in acknowledgement
	// order).
	Ordering string `json:"ordering"`
	// Filter is the expression events must satisfy; empty for none.
	Filter string `json:"filter,omitempty"`
	// BlockedSince is set while a fifo endpoint's first delivery keeps
	// failing and holds back the others: since its first failed attempt.
	BlockedSince *time.Time `json:"blocked_since,omitempty"`
	// Settings are a managed endpoint's settings as set through the API
	// (an EndpointSettings object, without its secret; what is absent
	// comes from [defaults]), in the admin API's answers about one
	// endpoint: get, create and patch.
	Settings json.RawMessage `json:"settings,omitempty"`
}

// TestRequest is the body of POST /v1/endpoints/{name}/test. An empty Type
// means the endpoint's test_event_type, nil Data a generated test object.
type TestRequest struct {
	Type string          `json:"type,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// TestResult answers POST /v1/endpoints/{name}/test with the one attempt
// made. OK means the receiver answered 2xx.
type TestResult struct {
	ID       string  `json:"id"`
	Endpoint string  `json:"endpoint"`
	OK       bool    `json:"ok"`
	Attempt  Attempt `json:"attempt"`
}

// CreatedEndpoint answers POST /v1/endpoints: the endpoint and its secret,
// shown this once (GET /v1/endpoints/{name}/secret reads it back).
type CreatedEndpoint struct {
	Endpoint
	Secret string `json:"secret,omitempty"`
}

// Secrets answers GET /v1/endpoints/{name}/secret.
type Secrets struct {
	Secret   string           `json:"secret"`
	Previous []PreviousSecret `json:"previous"`
}

// PreviousSecret is a rotated-out secret that signs until ExpiresAt.
type PreviousSecret struct {
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

// RotateRequest is the body of POST /v1/endpoints/{name}/rotate-secret.
// An empty Secret has one generated; Overlap (default "24h", "0s" = at
// once) is how long the old standard secrets keep signing (every one
// the rotation replaces: an earlier longer overlap is cut to it).
type RotateRequest struct {
	Secret  string `json:"secret,omitempty"`
	Overlap string `json:"overlap,omitempty"`
}

// Rotated answers a rotation with the new secret.
type Rotated struct {
	Secret string `json:"secret"`
}

// EndpointState answers POST /v1/endpoints/{name}/enable and /disable.
type EndpointState struct {
	Name  string `json:"name"`
	State string `json:"state"` // active or disabled
}

// TenantQuery selects a page of GET /v1/tenants.
type TenantQuery struct {
	Limit  int // 1-1000; 0 for the daemon's default (100)
	Cursor string
}

// TenantList answers GET /v1/tenants: the tenants that have endpoints.
type TenantList struct {
	Items      []Tenant `json:"items"`
	NextCursor string   `json:"next_cursor"`
}

// Tenant is one tenant with the counts over its endpoints, config and
// managed.
type Tenant struct {
	Tenant           string `json:"tenant"`
	Endpoints        int    `json:"endpoints"`
	Pending          int64  `json:"pending"`
	Undeliverable    int64  `json:"undeliverable"`
	FailingEndpoints int    `json:"failing_endpoints"`
}

// DeletedTenant answers DELETE /v1/tenants/{tenant}: the managed endpoints
// deleted and the config endpoints kept (change the file to remove them).
type DeletedTenant struct {
	Tenant  string   `json:"tenant"`
	Deleted []string `json:"deleted"`
	Kept    []string `json:"kept"`
}
