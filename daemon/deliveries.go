package daemon

import (
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"hookd/client"
	"hookd/store"
)

// adminDeliveries is the deliveries log: newest first by the event's
// ingest time, filtered by tenant, endpoint, status, type and time range.
func (d *Daemon) adminDeliveries(ctx *fasthttp.RequestCtx, _ []string) error {
	q := ctx.QueryArgs()
	limit, err := pageLimit(q.Peek("limit"))
	if err != nil {
		return err
	}
	now := time.Now()
	sq := store.DeliveryQuery{Tenant: string(q.Peek("tenant")), Type: string(q.Peek("type")), Limit: limit, Cursor: string(q.Peek("cursor"))}
	t := d.sched.Table()
	if name := string(q.Peek("endpoint")); name != "" {
		ep := t.Get(name)
		if ep == nil || ep.Internal || (sq.Tenant != "" && ep.Tenant != sq.Tenant) {
			writeJSON(ctx, 200, client.DeliveryList{Items: []client.LoggedDelivery{}})
			return nil
		}
		sq.Endpoint = ep.ID
	}
	if v := string(q.Peek("status")); v != "" {
		st, ok := map[string]store.State{"pending": store.Pending, "delivered": store.Delivered, "undeliverable": store.Undeliverable}[v]
		if !ok {
			return badRequest("status: must be pending, delivered or undeliverable")
		}
		sq.State = &st
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &sq.Since}, {"until", &sq.Until}} {
		if v := string(q.Peek(p.name)); v != "" {
			at, err := timeOrAgo(v, now)
			if err != nil {
				return badRequest("%s: an RFC 3339 time or a duration ago such as \"1h\"", p.name)
			}
			*p.dst = at
		}
	}
	entries, next, _, err := d.store.DeliveryLog(sq)
	if err != nil {
		return badRequest("cursor: %v", err)
	}
	out := client.DeliveryList{Items: make([]client.LoggedDelivery, 0, len(entries)), NextCursor: next}
	for _, e := range entries {
		v := client.LoggedDelivery{EventID: e.EventID, Type: e.EventType, Tenant: e.Tenant, Endpoint: t.Name(e.Endpoint),
			Status: e.State.String(), Attempts: e.Attempts, CreatedAt: e.Created}
		if a := e.LastAttempt; a != nil {
			v.LastAttempt = &client.LastAttempt{At: a.At, Status: a.Status, Error: a.Error}
		}
		out.Items = append(out.Items, v)
	}
	writeJSON(ctx, 200, out)
	return nil
}

// timeOrAgo reads an RFC 3339 time, or a duration meaning that long
// before now.
func timeOrAgo(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return time.Time{}, err
	}
	if d < 0 {
		return time.Time{}, errors.New("negative duration")
	}
	return now.Add(-d), nil
}
