package delivery

import (
	"time"

	"hookd/store"
)

// Ordered endpoints (ordering = "fifo").
//
// Their pending deliveries are not on the due queue but in the store's
// ordered index, in acknowledgement order (store/ordered.go), so neither
// the scan nor the horizon sees them. Per endpoint with ordered deliveries
// the scheduler keeps a FIFO holding at most one of them, the head: the
// lowest sequence number pending, read from the store (OrderedHead). The
// head goes through the wheel and the ready queues like any delivery, at
// the due time its record holds (its first attempt at once, a retry at the
// time the policy chose, however far ahead). Only when the head's outcome
// is committed does the FIFO look up its next head: delivered or parked,
// that is the next delivery; failed with a retry left, the same head at
// its new due time. So one delivery at a time is sent, in order, and the
// next only once the previous one's outcome is durable: after a crash only
// the last head can be sent again.

// fifo is an ordered endpoint's place in the scheduler.
type fifo struct {
	// head is tracked from its lookup until its outcome is committed (the
	// item comes back through doneIn); nil while there is none.
	head   *item
	lookup bool // queued in s.lookups
	// recheck: the head may be stale (redelivered to the tail, parked), so
	// the lookup replaces it unless it is in flight.
	recheck bool
}

// wantHead queues a lookup of endpoint's head for this step: when it has
// none, or to recheck one that waits (is not in flight).
func (s *Scheduler) wantHead(endpoint string, recheck bool) {
	l := s.fifos[endpoint]
	if l == nil {
		l = &fifo{}
		s.fifos[endpoint] = l
	}
	if l.head != nil && (!recheck || l.head.sent) {
		return // the head's outcome brings the next lookup
	}
	l.recheck = l.recheck || recheck
	if !l.lookup {
		l.lookup = true
		s.lookups = append(s.lookups, endpoint)
	}
}

// lookupHeads reads the heads the FIFOs asked for and places them.
func (s *Scheduler) lookupHeads(now time.Time) {
	eps := s.lookups
	s.lookups = nil
	for _, ep := range eps {
		l := s.fifos[ep]
		if l == nil || !l.lookup {
			continue
		}
		l.lookup = false
		if l.head != nil && (!l.recheck || l.head.sent) {
			continue
		}
		l.recheck = false
		h, ok, err := s.st.OrderedHead(ep)
		if err != nil {
			s.log.Error().Err(err).Str("endpoint", ep).Msg("look up the next ordered delivery; retried at the next scan")
			s.relook = append(s.relook, ep)
			continue
		}
		old := l.head
		if old != nil && ok && old.key == h.Key && old.seq == h.Seq && old.due.Equal(h.Due) {
			continue
		}
		if old != nil {
			s.drop(old)
			l.head = nil
		}
		if !ok {
			delete(s.fifos, ep)
			s.setBlocked(ep, time.Time{})
			continue
		}
		it := &item{key: h.Key, st: s.state(ep), due: h.Due, seq: h.Seq, ordered: true}
		l.head = it
		s.setBlocked(ep, h.FailingSince)
		s.placeHead(it, now)
	}
}

// placeHead puts a head in the wheel, or among the far heads the scan
// looks at when it is due beyond the horizon.
func (s *Scheduler) placeHead(it *item, now time.Time) {
	if it.due.Sub(now) >= s.horizon() {
		s.far[it] = struct{}{}
		return
	}
	switch s.wheel.add(it) {
	case alreadyDue:
		s.makeReady(it)
	case beyondSpan:
		s.far[it] = struct{}{}
	}
}

// drop forgets a head that is not in flight; wherever it waits (wheel,
// ready queue) it is skipped.
func (s *Scheduler) drop(it *item) {
	it.dropped = true
	delete(s.far, it)
}

// headDone: the head's outcome is committed (or it was abandoned); the
// FIFO looks up its next head.
func (s *Scheduler) headDone(it *item) {
	if l := s.fifos[it.st.id]; l != nil && l.head == it {
		l.head = nil
		s.wantHead(it.st.id, false)
	}
}

// scanFIFOs runs with the periodic scan: it finds the FIFOs after a start
// and retries failed lookups.
func (s *Scheduler) scanFIFOs(now time.Time) {
	if s.needFIFOs {
		eps, err := s.st.OrderedEndpoints()
		if err != nil {
			s.log.Error().Err(err).Msg("list ordered endpoints; retried at the next scan")
		} else {
			s.needFIFOs = false
			for _, ep := range eps {
				s.wantHead(ep, false)
			}
		}
	}
	for _, ep := range s.relook {
		s.wantHead(ep, true)
	}
	s.relook = nil
}

// nearHeads moves far heads that came within the horizon into the wheel,
// once per scan: their number is at most the number of ordered endpoints.
func (s *Scheduler) nearHeads(now time.Time) {
	for it := range s.far {
		if it.due.Sub(now) < s.horizon() {
			delete(s.far, it)
			s.placeHead(it, now)
		}
	}
}

// queuedOrdered takes in a queued ordered delivery. A new event's (with
// its record, before it is applied) is behind any head the FIFO has; a
// redelivered one (after its commit, without a record) may have moved the
// head itself to the tail, or follow a head that was parked meanwhile.
func (s *Scheduler) queuedOrdered(e store.QueueEntry) {
	_, ep := store.SplitKey(e.Key)
	s.wantHead(ep, e.Delivery == nil)
}

// Recheck asks for the heads of endpoints' FIFOs to be read again, after
// their deliveries were parked or requeued other than through the
// scheduler. A head in flight is left alone.
func (s *Scheduler) Recheck(endpoints ...string) {
	s.mu.Lock()
	s.recheckIn = append(s.recheckIn, endpoints...)
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) setBlocked(endpoint string, since time.Time) {
	s.statsMu.Lock()
	st := s.eps[endpoint]
	if st == nil && !since.IsZero() { // clearing needs no record
		st = s.stat(endpoint)
	}
	if st != nil {
		st.BlockedSince = since
	}
	s.statsMu.Unlock()
}
