package tests

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"hookd/api"
	"hookd/client"
)

// The scoped operations are where tenant isolation lives: both HTTP
// layers only pass a scope. This test calls them directly as tenant A
// would, naming B's and the platform's things every way it can, and wants
// a 404 (never data) each time.
func TestScopedOperationsIsolateTenants(t *testing.T) {
	rcv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{}, endpoint("platform", rcv.URL+"/platform", `["*"]`, "")+
		endpoint("a_file", rcv.URL+"/a_file", `["*"]`, `tenant = "A"`), nil)
	ctx := context.Background()
	a, b := api.TenantScope("A"), api.TenantScope("B")
	for _, c := range []struct {
		sc   api.Scope
		body string
	}{{a, `{"name":"a_api","url":"` + rcv.URL + `/a_api","events":["*"]}`}, {b, `{"name":"b_api","url":"` + rcv.URL + `/b_api","events":["*"]}`}} {
		if _, err := d.CreateEndpoint(ctx, c.sc, []byte(c.body)); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	if ep, _ := d.Endpoint(api.AllTenants(), "b_api"); ep == nil || ep.Tenant != "B" {
		t.Fatalf("b_api was not created as B's: %+v", ep)
	}
	// A tenant in the body is refused, never obeyed.
	if _, err := d.CreateEndpoint(ctx, a, []byte(`{"tenant":"B","url":"`+rcv.URL+`/x","events":["*"]}`)); status(err) != 400 {
		t.Errorf("create as A with tenant B: %v, want 400", err)
	}
	// The zero scope owns nothing.
	var none api.Scope
	if _, err := d.CreateEndpoint(ctx, none, []byte(`{"url":"`+rcv.URL+`/x","events":["*"]}`)); status(err) != 404 {
		t.Errorf("create with the zero scope: %v, want 404", err)
	}
	if l, _ := d.Endpoints(none, client.EndpointQuery{}); len(l.Items) != 0 {
		t.Errorf("the zero scope lists %d endpoints", len(l.Items))
	}

	list, err := d.Endpoints(a, client.EndpointQuery{})
	if err != nil || len(list.Items) != 2 || list.Items[0].Name != "a_api" || list.Items[1].Name != "a_file" {
		t.Fatalf("A's endpoints: %+v %v", list, err)
	}
	if l, _ := d.Endpoints(a, client.EndpointQuery{Tenant: "B"}); len(l.Items) != 0 {
		t.Errorf("A asking for B's endpoints got %d", len(l.Items))
	}
	for _, name := range []string{"b_api", "platform", "hookd-notify", "A", "../b_api"} {
		checks := map[string]error{}
		_, checks["get"] = d.Endpoint(a, name)
		_, checks["patch"] = d.PatchEndpoint(ctx, a, name, []byte(`{"url":"`+rcv.URL+`/stolen"}`))
		_, checks["secret"] = d.EndpointSecret(a, name)
		_, checks["rotate"] = d.RotateSecret(ctx, a, name, client.RotateRequest{})
		_, checks["test"] = d.TestEndpoint(ctx, a, name, client.TestRequest{})
		_, checks["disable"] = d.SetDisabled(ctx, a, name, true)
		_, checks["hours"] = d.EndpointHours(a, name)
		_, checks["redeliver undeliverable"] = d.RedeliverUndeliverable(ctx, a, client.RedeliverUndeliverableRequest{Endpoint: name})
		checks["delete"] = d.DeleteEndpoint(ctx, a, name)
		for op, err := range checks {
			if status(err) != 404 {
				t.Errorf("A %s %q: %v, want 404", op, name, err)
			}
		}
	}
	// A config endpoint of A's is read-only through the API: 409.
	if _, err := d.PatchEndpoint(ctx, a, "a_file", []byte(`{"description":"x"}`)); status(err) != 409 {
		t.Errorf("A patching its config endpoint: %v, want 409", err)
	}

	// Events: A's event reaches A's two endpoints and the platform's; A
	// sees its own two deliveries only. B's event is not there for A.
	evA := d.Event(`{"type":"t.a","tenant":"A","data":{}}`)
	evB := d.Event(`{"type":"t.b","tenant":"B","data":{}}`)
	rcv.Wait(t, "/platform", 2)
	rcv.Wait(t, "/a_api", 1)
	ev, err := d.Daemon.Event(a, evA)
	if err != nil || len(ev.Deliveries) != 2 {
		t.Fatalf("A's event as A: %+v %v", ev, err)
	}
	for _, dl := range ev.Deliveries {
		if dl.Endpoint == "platform" {
			t.Errorf("A sees the platform endpoint's delivery of its event")
		}
	}
	if all, _ := d.Daemon.Event(api.AllTenants(), evA); len(all.Deliveries) != 3 {
		t.Errorf("operators see %d deliveries of A's event, want 3", len(all.Deliveries))
	}
	if _, err := d.Daemon.Event(a, evB); status(err) != 404 {
		t.Errorf("A reading B's event: %v, want 404", err)
	}
	if _, err := d.Redeliver(ctx, a, evB, client.RedeliverRequest{}); status(err) != 404 {
		t.Errorf("A redelivering B's event: %v, want 404", err)
	}
	if _, err := d.Redeliver(ctx, a, evA, client.RedeliverRequest{Endpoint: "platform"}); status(err) != 404 {
		t.Errorf("A redelivering its event to the platform endpoint: %v, want 404", err)
	}
	if _, err := d.Redeliver(ctx, a, evA, client.RedeliverRequest{Endpoint: "b_api"}); status(err) != 404 {
		t.Errorf("A redelivering its event to B's endpoint: %v, want 404", err)
	}
	// A's event sent to the platform endpoint alone is not A's to read or
	// to resend to its own endpoints.
	evP := d.Event(`{"type":"t.p","tenant":"A","endpoints":["platform"],"data":{"secret":"platform only"}}`)
	if _, err := d.Daemon.Event(a, evP); status(err) != 404 {
		t.Errorf("A reading its event routed to the platform only: %v, want 404", err)
	}
	for _, ep := range []string{"a_api", ""} {
		if _, err := d.Redeliver(ctx, a, evP, client.RedeliverRequest{Endpoint: ep}); status(err) != 404 {
			t.Errorf("A redelivering its platform-only event to %q: %v, want 404", ep, err)
		}
	}
	got, err := d.Redeliver(ctx, a, evA, client.RedeliverRequest{})
	if err != nil || len(got.Endpoints) != 2 {
		t.Errorf("A redelivering its event: %+v %v, want its 2 endpoints", got, err)
	}

	logA, err := d.Deliveries(a, client.DeliveryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range logA.Items {
		if it.Endpoint == "platform" || it.EventID == evB || it.Tenant != "A" {
			t.Errorf("A's deliveries log shows %+v", it)
		}
	}
	if len(logA.Items) != 2 {
		t.Errorf("A's deliveries log has %d items, want 2", len(logA.Items))
	}
	for _, q := range []client.DeliveryQuery{{Tenant: "B"}, {Endpoint: "b_api"}, {Endpoint: "platform"}} {
		if l, err := d.Deliveries(a, q); err != nil || len(l.Items) != 0 {
			t.Errorf("A's deliveries with %+v: %d items, %v", q, len(l.Items), err)
		}
	}
}

// status is the HTTP status an operation's error answers with; 0 for nil.
func status(err error) int {
	if err == nil {
		return 0
	}
	var ae *api.Error
	if !errors.As(api.ErrorOf(err), &ae) {
		panic(fmt.Sprint("not an api error: ", err))
	}
	return ae.Status
}
