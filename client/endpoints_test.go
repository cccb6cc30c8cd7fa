package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// Each call sends the method, path and body the admin API documents and
// decodes its answer; a 204 has no body to decode.
func TestEndpointCalls(t *testing.T) {
	type seen struct{ method, uri, body string }
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.RequestURI(), string(b)})
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/endpoints":
			w.WriteHeader(201)
			io.WriteString(w, `{"name":"ep_1","id":"m:1","source":"api","url":"https://x","events":["*"],"state":"active","signing_scheme":"standard","secret":"whsec_a"}`)
		case "GET /v1/endpoints/ep_1", "PATCH /v1/endpoints/ep_1":
			io.WriteString(w, `{"name":"ep_1","url":"https://y","events":["a"],"state":"disabled"}`)
		case "DELETE /v1/endpoints/ep_1":
			w.WriteHeader(204)
		case "GET /v1/endpoints/ep_1/secret":
			io.WriteString(w, `{"secret":"whsec_b","previous":[{"secret":"whsec_a","expires_at":"2026-11-26T09:00:00Z"}]}`)
		case "POST /v1/endpoints/ep_1/rotate-secret":
			io.WriteString(w, `{"secret":"whsec_b"}`)
		case "GET /v1/tenants":
			io.WriteString(w, `{"items":[{"tenant":"wgt:1","endpoints":2,"pending":5,"undeliverable":1,"failing_endpoints":1}],"next_cursor":"c2"}`)
		case "DELETE /v1/tenants/wgt:1":
			io.WriteString(w, `{"tenant":"wgt:1","deleted":["ep_1"],"kept":["crm"]}`)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	a, ctx := NewAdmin(srv.URL, Options{}), context.Background()

	empty := []string{}
	created, err := a.CreateEndpoint(ctx, EndpointRequest{URL: "https://x", Events: []string{"*"}, Tenant: "wgt:1",
		Signing: &SigningRequest{Scheme: "standard", Prefix: new("")}, Schedule: &empty, Timeout: "10s"})
	if err != nil || created.Name != "ep_1" || created.Secret != "whsec_a" || created.Source != "api" {
		t.Fatalf("create: %+v %v", created, err)
	}
	if ep, err := a.Endpoint(ctx, "ep_1"); err != nil || ep.URL != "https://y" {
		t.Fatalf("get: %+v %v", ep, err)
	}
	if ep, err := a.PatchEndpoint(ctx, "ep_1", map[string]any{"disabled": true, "timeout": nil}); err != nil || ep.State != "disabled" {
		t.Fatalf("patch: %+v %v", ep, err)
	}
	if _, err := a.PatchEndpoint(ctx, "ep_1", nil); err != nil {
		t.Fatalf("empty patch: %v", err)
	}
	if err := a.DeleteEndpoint(ctx, "ep_1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	sec, err := a.EndpointSecret(ctx, "ep_1")
	if err != nil || sec.Secret != "whsec_b" || len(sec.Previous) != 1 || !sec.Previous[0].ExpiresAt.Equal(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("secret: %+v %v", sec, err)
	}
	if rot, err := a.RotateSecret(ctx, "ep_1", RotateRequest{Overlap: "0s"}); err != nil || rot.Secret != "whsec_b" {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	tl, err := a.Tenants(ctx, TenantQuery{Limit: 10, Cursor: "c1"})
	if err != nil || tl.NextCursor != "c2" || !reflect.DeepEqual(tl.Items, []Tenant{{Tenant: "wgt:1", Endpoints: 2, Pending: 5, Undeliverable: 1, FailingEndpoints: 1}}) {
		t.Fatalf("tenants: %+v %v", tl, err)
	}
	dt, err := a.DeleteTenant(ctx, "wgt:1")
	if err != nil || !reflect.DeepEqual(dt, &DeletedTenant{Tenant: "wgt:1", Deleted: []string{"ep_1"}, Kept: []string{"crm"}}) {
		t.Fatalf("delete tenant: %+v %v", dt, err)
	}

	want := []seen{
		{"POST", "/v1/endpoints", `{"tenant":"wgt:1","url":"https://x","events":["*"],"signing":{"scheme":"standard","prefix":""},"timeout":"10s","schedule":[]}`},
		{"GET", "/v1/endpoints/ep_1", ""},
		{"PATCH", "/v1/endpoints/ep_1", `{"disabled":true,"timeout":null}`},
		{"PATCH", "/v1/endpoints/ep_1", `{}`},
		{"DELETE", "/v1/endpoints/ep_1", ""},
		{"GET", "/v1/endpoints/ep_1/secret", ""},
		{"POST", "/v1/endpoints/ep_1/rotate-secret", `{"overlap":"0s"}`},
		{"GET", "/v1/tenants?cursor=c1&limit=10", ""},
		{"DELETE", "/v1/tenants/wgt:1", ""},
	}
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w seen
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("request %d:\ngot  %+v\nwant %+v", i, g, w)
			}
		}
	}
	var back EndpointRequest
	if err := json.Unmarshal([]byte(want[0].body), &back); err != nil || back.Schedule == nil || len(*back.Schedule) != 0 {
		t.Errorf("an empty schedule must survive a round trip: %+v %v", back, err)
	}
}
