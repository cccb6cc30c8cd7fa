package delivery

import (
	"errors"
	"math/rand/v2"

	"hookd/store"
)

func (s *Scheduler) worker() {
	defer s.workerWG.Done()
	for it := range s.jobs {
		if s.ctx.Err() != nil {
			continue // shutting down: no new attempts; it stays pending
		}
		s.attempt(it)
	}
}

// release frees the worker and the endpoint's in-flight slot as soon as
// the attempt is over; the commit of its outcome need not hold them.
func (s *Scheduler) release(it *item) {
	s.mu.Lock()
	s.sentIn = append(s.sentIn, it)
	s.mu.Unlock()
	s.poke()
}

// finish untracks an item once its outcome is committed (or abandoned).
func (s *Scheduler) finish(it *item) {
	s.mu.Lock()
	s.doneIn = append(s.doneIn, it)
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) attempt(it *item) {
	d, err := it.d, error(nil)
	it.d = nil
	if d == nil || s.st.Moved() != it.moved {
		d, err = s.st.Delivery(it.key)
		// Redelivered since it was loaded and due already: this is the
		// resend, sent now. Dropped here, it waited for the next scan, as
		// the redeliver's own entry found it tracked.
		if err == nil && d.State == store.Pending && !it.ordered && !d.Due.Equal(it.due) && !d.Due.After(s.clock.Now()) {
			it.due = d.Due
		}
	}
	if err != nil || d.State != store.Pending || !d.Due.Equal(it.due) || (it.ordered && d.Seq != it.seq) {
		// Delivered, parked, rescheduled or redelivered since it was loaded.
		s.release(it)
		s.finish(it)
		return
	}
	t, ep := s.table.Load(), it.ep
	if t.gen != it.gen {
		ep = t.ByID(it.st.id)
	}
	o := store.Outcome{Key: it.key, Due: it.due, Seq: it.seq, Ordered: it.ordered}
	switch {
	case ep == nil:
		// Deleted between the delete's commit and the parking of its
		// deliveries (or a crash between them): the same reason.
		o.Reason = goneReason(it.st.id)
	case t.Disabled(ep.ID):
		o.Reason = ReasonDisabled
	default:
		res := s.sender.Send(s.attempts, ep, d.EventID, d.EventType, d.Body)
		if s.attempts.Err() != nil {
			// Cut short at the shutdown deadline, or too late to be
			// recorded: the delivery stays pending.
			s.release(it)
			s.finish(it)
			return
		}
		o.Attempt = &res.Attempt
		if res.OK() {
			o.Delivered = true
		} else {
			v := ep.Policy.Decide(d.Attempts-d.Cycle+1, res.Attempt.Status, res.Attempt.Error, res.RetryAfter, rand.Float64())
			if v.Retry {
				o.Next = s.clock.Now().Add(v.Delay).UTC()
			} else {
				o.Reason = v.Reason
			}
			// The parking of a disable for a 410, this one's or another
			// attempt's, takes this delivery too, with this reason: then
			// that parking is this outcome's (store.Outcome.Disabled).
			o.Disabled = v.Disable
			// An endpoint disabled meanwhile (the operator's disable landing
			// during this attempt) keeps that reason: a 410 must not make
			// the disable the 410's, which its tenant may undo. The table
			// says so without a commit; DisableChange, in the write.
			if v.Disable && !s.Table().Disabled(ep.ID) {
				// Before this worker's slot is released: the endpoint's
				// next delivery must already see it disabled. Parking a
				// long queue stops at the shutdown deadline too; what is
				// left is parked by attempt after the restart.
				if err := s.SetDisabled(s.attempts, ep.ID, true, v.Reason, store.ByHookd); err != nil && !errors.Is(err, ErrUnchanged) && !errors.Is(err, ErrGone) {
					s.log.Error().Err(err).Str("endpoint", ep.Name).Msg("disable endpoint after 410")
				}
			}
		}
	}
	s.release(it)
	s.st.Complete(&o, func(err error) {
		s.recorded(it.st, ep, d, &o, err)
		s.finish(it)
	})
}
