package portal

import (
	"net/url"
	"slices"
	"strings"

	"hookd/client"
)

// endpointRow is one endpoint with its last 24 hours.
type endpointRow struct {
	client.Endpoint
	Chart *chart
}

type endpointsData struct {
	Items  []endpointRow
	Next   string // the next page's URL; "" on the last
	Paged  bool   // not the first page
	Failed int    // endpoints failing or disabled on this page
}

// endpointsPage lists the scope's endpoints with their health.
func (s *Server) endpointsPage(r *request) error {
	sc := r.sess.Scope
	cursor := query(r, "cursor")
	list, err := s.ops.Endpoints(sc, client.EndpointQuery{Tenant: sc.Tenant(), Limit: 100, Cursor: cursor})
	if err != nil {
		return s.pageError(r, err)
	}
	d := endpointsData{Paged: cursor != ""}
	for _, e := range list.Items {
		h, _ := s.ops.EndpointHours(sc, e.Name) // no chart rather than no page
		d.Items = append(d.Items, endpointRow{Endpoint: e, Chart: newChart(h, false)})
		if e.State != "active" {
			d.Failed++
		}
	}
	if list.NextCursor != "" {
		d.Next = r.base + "/endpoints?cursor=" + url.QueryEscape(list.NextCursor)
	}
	return s.render(r, 200, "endpoints", "endpoints", "Endpoints", d)
}

// picker is the event type picker of the add and edit forms: the
// catalogue's types as checkboxes, "every type" and other patterns.
type picker struct {
	Types  []client.EventType
	All    bool     // "*"
	Chosen []string // catalogued names chosen
	Other  string   // the other patterns, comma-separated
}

func (s *Server) picker(events []string) picker {
	p := picker{Types: s.ops.EventTypes().Items}
	var other []string
	for _, e := range events {
		switch {
		case e == "*":
			p.All = true
		case slices.ContainsFunc(p.Types, func(t client.EventType) bool { return t.Name == e }):
			p.Chosen = append(p.Chosen, e)
		default:
			other = append(other, e)
		}
	}
	p.Other = strings.Join(other, ", ")
	return p
}

type newEndpointData struct {
	Picker picker
}

// newEndpointPage is the add form (?events= preselects types, as the
// event types page links it); without manage_endpoints it says so.
func (s *Server) newEndpointPage(r *request) error {
	events := []string{"*"}
	if v := query(r, "events"); v != "" {
		events = strings.Split(v, ",")
	}
	return s.render(r, 200, "endpoint_new", "endpoints", "Add an endpoint", newEndpointData{Picker: s.picker(events)})
}

type endpointData struct {
	E      *client.Endpoint
	Chart  *chart
	Picker picker
	// Undeliverable counts the endpoint's undeliverable deliveries in the
	// log, up to undeliverableCap (More when there are more).
	Undeliverable int
	More          bool
	Recent        []client.LoggedDelivery
}

const undeliverableCap = 1000

// endpointPage is one endpoint: its state and health, the secret, the
// actions its capabilities allow, the edit form and its latest deliveries.
func (s *Server) endpointPage(r *request) error {
	sc := r.sess.Scope
	e, err := s.ops.Endpoint(sc, r.args[0])
	if err != nil {
		return s.pageError(r, err)
	}
	h, _ := s.ops.EndpointHours(sc, e.Name)
	d := endpointData{E: e, Chart: newChart(h, true), Picker: s.picker(e.Events)}
	if recent, err := s.ops.Deliveries(sc, client.DeliveryQuery{Tenant: sc.Tenant(), Endpoint: e.Name, Limit: 10}); err == nil {
		d.Recent = recent.Items
	}
	if und, err := s.ops.Deliveries(sc, client.DeliveryQuery{Tenant: sc.Tenant(), Endpoint: e.Name, Status: "undeliverable", Limit: undeliverableCap}); err == nil {
		d.Undeliverable, d.More = len(und.Items), und.NextCursor != ""
	}
	return s.render(r, 200, "endpoint", "endpoints", e.Name, d)
}
