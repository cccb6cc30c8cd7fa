package daemon

import (
	"context"
	"fmt"

	"github.com/valyala/fasthttp"

	"hookd/api"
	"hookd/client"
	"hookd/delivery"
)

// adminTenants lists the tenants that have endpoints, by id, a page at a
// time, with counts over their endpoints (config and managed).
func (d *Daemon) adminTenants(ctx *fasthttp.RequestCtx, _ []string) error {
	q := ctx.QueryArgs()
	limit, err := api.Limit(q.Peek("limit"))
	if err != nil {
		return err
	}
	limit, _ = checkLimit(limit)
	t := d.sched.Table()
	names := t.Tenants(string(q.Peek("cursor")), limit+1)
	next := ""
	if len(names) > limit {
		names, next = names[:limit], names[limit-1]
	}
	var ids []string
	eps := make([][]*delivery.Endpoint, len(names))
	for i, name := range names {
		eps[i] = t.TenantEndpoints(name)
		for _, ep := range eps[i] {
			ids = append(ids, ep.ID)
		}
	}
	pending, parked, stats := d.store.PendingEach(ids), d.store.UndeliverableEach(ids), d.sched.StatsOf(ids)
	after := d.cfg.Load().Notify.FailingAfter
	out := client.TenantList{Items: []client.Tenant{}, NextCursor: next}
	for i, name := range names {
		v := client.Tenant{Tenant: name, Endpoints: len(eps[i])}
		for _, ep := range eps[i] {
			v.Pending += pending[ep.ID]
			v.Undeliverable += parked[ep.ID]
			if stats[ep.ID].Failures >= after && !t.Disabled(ep.ID) {
				v.FailingEndpoints++
			}
		}
		out.Items = append(out.Items, v)
	}
	writeJSON(ctx, 200, out)
	return nil
}

// adminDeleteTenant deletes a tenant's managed endpoints (their pending
// deliveries become undeliverable, "endpoint deleted") and ends its portal
// sessions, first, so no customer acts on the tenant while its endpoints
// go; its config endpoints stay, and the answer lists them. A tenant with
// neither endpoints nor sessions is a 404.
func (d *Daemon) adminDeleteTenant(ctx *fasthttp.RequestCtx, args []string) error {
	if err := noBody(ctx); err != nil {
		return err
	}
	tenant := args[0]
	revoked, err := d.portal.srv.RevokeTenant(ctx, tenant)
	if err != nil {
		return err
	}
	out, removed, err := d.removeTenant(ctx, tenant, revoked)
	if len(removed) > 0 {
		d.parkDeleted(ctx, removed...)
	}
	if err != nil {
		return err
	}
	writeJSON(ctx, 200, out)
	return nil
}

// removeTenant is adminDeleteTenant's part under the managed set: the
// tenant's managed endpoints removed (those it could), their deliveries
// not yet parked.
func (d *Daemon) removeTenant(ctx context.Context, tenant string, revoked int) (*client.DeletedTenant, []*delivery.Endpoint, error) {
	d.managed.mu.Lock()
	defer d.managed.mu.Unlock()
	inFlight := 0
	for name, t := range d.managed.reserved {
		if t == tenant { // a create committing: it takes its endpoint back
			if d.managed.doomed == nil {
				d.managed.doomed = map[string]bool{}
			}
			d.managed.doomed[name] = true
			inFlight++
		}
	}
	eps := d.sched.Table().TenantEndpoints(tenant)
	if len(eps) == 0 && revoked == 0 && inFlight == 0 {
		// Its portal links, if it had any, are revoked all the same.
		return nil, nil, &apiError{Status: 404, Code: "not_found", Message: fmt.Sprintf("tenant %q: no endpoints and no portal sessions", tenant)}
	}
	out := client.DeletedTenant{Tenant: tenant, Deleted: []string{}, Kept: []string{}}
	var managed []*delivery.Endpoint
	for _, ep := range eps {
		if m := d.sched.Table().Managed(ep.Name); m != nil {
			managed = append(managed, m)
			out.Deleted = append(out.Deleted, ep.Name)
		} else {
			out.Kept = append(out.Kept, ep.Name)
		}
	}
	// Together, so that they share commits: one after the other, a
	// tenant's hundred endpoints took a hundred, holding every managed
	// endpoint's change meanwhile.
	errs := make([]error, len(managed))
	together(len(managed), func(i int) { errs[i] = d.removeManaged(ctx, managed[i], nil) })
	var removed []*delivery.Endpoint
	var failed error
	for i, err := range errs {
		if err == nil {
			removed = append(removed, managed[i])
		} else if failed == nil {
			failed = err
		}
	}
	if failed != nil {
		return nil, removed, failed
	}
	return &out, removed, nil
}
