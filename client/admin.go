package client

import (
	"context"
	"net/url"
	"strconv"
)

// Admin is a client for the admin API. It is safe for concurrent use.
type Admin struct {
	c *conn
}

// NewAdmin returns a client for the admin API at baseURL: host:port (as in
// [admin] listen), unix:/path, or an http(s):// URL.
func NewAdmin(baseURL string, o Options) *Admin {
	return &Admin{c: newConn(baseURL, o)}
}

// Event returns an event with its deliveries and every attempt.
func (a *Admin) Event(ctx context.Context, id string) (*Event, error) {
	return call[Event](ctx, a.c, "GET", "/v1/events/"+url.PathEscape(id), nil)
}

// Redeliver queues an event again, delivered or not.
func (a *Admin) Redeliver(ctx context.Context, id string, r RedeliverRequest) (*Redelivered, error) {
	return call[Redelivered](ctx, a.c, "POST", "/v1/events/"+url.PathEscape(id)+"/redeliver", r)
}

// Undeliverable returns a page of parked deliveries.
func (a *Admin) Undeliverable(ctx context.Context, q UndeliverableQuery) (*UndeliverablePage, error) {
	return call[UndeliverablePage](ctx, a.c, "GET", pagePath("/v1/undeliverable", q.Limit, q.Cursor, "endpoint", q.Endpoint), nil)
}

// RedeliverUndeliverable queues the parked deliveries r selects again.
func (a *Admin) RedeliverUndeliverable(ctx context.Context, r RedeliverUndeliverableRequest) (*RedeliveredUndeliverable, error) {
	return call[RedeliveredUndeliverable](ctx, a.c, "POST", "/v1/undeliverable/redeliver", r)
}

// Endpoints returns a page of endpoints with their state.
func (a *Admin) Endpoints(ctx context.Context, q EndpointQuery) (*EndpointList, error) {
	return call[EndpointList](ctx, a.c, "GET", pagePath("/v1/endpoints", q.Limit, q.Cursor, "tenant", q.Tenant), nil)
}

// Test sends a signed test event to an endpoint now, outside the queue.
// A receiver that fails is not an error: see TestResult.OK.
func (a *Admin) Test(ctx context.Context, endpoint string, r TestRequest) (*TestResult, error) {
	return call[TestResult](ctx, a.c, "POST", "/v1/endpoints/"+url.PathEscape(endpoint)+"/test", r)
}

// Enable turns a disabled endpoint back on.
func (a *Admin) Enable(ctx context.Context, endpoint string) (*EndpointState, error) {
	return call[EndpointState](ctx, a.c, "POST", "/v1/endpoints/"+url.PathEscape(endpoint)+"/enable", nil)
}

// Disable stops deliveries to an endpoint and parks its pending ones.
func (a *Admin) Disable(ctx context.Context, endpoint string) (*EndpointState, error) {
	return call[EndpointState](ctx, a.c, "POST", "/v1/endpoints/"+url.PathEscape(endpoint)+"/disable", nil)
}

// pagePath is a list route with its query: limit and cursor, and filters
// as name, value pairs; empty values are left out.
func pagePath(path string, limit int, cursor string, filters ...string) string {
	v := url.Values{}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	filters = append(filters, "cursor", cursor)
	for i := 0; i+1 < len(filters); i += 2 {
		if filters[i+1] != "" {
			v.Set(filters[i], filters[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// call does one request and returns its decoded answer.
func call[T any](ctx context.Context, c *conn, method, path string, in any) (*T, error) {
	var out T
	if err := c.do(ctx, method, path, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
