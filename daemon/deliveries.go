package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"hookd/api"
	"hookd/client"
	"hookd/config"
	"hookd/delivery"
	"hookd/store"
)

// The delivery and event operations, scoped. A tenant's scope holds its
// events' deliveries to its own endpoints: not its events' deliveries to
// platform endpoints, and nothing of other tenants.

// inScope returns a filter of endpoint ids for sc: nil for every tenant.
// A delivery to an endpoint no longer in the table (a deleted managed
// endpoint) is only the operators' to see.
func inScope(sc api.Scope, t *delivery.Table) func(id string) bool {
	if sc.All() {
		return nil
	}
	return func(id string) bool {
		ep := t.ByID(id)
		return ep != nil && !ep.Internal && sc.Owns(ep.Tenant)
	}
}

// resendable accepts the endpoints of the scope that are still in the
// table and enabled: a deleted or disabled endpoint's deliveries stay
// parked, since requeued they would only be parked again (and be counted
// as resent; a disabled one's are resent once it is enabled). skipped, if
// set, is told of each disabled endpoint of the scope it refuses.
func resendable(sc api.Scope, t *delivery.Table, skipped func(id string)) func(id string) bool {
	scope := inScope(sc, t) // a tenant's endpoints, looked up in the table
	if scope == nil {
		scope = func(id string) bool { return t.ByID(id) != nil }
	}
	return func(id string) bool {
		if !scope(id) {
			return false
		}
		if t.Disabled(id) {
			if skipped != nil {
				skipped(id)
			}
			return false
		}
		return true
	}
}

// errResendDisabled answers a resend to a disabled endpoint by name.
func errResendDisabled(name string) error {
	return &apiError{Status: 409, Code: "endpoint_disabled", Message: fmt.Sprintf("endpoint: %q is disabled, and what is resent to it is parked again; enable it first", name)}
}

// Deliveries is the deliveries log: newest first by the event's ingest
// time, filtered by tenant, endpoint, status, type and time range.
func (d *Daemon) Deliveries(sc api.Scope, q client.DeliveryQuery) (*client.DeliveryList, error) {
	limit, err := checkLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	if q.Tenant != "" && !config.ValidID(q.Tenant) {
		return nil, badRequest("tenant: %s", config.IDRule)
	}
	empty := &client.DeliveryList{Items: []client.LoggedDelivery{}}
	if !sc.All() {
		if q.Tenant != "" && q.Tenant != sc.Tenant() {
			return empty, nil
		}
		q.Tenant = sc.Tenant()
	}
	now := time.Now()
	t := d.sched.Table()
	sq := store.DeliveryQuery{Tenant: q.Tenant, Type: q.Type, Limit: limit, Cursor: q.Cursor, Endpoints: inScope(sc, t)}
	if q.Endpoint != "" {
		ep, err := d.endpointIn(sc, q.Endpoint)
		switch {
		case err == nil && (q.Tenant == "" || ep.Tenant == q.Tenant):
			sq.Endpoint = ep.ID
		case err != nil && sc.All():
			// No such endpoint now: the log names a deleted one by its
			// internal id (a removed config endpoint's is its name, or
			// name@tenant), and that id finds its deliveries, of the
			// tenant asked for if one is (the store applies both). A
			// tenant's view has none.
			sq.Endpoint = q.Endpoint
		default:
			return empty, nil
		}
	}
	if q.Status != "" {
		st, ok := map[string]store.State{"pending": store.Pending, "delivered": store.Delivered, "undeliverable": store.Undeliverable}[q.Status]
		if !ok {
			return nil, badRequest("status: must be pending, delivered or undeliverable")
		}
		sq.State = &st
	}
	for _, p := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", q.Since, &sq.Since}, {"until", q.Until, &sq.Until}} {
		if p.v != "" {
			at, err := config.TimeOrAgo(p.v, now)
			if err != nil {
				return nil, badRequest("%s: %v", p.name, err)
			}
			*p.dst = at
		}
	}
	if err := checkRange(sq.Since, sq.Until); err != nil {
		return nil, err
	}
	entries, next, _, err := d.store.DeliveryLog(sq)
	if errors.Is(err, store.ErrBadCursor) {
		return nil, badRequest("cursor: %v", err)
	} else if err != nil {
		return nil, err
	}
	out := &client.DeliveryList{Items: make([]client.LoggedDelivery, 0, len(entries)), NextCursor: next}
	for _, e := range entries {
		v := client.LoggedDelivery{EventID: e.EventID, Type: e.EventType, Tenant: e.Tenant, Endpoint: t.Name(e.Endpoint),
			Status: e.State.String(), Attempts: e.Attempts, CreatedAt: e.Created}
		if a := e.LastAttempt; a != nil {
			v.LastAttempt = &client.LastAttempt{At: a.At, Status: a.Status, Error: a.Error}
		}
		out.Items = append(out.Items, v)
	}
	return out, nil
}

// eventIn reads an event if sc may see it: a tenant sees only its own
// (and the zero scope none: Owns is false for it).
func (d *Daemon) eventIn(sc api.Scope, id string) (*store.Event, error) {
	ev, err := d.store.Event(id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !sc.Owns(ev.Tenant) {
		return nil, unknownEvent(id)
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// Event is an event with its deliveries in the scope and their attempts.
// A tenant sees its event only through its own endpoints' deliveries: one
// it sent to platform endpoints alone is not there for it.
func (d *Daemon) Event(sc api.Scope, id string) (*client.Event, error) {
	ev, ds, err := d.store.EventDetail(id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !sc.Owns(ev.Tenant) {
		return nil, unknownEvent(id)
	}
	if err != nil {
		return nil, err
	}
	out := &client.Event{ID: ev.ID, Type: ev.Type, CreatedAt: ev.Created, Tenant: ev.Tenant, Deliveries: []client.Delivery{}}
	if ev.Payload {
		out.Payload = ev.Raw
	} else {
		out.Data = ev.Raw
	}
	t := d.sched.Table()
	keep := inScope(sc, t)
	for _, dd := range ds {
		if keep != nil && !keep(dd.Endpoint) {
			continue
		}
		v := viewDelivery(t, dd.Delivery)
		for _, a := range dd.Attempts {
			v.History = append(v.History, viewAttempt(a))
		}
		out.Deliveries = append(out.Deliveries, v)
	}
	if keep != nil && len(out.Deliveries) == 0 {
		return nil, unknownEvent(id)
	}
	return out, nil
}

// Redeliver resends an event now: to one endpoint, or to every endpoint
// of the scope it has a delivery for.
func (d *Daemon) Redeliver(ctx context.Context, sc api.Scope, id string, in client.RedeliverRequest) (*client.Redelivered, error) {
	ev, err := d.eventIn(sc, id)
	if err != nil {
		return nil, err
	}
	t := d.sched.Table()
	var ids []string
	switch {
	case in.Endpoint != "":
		ep, err := d.resendTarget(sc, in.Endpoint)
		if err != nil {
			return nil, err // names it
		}
		if t.Disabled(ep.ID) {
			return nil, errResendDisabled(ep.Name)
		}
		if !ep.Internal && !ep.Reaches(ev.Tenant) {
			// Routing holds for operators too: never another tenant's
			// endpoint, nor a tenant's for an event without one.
			return nil, badRequest("endpoint: %v", fmt.Errorf("%w: %q", delivery.ErrNotRoutable, in.Endpoint))
		}
		// Operators may send an event to an endpoint added after it (the
		// redelivery creates that delivery); a tenant resends only what
		// was routed to its endpoints, and a notification only goes again
		// where it went.
		var create *store.NewDelivery
		if sc.All() && !ep.Internal {
			create = &store.NewDelivery{Endpoint: ep.ID, Body: ep.Render(ev)}
		}
		if ids, err = d.store.Redeliver(ctx, id, func(e string) bool { return e == ep.ID }, create); err != nil {
			return nil, err
		}
	default:
		disabled := ""
		keep := resendable(sc, t, func(e string) { disabled = e })
		if ids, err = d.store.Redeliver(ctx, id, keep, nil); err != nil {
			return nil, err
		}
		if len(ids) == 0 && disabled != "" {
			return nil, errResendDisabled(t.Name(disabled))
		}
	}
	if len(ids) == 0 && !sc.All() {
		if _, err := d.Event(sc, id); err != nil {
			return nil, err // not the tenant's to see: as if it did not exist
		}
		if in.Endpoint != "" {
			// The event is the tenant's, its endpoint too: name what is wrong.
			return nil, badRequest("endpoint: %q has no delivery of this event (an endpoint added after it is not sent it from here)", in.Endpoint)
		}
		return nil, unknownEvent(id)
	}
	out := &client.Redelivered{ID: id, Endpoints: make([]string, len(ids))}
	for i, id := range ids {
		out.Endpoints[i] = t.Name(id)
	}
	return out, nil
}

// RedeliverUndeliverable requeues parked deliveries: one endpoint's, or
// every endpoint's of the scope that is still in the table (resendable).
func (d *Daemon) RedeliverUndeliverable(ctx context.Context, sc api.Scope, in client.RedeliverUndeliverableRequest) (*client.RedeliveredUndeliverable, error) {
	if err := checkRange(in.Since, in.Until); err != nil {
		return nil, err
	}
	t := d.sched.Table()
	var keep func(string) bool
	switch {
	case in.Endpoint != "":
		ep, err := d.resendTarget(sc, in.Endpoint)
		if err != nil {
			return nil, err // names it
		}
		if t.Disabled(ep.ID) {
			return nil, errResendDisabled(ep.Name)
		}
		keep = func(id string) bool { return id == ep.ID }
	default:
		keep = resendable(sc, t, nil)
	}
	n, err := d.store.RedeliverUndeliverable(ctx, keep, in.Since, in.Until)
	if err != nil && n > 0 {
		// Requeued in chunks, each its own commit: the chunks before the
		// failure (the stop, a full disk) are made. Say so, rather than
		// an error that reads as nothing done; the same request again
		// requeues the rest. The cause stays in the log, as any error's.
		d.log.Error().Err(err).Int("requeued", n).Msg("bulk redeliver stopped")
		e := *api.ErrorOf(err)
		e.Message = fmt.Sprintf("%s: %d deliveries were requeued before the redelivery stopped, the rest are still undeliverable; send the same request again to requeue them",
			strings.TrimSuffix(e.Message, "; nothing was stored"), n)
		return nil, &e
	}
	if err != nil {
		return nil, err
	}
	return &client.RedeliveredUndeliverable{Redelivered: n}, nil
}

// checkRange refuses a time range that ends before it starts.
func checkRange(since, until time.Time) error {
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return badRequest("until: before since (an empty range is a mistake, not an answer)")
	}
	return nil
}
