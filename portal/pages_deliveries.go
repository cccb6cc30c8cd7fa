package portal

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"hookd/api"
	"hookd/client"
)

// deliveriesPageSize is how many deliveries one page shows.
const deliveriesPageSize = 50

// defaultRange is the time range of the deliveries page without one.
const defaultRange = "24h"

// ranges are the time range presets of the deliveries filter.
var ranges = []struct{ Value, Label string }{
	{"1h", "Last hour"}, {"24h", "Last 24 hours"}, {"168h", "Last 7 days"}, {"720h", "Last 30 days"}, {"", "Any time"},
}

// deliveryFilter is the deliveries page's query: the form's fields as
// they were sent, so the form shows them again.
type deliveryFilter struct {
	Tenant, Endpoint, Status, Type string
	Range                          string // a preset duration ago, when Since is empty
	Since, Until                   string // datetime-local values, UTC
}

func (f deliveryFilter) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"tenant": f.Tenant, "endpoint": f.Endpoint, "status": f.Status,
		"type": f.Type, "range": f.Range, "since": f.Since, "until": f.Until} {
		if x != "" {
			v.Set(k, x)
		}
	}
	// "Any time" is an empty range, and no range the default: the next
	// page and an opened row kept the range only when it was not empty.
	if f.Range == "" {
		v.Set("range", "")
	}
	return v
}

// Active reports whether anything narrows the list (the empty state
// then says to widen the filter rather than to wait for events).
func (f deliveryFilter) Active() bool {
	return f.Endpoint != "" || f.Status != "" || f.Type != "" || f.Since != "" || f.Until != "" || f.Range != defaultRange
}

type deliveryRow struct {
	client.LoggedDelivery
	Open    bool
	OpenURL string // the page with this delivery opened (or closed)
}

// openDelivery is the delivery opened on the page: its attempts and the
// event's body.
type openDelivery struct {
	Event    *client.Event
	Delivery *client.Delivery
	Body     string
}

type deliveriesData struct {
	Filter    deliveryFilter
	Ranges    any
	Endpoints []string // the endpoint filter's choices
	// Resendable: the filter's endpoint is one the session sees, so the
	// page may offer to resend its undeliverable deliveries.
	Resendable bool
	Types      []string // the event type filter's choices
	Items      []deliveryRow
	Next       string // older deliveries; "" on the last page
	First      string // back to the newest; "" on the first page
	Open       *openDelivery
	// Errors are the API's complaints about a filter field, by field.
	Errors map[string]string
	Error  string
}

// deliveriesPage is the deliveries log, newest first, filtered and paged;
// ?open= shows one delivery's attempts in place.
func (s *Server) deliveriesPage(r *request) error {
	sc := r.sess.Scope
	f := deliveryFilter{
		Endpoint: query(r, "endpoint"), Status: query(r, "status"), Type: query(r, "type"),
		Since: query(r, "since"), Until: query(r, "until"),
	}
	if sc.All() {
		f.Tenant = query(r, "tenant")
	} else {
		f.Tenant = sc.Tenant()
	}
	f.Range = defaultRange
	if r.ctx.QueryArgs().Has("range") {
		f.Range = query(r, "range")
	}
	q := client.DeliveryQuery{Tenant: f.Tenant, Endpoint: f.Endpoint, Status: f.Status, Type: f.Type,
		Limit: deliveriesPageSize, Cursor: query(r, "cursor")}
	q.Since, q.Until = localToRFC3339(f.Since), localToRFC3339(f.Until)
	if q.Since == "" {
		q.Since = f.Range
	}
	d := deliveriesData{Filter: f, Ranges: ranges, Errors: map[string]string{}}
	// A tenant's endpoints fill the endpoint filter's choices (50 by
	// default, [tenants] max_endpoints); operators, who may have 100,000,
	// type a name.
	if !sc.All() {
		if eps, err := s.ops.Endpoints(sc, client.EndpointQuery{Tenant: sc.Tenant(), Limit: 1000}); err == nil {
			for _, e := range eps.Items {
				d.Endpoints = append(d.Endpoints, e.Name)
			}
		}
	}
	if f.Endpoint != "" {
		_, err := s.ops.Endpoint(sc, f.Endpoint)
		d.Resendable = err == nil
	}
	for _, t := range s.ops.EventTypes().Items {
		d.Types = append(d.Types, t.Name)
	}
	list, err := s.ops.Deliveries(sc, q)
	var ae *api.Error
	switch {
	case errors.As(err, &ae) && ae.Status == 400:
		field, msg := fieldOf(ae.Message)
		if field == "" {
			d.Error = ae.Message
		} else {
			d.Errors[field] = msg
		}
		list = &client.DeliveryList{}
	case err != nil:
		return s.pageError(r, err)
	}
	base := f.values()
	open, openEP := query(r, "open"), query(r, "oe")
	for _, x := range list.Items {
		row := deliveryRow{LoggedDelivery: x, Open: x.EventID == open && x.Endpoint == openEP}
		v := cloneValues(base)
		if c := query(r, "cursor"); c != "" {
			v.Set("cursor", c)
		}
		if !row.Open {
			v.Set("open", x.EventID)
			v.Set("oe", x.Endpoint)
		}
		row.OpenURL = r.base + "/deliveries?" + v.Encode() + "#d-" + x.EventID + "-" + x.Endpoint
		d.Items = append(d.Items, row)
	}
	if open != "" {
		if ev, err := s.ops.Event(sc, open); err == nil {
			for i := range ev.Deliveries {
				if ev.Deliveries[i].Endpoint == openEP {
					d.Open = &openDelivery{Event: ev, Delivery: &ev.Deliveries[i], Body: eventBody(ev)}
				}
			}
		}
	}
	if list.NextCursor != "" {
		v := cloneValues(base)
		v.Set("cursor", list.NextCursor)
		d.Next = r.base + "/deliveries?" + v.Encode()
	}
	if q.Cursor != "" {
		d.First = r.base + "/deliveries?" + base.Encode()
	}
	return s.render(r, 200, "deliveries", "deliveries", "Deliveries", d)
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, x := range v {
		c[k] = append([]string(nil), x...)
	}
	return c
}

// localToRFC3339 reads a datetime-local value as UTC; anything else
// (an RFC 3339 time, a duration ago) goes to the API as it is.
func localToRFC3339(v string) string {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return v
}

// fieldOf splits an API message "field: what is wrong" (the convention
// of api.Error) into the field and the rest.
func fieldOf(msg string) (string, string) {
	f, rest, ok := strings.Cut(msg, ": ")
	if !ok || f == "" || strings.ContainsAny(f, " \t") {
		return "", msg
	}
	return f, rest
}

// eventBody is the event as it was posted: data or a raw payload.
func eventBody(ev *client.Event) string {
	raw := ev.Data
	if len(raw) == 0 {
		raw = ev.Payload
	}
	return prettyJSON(raw)
}

type eventData struct {
	E    *client.Event
	Body string
	// Focus is the delivery the page was opened for (?endpoint=).
	Focus string
}

// eventPage is one event: its body and, for each of its deliveries in
// the scope, every attempt.
func (s *Server) eventPage(r *request) error {
	ev, err := s.ops.Event(r.sess.Scope, r.args[0])
	if err != nil {
		return s.pageError(r, err)
	}
	return s.render(r, 200, "event", "deliveries", ev.Type+" · "+ev.ID, eventData{E: ev, Body: eventBody(ev), Focus: query(r, "endpoint")})
}
