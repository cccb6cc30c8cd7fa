package daemon

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"hookd/delivery"
)

// eventFilter applies endpoint filters to one event at ingest. The event's
// data (its payload for payload events) is parsed only when an endpoint
// that matched has a filter, and then once for all of them.
type eventFilter struct {
	in     delivery.FilterInput
	raw    []byte
	parsed bool
	err    error // data did not parse; every filter then rejects
	// kept are the hookd_events_filtered_total series of the endpoints it
	// kept the event from, counted once the event is stored: a duplicate
	// or a refused event changes nothing, its metrics included.
	kept []*metrics.Counter
}

func newEventFilter(id, typ, tenant string, raw []byte) eventFilter {
	return eventFilter{in: delivery.FilterInput{Type: typ, Tenant: tenant, ID: id}, raw: raw}
}

// accepts reports whether ep gets a delivery of the event. A filter that
// fails to evaluate (a field of a missing object, a type mismatch) rejects
// the event for that endpoint; both are counted (kept), so an operator can
// tell a filter that never matches from one that breaks.
func (f *eventFilter) accepts(ep *delivery.Endpoint) bool {
	if !ep.Filtered() {
		return true
	}
	if !f.parsed {
		f.parsed = true
		f.in.Data, f.err = delivery.ParseFilterData(f.raw)
	}
	ok, err := false, f.err
	if err == nil {
		ok, err = ep.Accepts(&f.in)
	}
	switch {
	case err != nil:
		f.kept = append(f.kept, filterCounters(metricLabel(ep, ep.Name)).errors)
	case !ok:
		f.kept = append(f.kept, filterCounters(metricLabel(ep, ep.Name)).rejected)
	}
	return ok
}

type filterSeries struct{ rejected, errors *metrics.Counter }

var filterSeriesByEndpoint sync.Map // endpoint name → *filterSeries

// filterCounters are an endpoint's hookd_events_filtered_total series,
// looked up once: ingest should not format names per event.
func filterCounters(ep string) *filterSeries {
	if m, ok := filterSeriesByEndpoint.Load(ep); ok {
		return m.(*filterSeries)
	}
	counter := func(result string) *metrics.Counter {
		return metrics.GetOrCreateCounter(fmt.Sprintf(`hookd_events_filtered_total{endpoint=%q,result=%q}`, ep, result))
	}
	m, _ := filterSeriesByEndpoint.LoadOrStore(ep, &filterSeries{rejected: counter("rejected"), errors: counter("error")})
	return m.(*filterSeries)
}
