package portal

import (
	"bytes"
	"encoding/json"
	"slices"

	"hookd/api"
)

// decodeBody reads an optional JSON object body into v; an unknown field
// is a 400 naming it.
func decodeBody(r *request, v any) error {
	body := r.ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := api.DecodeObject(body, v); err != nil {
		return api.BadRequest("%v", err)
	}
	return nil
}

// noBody refuses a body on a route that takes none but an empty object
// (the admin API's noBody).
func noBody(r *request) error { return decodeBody(r, &struct{}{}) }

// customerFields are what a customer sets on an endpoint in the portal
// (SPEC §12); the rest comes from [defaults] and the platform's admin API.
var customerFields = map[string]bool{"url": true, "events": true, "description": true, "filter": true, "disabled": true}

// checkEndpointBody is the portal's policy for an endpoint create or
// patch body: a customer may set only customerFields. Whose endpoint it
// is, is not decided here: the operations put it in the session's
// tenant, whatever the body says. Operators at /ui/ send the admin body.
func checkEndpointBody(r *request, body []byte) error {
	if r.sess.Scope.All() {
		return nil
	}
	if err := api.CheckJSON(body); err != nil {
		return api.BadRequest("body: %v", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return api.BadRequest("body: must be a JSON object")
	}
	if _, ok := fields["tenant"]; ok {
		return api.BadRequest("tenant: cannot be set here")
	}
	var bad []string
	for k := range fields {
		if !customerFields[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return api.BadRequest("%s: cannot be set in the portal (only url, events, description, filter and disabled)", bad[0])
	}
	return nil
}

// query is a query parameter, copied: fasthttp reuses its buffers.
func query(r *request, name string) string { return string(r.ctx.QueryArgs().Peek(name)) }

// tenantQuery is ?tenant= for operators; a customer's is always its own
// (a tenant in the request is ignored, never obeyed).
func tenantQuery(r *request) string {
	if r.sess.Scope.All() {
		return query(r, "tenant")
	}
	return r.sess.Scope.Tenant()
}
