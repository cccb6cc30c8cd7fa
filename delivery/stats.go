package delivery

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"hookd/store"
)

// OutcomeEvent describes one recorded outcome.
type OutcomeEvent struct {
	Endpoint *Endpoint       // as it was attempted; nil if it was removed
	Delivery *store.Delivery // as it was before the attempt
	Outcome  *store.Outcome
	Failures int // consecutive failed attempts of the endpoint, after this one
	Previous int // ... and before it
}

// Stats is what the scheduler knows about an endpoint since start.
type Stats struct {
	InFlight          int
	Failures          int       // consecutive failed attempts
	FailingSince      time.Time // first of those failures; zero after a success
	LastSuccess       time.Time
	LastFailure       time.Time
	LastFailureStatus int
	LastFailureError  string
	// BlockedSince: an ordered endpoint's head has been failing since then,
	// holding back the deliveries behind it; zero otherwise.
	BlockedSince time.Time
}

// Stats returns a copy of every endpoint's statistics.
func (s *Scheduler) Stats() map[string]Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := make(map[string]Stats, len(s.eps))
	for k, v := range s.eps {
		out[k] = v.Stats
	}
	return out
}

// StatsOf returns a copy of the statistics of the endpoints ids (those
// with none are absent): a view of a few endpoints copies only theirs.
func (s *Scheduler) StatsOf(ids []string) map[string]Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := make(map[string]Stats, len(ids))
	for _, id := range ids {
		if v := s.eps[id]; v != nil {
			out[id] = v.Stats
		}
	}
	return out
}

// Failing returns a copy of the statistics of the endpoints whose last
// attempts failed (a failing streak): what disable_after looks at each
// second. Stats copies every endpoint's, which with 100,000 tenant
// endpoints is megabytes a call.
func (s *Scheduler) Failing() map[string]Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := make(map[string]Stats, len(s.failing))
	for k := range s.failing {
		out[k] = s.eps[k].Stats
	}
	return out
}

// restartStreak starts the failing streak of the endpoint with internal
// id id over, at an enable: disable_after counts from its next failure,
// not from the failures that disabled it, which disabled it again within
// a second. The count of failures stays, for the recovered notification
// its next success owes. The caller holds the endpoint's lock.
func (s *Scheduler) restartStreak(id string) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if st := s.eps[id]; st != nil {
		st.FailingSince = time.Time{}
		delete(s.failing, id)
	}
}

// hourSlot counts an endpoint's attempts by outcome in the hour (unix
// hour) they started. An endpoint keeps a slot for each of the last 24
// hours that had any, oldest first: most of 100,000 endpoints see a few
// hours a day, and the slots hold no pointers for the collector to follow.
// They live in memory, so they restart empty with hookd.
type hourSlot struct{ hour, delivered, failed uint32 }

// Hours returns an endpoint's attempts per hour over the 24 hours up to
// now, oldest first, and the start of the first hour.
func (s *Scheduler) Hours(id string, now time.Time) (start time.Time, delivered, failed [24]int) {
	first := now.Unix()/3600 - 23
	start = time.Unix(first*3600, 0).UTC()
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.eps[id]
	if st == nil {
		return start, delivered, failed
	}
	for _, slot := range st.hours {
		if i := int64(slot.hour) - first; i >= 0 && i < 24 {
			delivered[i], failed[i] = int(slot.delivered), int(slot.failed)
		}
	}
	return start, delivered, failed
}

// countHour adds an attempt to st's hour if that hour is one of the 24 up
// to now: one stamped outside them (a clock step) is not counted and
// pushes nothing out. The caller holds statsMu.
func (st *epState) countHour(at, now time.Time, ok bool) {
	h, cur := uint32(at.Unix()/3600), uint32(now.Unix()/3600)
	if h > cur || h+24 <= cur {
		return
	}
	slots := st.hours
	drop := 0
	for drop < len(slots) && slots[drop].hour+24 <= cur {
		drop++
	}
	slots = slices.Delete(slots, 0, drop)
	i := len(slots)
	for i > 0 && slots[i-1].hour > h { // attempts finish out of order
		i--
	}
	if i == 0 || slots[i-1].hour != h {
		slots = slices.Insert(slots, i, hourSlot{hour: h})
		i++
	}
	if ok {
		slots[i-1].delivered++
	} else {
		slots[i-1].failed++
	}
	st.hours = slots
}

// Forget drops what the scheduler knows of a deleted endpoint (its
// statistics and hour counts), which its id will never need again.
func (s *Scheduler) Forget(id string) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if st := s.eps[id]; st != nil {
		s.detach(st)
	}
	delete(s.failing, id)
}

// detach takes st out of the map (items still tracked keep it until they
// are done) and marks it, so that an outcome of theirs does not put the id
// back among the failing. The caller holds statsMu.
func (s *Scheduler) detach(st *epState) {
	if s.eps[st.id] == st {
		delete(s.eps, st.id)
		delete(s.failing, st.id)
	}
	st.forgotten = true
}

// epState is the scheduler's record of one endpoint, made when a delivery
// of it is first tracked (or its FIFO looks up a head) and kept for its
// statistics until Forget, or until the last delivery of an endpoint no
// longer in the table has been attempted. Each tracked item points at its
// endpoint's record, so a delivery looks its endpoint up once, when it is
// tracked, not at each turn of its way through the loop: with 100,000
// endpoints, each lookup in maps that large is a cache miss or two, and a
// delivery made about ten.
type epState struct {
	id string

	// The loop's: ready items in the order they fell due, attempts in
	// flight, and the endpoint as it was in the table of generation gen.
	ready    []*item
	inflight int
	ep       *Endpoint
	gen      uint64
	held     bool // waiting in the scheduler's held queue, not in its ready queue
	queued   bool // in the ready queue
	waiting  bool // at its in-flight limit with deliveries ready: out of the queue until an attempt ends
	// limiter is rate_limit's token bucket. It lives here, not in the
	// Endpoint, so that a reload, which builds every endpoint anew, does
	// not refill it: each SIGHUP let a burst through (black-box testing).
	limiter *rate.Limiter

	// answered: one of its attempts got an HTTP answer within
	// promptAnswer; slow: its last one did not. Set as outcomes are
	// recorded, read by dispatch and makeReady; a new record is neither.
	answered, slow atomic.Bool

	// Under statsMu: its Stats and its hour counts (in hours0 until they
	// are more than two hours), and whether it was detached (Forget, or
	// its endpoint left the table).
	Stats
	hours     []hourSlot
	hours0    [2]hourSlot
	forgotten bool
}

// endpoint returns st's endpoint in t (nil once removed), looking it up
// again only when t is another table than the one it last did.
func (st *epState) endpoint(t *Table) *Endpoint {
	if st.gen != t.gen {
		st.ep, st.gen = t.ByID(st.id), t.gen
	}
	return st.ep
}

// state returns id's record, made if it has none; the map is read and
// written under statsMu, which Forget and the readers of Stats take too.
func (s *Scheduler) state(id string) *epState {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stat(id)
}

// stateOf is state for a delivery to the endpoint with id id, routed to e
// (its Routed hint; nil without one): it finds the record through e when e
// knows it. A forgotten record is not reused: the id was deleted.
func (s *Scheduler) stateOf(id string, e *Endpoint) *epState {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if e == nil || e.sched == nil { // no hint, or an endpoint not made by NewEndpoint
		return s.stat(id)
	}
	if st := e.sched.st.Load(); st != nil && !st.forgotten {
		return st
	}
	st := s.stat(id)
	e.sched.st.Store(st)
	return st
}

// stat returns id's record, made if it has none; the caller holds statsMu.
// Its id is its own copy: the endpoint's would keep the table's packed
// strings alive after a reload, and a delivery key's substring the key.
func (s *Scheduler) stat(id string) *epState {
	st := s.eps[id]
	if st != nil {
		return st
	}
	st = &epState{id: strings.Clone(id)}
	st.hours = st.hours0[:0] // no allocation until a third hour
	s.eps[st.id] = st
	return st
}

func (s *Scheduler) addInFlight(st *epState, n int) {
	s.statsMu.Lock()
	st.InFlight += n
	s.statsMu.Unlock()
}

// recorded runs once an outcome's commit is over: it logs the outcome,
// updates the endpoint's statistics and tells OnOutcome.
func (s *Scheduler) recorded(st *epState, ep *Endpoint, d *store.Delivery, o *store.Outcome, err error) {
	s.logOutcome(d, o, err)
	if err != nil {
		return
	}
	ev := OutcomeEvent{Endpoint: ep, Delivery: d, Outcome: o}
	if o.Attempt != nil {
		s.statsMu.Lock()
		ev.Previous = st.Failures
		st.countHour(o.Attempt.At, s.clock.Now(), o.Delivered)
		prompt := o.Attempt.Status != 0 && o.Attempt.Latency < promptAnswer
		st.slow.Store(!prompt)
		if prompt {
			st.answered.Store(true)
		}
		if o.Delivered {
			st.Failures, st.LastSuccess, st.FailingSince = 0, o.Attempt.At, time.Time{}
			if !st.forgotten { // the id may have a new record by now
				delete(s.failing, st.id)
			}
		} else {
			if st.FailingSince.IsZero() { // the streak's first, or its first since an enable
				st.FailingSince = o.Attempt.At
				if !st.forgotten {
					s.failing[st.id] = struct{}{}
				}
			}
			st.Failures++
			st.LastFailure, st.LastFailureStatus, st.LastFailureError = o.Attempt.At, o.Attempt.Status, o.Attempt.Error
		}
		ev.Failures = st.Failures
		s.statsMu.Unlock()
	}
	if o.Ordered && !o.Superseded { // a superseded attempt was not its endpoint's head's
		s.statsMu.Lock()
		switch {
		case o.Delivered || o.Reason != "":
			st.BlockedSince = time.Time{}
		case !o.Next.IsZero() && st.BlockedSince.IsZero() && o.Attempt != nil:
			st.BlockedSince = o.Attempt.At
		}
		s.statsMu.Unlock()
	}
	if s.opts.OnOutcome != nil {
		s.opts.OnOutcome(ev)
	}
}

func (s *Scheduler) logOutcome(d *store.Delivery, o *store.Outcome, err error) {
	var ev *zerolog.Event
	switch {
	case err != nil:
		s.log.Error().Err(err).Str("event_id", d.EventID).Str("endpoint", d.Endpoint).Msg("record attempt failed; delivery stays pending")
		return
	case o.Attempt == nil && o.Superseded:
		return // to be parked unsent, and the disable or delete had parked it already
	case o.Attempt == nil:
		// Parked unsent, its endpoint disabled or gone: a disable or a
		// delete does this to a whole queue, which is no error.
		ev = s.log.Debug().Str("reason", o.Reason)
	case o.Superseded:
		ev = s.log.Info()
	case o.Delivered:
		ev = s.log.Debug()
	case o.Reason != "":
		ev = s.log.Error().Str("reason", o.Reason)
	default:
		ev = s.log.Warn().Time("next_attempt", o.Next)
	}
	ev = ev.Str("event_id", d.EventID).Str("endpoint", d.Endpoint)
	if a := o.Attempt; a != nil {
		ev = ev.Int("attempt", a.N).Int("status", a.Status).Dur("latency", a.Latency)
		if a.Error != "" {
			ev = ev.Str("error", a.Error)
		}
	}
	switch {
	case o.Attempt == nil:
		ev.Msg("parked unsent")
	case o.Superseded:
		ev.Msg("attempt recorded; the delivery had been redelivered, parked or purged meanwhile and keeps that state")
	case o.Delivered:
		ev.Msg("delivered")
	case o.Reason != "":
		ev.Msg("undeliverable")
	default:
		ev.Msg("attempt failed; will retry")
	}
}
