package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"hookd/config"
	"hookd/delivery"
	"hookd/store"
)

// Events hookd generates itself: operational notifications to [notify]
// and test events. They are stored and delivered like any other event
// (with retries), addressed to exactly one endpoint.

// outbox queues generated events. Outcomes are reported on the store's
// committer goroutine, which must never wait for a commit, so events are
// handed to a goroutine that stores them.
type outbox struct {
	mu   sync.Mutex
	evs  []store.NewEvent
	wake chan struct{}
}

func (o *outbox) put(ne store.NewEvent) {
	o.mu.Lock()
	o.evs = append(o.evs, ne)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) take() []store.NewEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	evs := o.evs
	o.evs = nil
	return evs
}

// runOutbox stores generated events until ctx ends. Close stores the rest,
// after the store's last commit of outcomes has raised its notifications.
func (d *Daemon) runOutbox(ctx context.Context) {
	defer d.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.out.wake:
			d.flushOutbox()
		}
	}
}

func (d *Daemon) flushOutbox() {
	evs := d.out.take()
	if len(evs) == 0 {
		return
	}
	// Generated events bypass max_pending: an alert must not be refused
	// because the queue is full.
	if _, err := d.store.Ingest(context.Background(), evs, store.Limits{DedupWindow: 0}); err != nil {
		d.log.Error().Err(err).Int("events", len(evs)).Msg("store generated events (notifications, test events)")
	}
}

// generated builds an event addressed to one endpoint.
func generated(ep *delivery.Endpoint, typ string, data any) store.NewEvent {
	raw, _ := json.Marshal(data)
	// A tenant endpoint's test events are that tenant's.
	ev := store.Event{ID: "evt_" + ulid.Make().String(), Type: typ, Tenant: ep.Tenant, Created: time.Now().UTC(), Raw: raw}
	return store.NewEvent{Event: ev, Deliveries: []store.NewDelivery{{Endpoint: ep.ID, Body: ep.Render(&ev)}}}
}

// onOutcome updates metrics and raises notifications. It runs on the
// committer goroutine: nothing here may wait for the store.
func (d *Daemon) onOutcome(ev delivery.OutcomeEvent) {
	o, dl := ev.Outcome, ev.Delivery
	ep, name, tenant := ev.Endpoint, dl.Endpoint, "" // a deleted endpoint is named by its id
	if ep != nil {
		name, tenant = ep.Name, ep.Tenant
	}
	countOutcome(metricLabel(ep, name), o)

	target := d.sched.Table().Get(config.NotifyEndpoint)
	if target == nil || name == config.NotifyEndpoint {
		return // notifications are never about notifications
	}
	after := d.cfg.Load().Notify.FailingAfter
	last := map[string]any{}
	if a := o.Attempt; a != nil {
		last = map[string]any{"n": a.N, "at": a.At, "status": a.Status, "error": a.Error}
	}
	// Only for a delivery its attempt parked: not for one parked unsent
	// because its endpoint is disabled (SPEC §11), deleted or removed, as
	// none is raised when a disable or a delete parks a whole queue.
	if o.Attempt != nil && o.Reason != "" && !o.Superseded {
		d.out.put(generated(target, "hookd.delivery.undeliverable", map[string]any{
			"event_id": dl.EventID, "event_type": dl.EventType, "endpoint": name, "tenant": tenant,
			"reason": o.Reason, "last_attempt": last,
		}))
	}
	if o.Attempt == nil {
		return
	}
	switch {
	case ev.Failures >= after && d.alerts.open(dl.Endpoint):
		d.out.put(generated(target, "hookd.endpoint.failing", map[string]any{
			"endpoint": name, "tenant": tenant, "consecutive_failures": ev.Failures, "last_attempt": last,
		}))
	case ev.Failures == 0 && d.alerts.close(dl.Endpoint):
		d.out.put(generated(target, "hookd.endpoint.recovered", map[string]any{
			"endpoint": name, "tenant": tenant, "failed_attempts": ev.Previous,
		}))
	}
}

// openAlerts are the endpoints (by id) whose hookd.endpoint.failing was
// sent and whose recovered is owed: the recovered answers the failing
// alert, whatever failing_after says by then (one raised by a reload past
// the streak left the alert open for good). They are in memory, like the
// streak they count: after a restart an endpoint's next failing_after
// failures alert anew.
type openAlerts struct {
	mu  sync.Mutex
	ids map[string]bool
}

// open records a failing alert for id, reporting whether none was open.
func (a *openAlerts) open(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ids[id] {
		return false
	}
	if a.ids == nil {
		a.ids = map[string]bool{}
	}
	a.ids[id] = true
	return true
}

// close ends id's failing alert, reporting whether one was open.
func (a *openAlerts) close(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.ids[id]
	delete(a.ids, id)
	return was
}

// greetNewEndpoints records endpoints seen for the first time and sends a
// test event to those with test_on_create.
func (d *Daemon) greetNewEndpoints(ctx context.Context) error {
	states, err := d.store.EndpointStates()
	if err != nil {
		return err
	}
	var fresh []*delivery.Endpoint
	var ids []string
	// The config's only: a managed endpoint's create stores its FirstSeen
	// and sends its test event itself, and one deleted while a reload
	// greets would otherwise look new (a state written for a deleted id).
	for _, ep := range d.sched.Table().ConfigEndpoints() {
		if !ep.Internal && states[ep.ID].FirstSeen.IsZero() {
			fresh, ids = append(fresh, ep), append(ids, ep.ID)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	now := time.Now().UTC()
	if err := d.store.UpdateEndpointStates(ctx, ids, func(es *store.EndpointState) error { es.FirstSeen = now; return nil }); err != nil {
		return err
	}
	for _, ep := range fresh {
		if ep.TestOnCreate {
			d.out.put(generated(ep, ep.TestEventType, d.testData(ep, ep.TestEventType)))
			d.log.Info().Str("endpoint", ep.Name).Msg("new endpoint: test event queued")
		}
	}
	return nil
}

// testData is a test event's data: the catalogue's example for its type
// (what the customer will really receive), or a note saying what it is.
func (d *Daemon) testData(ep *delivery.Endpoint, typ string) any {
	if ex := d.cfg.Load().Example(typ); ex != nil {
		return ex
	}
	return map[string]any{"message": "Test event from hookd", "endpoint": ep.Name}
}

// disableFailing disables endpoints that have failed every attempt for
// their disable_after (the auto-disable Svix and Convoy users rely on), and
// notifies [notify]. The failing streak is counted since hookd started.
func (d *Daemon) disableFailing(ctx context.Context) {
	// Only endpoints with a failing streak can qualify: walk the stats,
	// not every endpoint, each second.
	t := d.sched.Table()
	now := time.Now()
	type failed struct {
		ep    *delivery.Endpoint
		since time.Time
	}
	var due []failed
	for id, st := range d.sched.Failing() {
		ep := t.ByID(id)
		if st.FailingSince.IsZero() || ep == nil || ep.DisableAfter <= 0 || t.Disabled(id) || now.Sub(st.FailingSince) < ep.DisableAfter {
			continue
		}
		due = append(due, failed{ep, st.FailingSince})
	}
	// Together, so that they share commits: a receiver many tenants use,
	// down for disable_after, makes them all qualify at once, and one
	// after the other they took a commit each.
	together(len(due), func(i int) { d.disableFailed(ctx, t, due[i].ep, due[i].since) })
}

// disableFailed disables ep, failing every attempt since since.
func (d *Daemon) disableFailed(ctx context.Context, t *delivery.Table, ep *delivery.Endpoint, since time.Time) {
	reason := fmt.Sprintf("failed every attempt since %s (disable_after %s)", since.UTC().Format(time.RFC3339), ep.DisableAfter)
	if err := d.sched.SetDisabled(ctx, ep.ID, true, reason, store.ByHookd); errors.Is(err, delivery.ErrUnchanged) || errors.Is(err, delivery.ErrGone) {
		return // disabled meanwhile by another, or gone: not ours to notify
	} else if err != nil {
		d.log.Error().Err(err).Str("endpoint", ep.Name).Msg("disable failing endpoint")
		return
	}
	if target := t.Get(config.NotifyEndpoint); target != nil && !ep.Internal {
		d.out.put(generated(target, "hookd.endpoint.disabled", map[string]any{
			"endpoint": ep.Name, "tenant": ep.Tenant, "reason": reason, "failing_since": since.UTC(),
		}))
	}
}
