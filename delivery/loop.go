package delivery

import (
	"math"
	"time"

	"golang.org/x/time/rate"

	"hookd/store"
)

// item is one delivery the scheduler holds in memory: in the wheel, ready,
// or in flight. It is tracked from when it is loaded until its attempt's
// outcome is committed, so it is never dispatched twice at once.
type item struct {
	key string
	st  *epState // its endpoint's record
	due time.Time
	d   *store.Delivery // the new event's record, if carried (see carryBytes)
	// moved is the store's Moved count when d was read: once it changed,
	// d may be out of date (redelivered, parked) and the attempt reads the
	// record instead.
	moved uint64
	// ep is its endpoint as dispatch found it in the table of generation
	// gen: the attempt looks it up again only if the table changed since.
	ep  *Endpoint
	gen uint64

	seq     uint64 // an ordered head's sequence number
	order   uint64 // when it became ready, among all items: ties of due time go by it
	ordered bool   // an ordered endpoint's head (fifo.go)
	sent    bool   // handed to a worker
	dropped bool   // a head replaced before it was sent: skipped where it waits
	slow    bool   // sent to a slow endpoint: counted in busySlow
}

// carryBytes bounds the request bodies the loop holds for tracked new
// deliveries, so that a fast ingest far ahead of delivery cannot pile up
// memory; past it, workers read the record from the store.
const carryBytes = 8 << 20

// horizon is nearHorizon, or less if the wheel cannot hold that far ahead.
func (s *Scheduler) horizon() time.Duration { return min(nearHorizon, s.wheel.span()-s.opts.Tick) }

// loop runs step whenever there may be something to do, until Close.
func (s *Scheduler) loop() {
	defer s.loopWG.Done()
	tick := s.clock.NewTicker(s.opts.Tick)
	defer tick.Stop()
	scan := s.clock.NewTicker(s.opts.ScanInterval)
	defer scan.Stop()
	for {
		// Tick only while something waits in the wheel or for a free slot:
		// an idle daemon sleeps until new work, a ping or the next scan.
		var tickC <-chan time.Time
		if s.step(s.clock.Now()) {
			tickC = tick.C()
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-tickC:
		case <-scan.C():
			s.needScan = true
		}
	}
}

// step is one turn of the loop, on the loop goroutine (or a test's): it
// takes in what the inbox holds, re-reads the due index if that is due,
// makes ready what fell due in the wheel and hands ready deliveries to
// workers. It reports whether anything is left waiting for time to pass or
// for a free worker or slot.
func (s *Scheduler) step(now time.Time) (waiting bool) {
	s.drainInbox(now)
	scanning := s.needScan
	if scanning {
		s.scanFIFOs(now)
	}
	// Rescan when the periodic timer says so, or after an overflow once
	// half the room is free again: never per completion, as each scan
	// walks past every tracked key.
	if (s.needScan && len(s.items) < s.opts.MaxTracked) || (s.overflow && len(s.items) <= s.opts.MaxTracked/2) {
		s.scan(now)
	}
	s.lookupHeads(now)
	s.wheel.advance(now, s.makeReady)
	if scanning {
		s.nearHeads(now) // after the wheel caught up with now: it places by its own position
	}
	s.dispatch(now)
	return s.wheel.n > 0 || s.ready.len() > 0 || s.held.len() > 0
}

func (s *Scheduler) drainInbox(now time.Time) {
	s.mu.Lock()
	queued, sent, done, pings := s.queuedIn, s.sentIn, s.doneIn, s.pings
	s.queuedIn, s.sentIn, s.doneIn, s.pings = nil, nil, nil, nil
	recheck := s.recheckIn
	s.recheckIn = nil
	s.mu.Unlock()
	for _, ch := range pings {
		close(ch)
	}
	for _, it := range sent {
		s.busy--
		if it.slow {
			s.busySlow--
		}
		q := it.st
		q.inflight--
		s.rejoin(q) // a slot of its own is free: it competes again
		s.statsMu.Lock()
		q.InFlight--
		if it.ep == nil && q.inflight == 0 && len(q.ready) == 0 {
			// Its endpoint is gone (deleted, or removed from the file) and
			// this was its last delivery in sight: keep no record for it.
			// One that comes back (a reload) starts a new one.
			s.detach(q)
		}
		s.statsMu.Unlock()
	}
	for _, it := range done {
		// Its outcome may have raised its limit (a probe's first prompt
		// answer, a slow one's): offer looks again.
		s.rejoin(it.st)
		if q := it.st; q.held && !q.slow.Load() {
			// It answered promptly: its waiting deliveries need no room in
			// the slow endpoints' share (its entry in held is skipped).
			q.held = false
			s.ready.push(q)
		}
		if it.ordered {
			s.headDone(it)
			continue
		}
		delete(s.items, it.key)
	}
	for _, e := range queued {
		if e.Ordered {
			s.queuedOrdered(e)
			continue
		}
		s.track(e, now)
	}
	for _, ep := range recheck {
		if s.fifos[ep] != nil {
			s.wantHead(ep, true)
		}
	}
}

// track takes a queue entry into memory if it is within the horizon and
// there is room; otherwise it stays only in the store and a later scan
// loads it.
func (s *Scheduler) track(e store.QueueEntry, now time.Time) {
	if old, ok := s.items[e.Key]; ok {
		// Tracked already. A redeliver of one that waits here for a later
		// time (a retry in the wheel) takes its place: left, the resend
		// waited for that retry, up to the horizon. One in flight stays;
		// its attempt reads the record (worker.go).
		if old.sent || !e.Due.Before(old.due) {
			return
		}
		s.drop(old)
		if old.d != nil {
			s.carried -= len(old.d.Body)
			old.d = nil
		}
		delete(s.items, e.Key)
	}
	if e.Due.Sub(now) >= s.horizon() {
		return
	}
	if len(s.items) >= s.opts.MaxTracked {
		s.overflow = true
		return
	}
	_, ep := store.SplitKey(e.Key)
	r, _ := e.Hint.(*Routed)
	it := &item{key: e.Key, st: s.stateOf(ep, r.endpoint()), due: e.Due}
	if r != nil && it.st.gen != r.table.gen && r.table == s.table.Load() {
		it.st.ep, it.st.gen = r.ep, r.table.gen // what endpoint(t) would look up
	}
	if e.Delivery != nil && s.carried+len(e.Delivery.Body) <= carryBytes {
		it.d, it.moved = e.Delivery, e.Moved // before makeReady: dispatch gives the bytes back
		s.carried += len(it.d.Body)
	}
	switch s.wheel.add(it) {
	case alreadyDue:
		s.makeReady(it)
	case beyondSpan: // only if the loop fell far behind; a later scan loads it
		if it.d != nil {
			s.carried -= len(it.d.Body)
		}
		return
	}
	s.items[e.Key] = it
}

// scan loads the near horizon from the due index. A delivery stays tracked
// until the loop has drained its committed outcome, and the scan runs on
// the loop goroutine: whatever snapshot it reads, a delivery in flight is
// skipped, and an untracked one is seen in its committed state. A delivery
// is never loaded twice.
func (s *Scheduler) scan(now time.Time) {
	s.needScan, s.overflow = false, false
	room := s.opts.MaxTracked - len(s.items)
	err := s.st.ScanDue(now.Add(s.horizon()), room,
		func(key []byte) bool { _, ok := s.items[string(key)]; return ok }, // no copy: a map lookup
		func(e store.QueueEntry) { s.track(e, now) })
	if err != nil {
		s.log.Error().Err(err).Msg("scan due index")
	}
	if len(s.items) >= s.opts.MaxTracked {
		s.overflow = true
	}
}

func (s *Scheduler) makeReady(it *item) {
	if it.dropped {
		return
	}
	q := it.st
	it.order = s.readied
	s.readied++
	q.ready = append(q.ready, it)
	if len(q.ready) == 1 { // else it waits already: queued, held, or at its limit
		s.enqueue(q)
	}
}

// allow takes a token from q's rate_limit bucket (perSecond, a burst of
// as many). A changed rate applies from now with the tokens the bucket
// holds, so a reload that changes it lets no extra burst through either.
func (q *epState) allow(perSecond float64, now time.Time) bool {
	limit, burst := rate.Limit(perSecond), max(1, int(perSecond))
	switch {
	case q.limiter == nil:
		q.limiter = rate.NewLimiter(limit, burst)
	case q.limiter.Limit() != limit || q.limiter.Burst() != burst:
		q.limiter.SetLimitAt(now, limit)
		q.limiter.SetBurstAt(now, burst)
	}
	return q.limiter.AllowN(now, 1)
}

// rejoin puts q back in line if it was waiting at its in-flight limit.
func (s *Scheduler) rejoin(q *epState) {
	if q.waiting {
		q.waiting = false
		s.atLimit--
		s.enqueue(q)
	}
}

// enqueue puts q, which has deliveries ready, in line for a worker: a slow
// one behind the slow endpoints held for their share, if there are any
// (ahead of them in the ready queue, it would take each slot they wait
// for), any other in the ready queue.
func (s *Scheduler) enqueue(q *epState) {
	if len(q.ready) == 0 {
		return
	}
	if q.slow.Load() && s.held.len() > 0 {
		q.held = true
		s.held.push(q)
		return
	}
	s.ready.push(q)
}

// removedInFlight is the in-flight limit of an endpoint no longer in the
// table. Its deliveries are parked by their attempt without any HTTP, so
// one at a time keeps them from taking workers from live endpoints.
const removedInFlight = 1

// A slow endpoint (its last attempt got no HTTP answer within
// promptAnswer: a timeout, a refused or reset connection, a slow answer)
// has one attempt in flight at a time whatever its max_in_flight, and slow
// endpoints together hold at most 1/slowShare of the workers (one, with
// one worker). Each endpoint's max_in_flight bounds it alone, but not many
// of them: four tenant endpoints at a host that accepts connections and
// never answers held all 64 workers, each attempt for its whole timeout,
// and a healthy endpoint got one in four of its deliveries sent in ten
// seconds. An endpoint not attempted since start (new, or after a restart)
// is not slow until proven so: it probes with one attempt at a time until
// its first prompt answer, outside the share, so a healthy one is not
// queued behind dead ones (each dead one holds a worker for one timeout,
// then waits in the share). A prompt answer of any status clears it: a
// quick 500 holds no worker for long.
const slowShare = 2 // 1/2

// promptAnswer is how soon an answer must come for its endpoint not to be
// slow.
const promptAnswer = time.Second

// slowCap is how many workers slow endpoints may hold.
func (s *Scheduler) slowCap() int { return max(1, s.opts.Workers/slowShare) }

// dispatch hands ready items to workers, oldest first across endpoints
// (by due time, then the order they became ready), within each endpoint's
// max_in_flight and rate limit, and slow endpoints together within
// slowCap. A slow endpoint over that waits in held, out of the ready queue;
// held ones go back as the share has room. An endpoint at its in-flight
// limit leaves the queue until one of its attempts ends (drainInbox), so a
// step costs the endpoints it serves, not every endpoint with something
// ready (with 100,000 tenant endpoints, walking them all on every step was
// a tenth of the daemon's CPU); one out of rate-limit tokens is asked once
// a step.
//
// Oldest first keeps a backlog spread over many endpoints draining in the
// order it was stored, so the outcomes committed together are neighbours
// in the store's keys: served round robin, one per endpoint per turn, each
// endpoint's queue advanced by the same count rather than the same age,
// and each commit rewrote two to four times the pages. So that one
// endpoint's flood of old deliveries cannot hold every worker while others
// wait, a first pass gives each endpoint at most its share of the workers
// (workers ÷ endpoints with deliveries ready, those at their limit
// included; at least one); a second pass gives the workers still free to
// those over their share, oldest first again.
func (s *Scheduler) dispatch(now time.Time) {
	t := s.table.Load()
	for n := s.slowCap() - s.busySlow; n > 0 && s.held.len() > 0; {
		if q := s.held.pop(); q.held { // else back in the ready queue already (answered meanwhile)
			q.held = false
			s.ready.push(q)
			n--
		}
	}
	if s.busy >= s.opts.Workers || s.ready.len() == 0 {
		return
	}
	// Those at their limit count: they are owed a share as their attempts
	// end, and without them a few flooding endpoints seemed to be all.
	share := max(1, s.opts.Workers/(s.ready.len()+s.atLimit))
	var limited []*epState // out of tokens: back after both passes, asked once a step
	for _, most := range [...]int{share, math.MaxInt} {
		var aside []*epState
		for s.busy < s.opts.Workers && s.ready.len() > 0 {
			switch q := s.ready.pop(); s.offer(t, q, now, most) {
			case overShare:
				aside = append(aside, q)
			case rateLimited:
				limited = append(limited, q)
			}
		}
		for _, q := range aside {
			s.ready.push(q)
		}
	}
	for _, q := range limited {
		s.ready.push(q)
	}
}

// What offer did with an endpoint: handled it, or gave it back to dispatch.
const (
	handled     = iota // sent (and queued again), held, waiting, or nothing ready
	overShare          // over its share of the workers: for the second pass
	rateLimited        // its rate limit has no token: for the next step
)

// offer hands q's first ready delivery to a worker if q may have one more
// in flight, and q back to the ready queue. Otherwise q goes to held when
// slow endpoints have their share, waits at its in-flight limit for one of
// its attempts to end, or is returned to the caller (overShare: over most
// in flight; rateLimited).
func (s *Scheduler) offer(t *Table, q *epState, now time.Time, most int) int {
	for len(q.ready) > 0 && q.ready[0].dropped {
		q.take()
	}
	if len(q.ready) == 0 {
		return handled
	}
	ep := q.endpoint(t)
	limit := removedInFlight
	if ep != nil {
		limit = ep.MaxInFlight // at least 1: the config checks
	}
	// A removed, disabled or internal endpoint's attempt is parked without
	// a request, or is hookd's own alert.
	slow := ep != nil && !ep.Internal && q.slow.Load() && !t.Disabled(ep.ID)
	if slow || ep != nil && !q.answered.Load() {
		// Slow: one attempt at a time until one is answered promptly. Not
		// answered yet: a probe, one at a time until the first prompt answer.
		limit = 1
	}
	switch {
	case q.inflight >= limit:
		q.waiting = true // it has an attempt in flight, whose end wakes it
		s.atLimit++
		return handled
	case slow && s.busySlow >= s.slowCap():
		q.held = true
		s.held.push(q)
		return handled
	case q.inflight >= most:
		return overShare
	case ep != nil && ep.RateLimit > 0 && !q.allow(ep.RateLimit, now):
		return rateLimited
	}
	it := q.take()
	q.inflight++
	s.busy++
	if it.slow = slow; slow {
		s.busySlow++
	}
	it.sent = true
	it.ep, it.gen = ep, t.gen
	if it.d != nil {
		s.carried -= len(it.d.Body)
	}
	s.addInFlight(q, 1)
	s.jobs <- it // never blocks: busy <= Workers == cap(jobs)
	s.ready.push(q)
	return handled
}

// take removes and returns the first ready item. An emptied queue lets
// go of its array (most of 100,000 endpoints have one delivery at a time)
// and of its endpoint: a record lives as long as its endpoint, and one
// holding an endpoint from before a reload would keep that table's packed
// endpoints alive.
func (q *epState) take() *item {
	it := q.ready[0]
	q.ready[0] = nil
	if q.ready = q.ready[1:]; len(q.ready) == 0 {
		q.ready, q.ep, q.gen = nil, nil, 0
	}
	return it
}

// ring is a FIFO queue of endpoints: the slow ones held for their share
// (an entry whose endpoint left held meanwhile is skipped).
type ring struct {
	q    []*epState
	head int
}

func (r *ring) len() int { return len(r.q) - r.head }

func (r *ring) push(q *epState) { r.q = append(r.q, q) }

func (r *ring) pop() *epState {
	q := r.q[r.head]
	r.q[r.head] = nil
	r.head++
	// Reuse the slice's front once the taken part is half of it, so the
	// queue does not grow without bound while it never empties.
	if r.head == len(r.q) {
		r.q, r.head = r.q[:0], 0
	} else if r.head >= 1024 && r.head*2 >= len(r.q) {
		n := copy(r.q, r.q[r.head:])
		clear(r.q[n:])
		r.q, r.head = r.q[:n], 0
	}
	return q
}

// readyQueue holds the endpoints with deliveries ready to send, each at
// most once, as a binary heap ordered by their first ready delivery: due
// time, then the order it became ready. Each entry keeps those two, so
// that sifting through 100,000 endpoints reads the heap's own array, not
// each endpoint's record and item.
type readyQueue struct{ h []readyEntry }

type readyEntry struct {
	due   int64 // unix nanoseconds
	order uint64
	q     *epState
}

func (a readyEntry) before(b readyEntry) bool {
	return a.due < b.due || a.due == b.due && a.order < b.order
}

func (r *readyQueue) len() int { return len(r.h) }

// push adds q unless it has nothing ready or is queued already.
func (r *readyQueue) push(q *epState) {
	if len(q.ready) == 0 || q.queued {
		return
	}
	q.queued = true
	head := q.ready[0]
	r.h = append(r.h, readyEntry{due: head.due.UnixNano(), order: head.order, q: q})
	for i := len(r.h) - 1; i > 0; {
		p := (i - 1) / 2
		if !r.h[i].before(r.h[p]) {
			break
		}
		r.h[i], r.h[p] = r.h[p], r.h[i]
		i = p
	}
}

// pop removes and returns the endpoint whose first ready delivery is the
// oldest.
func (r *readyQueue) pop() *epState {
	q := r.h[0].q
	q.queued = false
	n := len(r.h) - 1
	r.h[0] = r.h[n]
	r.h[n] = readyEntry{}
	r.h = r.h[:n]
	for i := 0; ; {
		m, l := i, 2*i+1
		if l < n && r.h[l].before(r.h[m]) {
			m = l
		}
		if l+1 < n && r.h[l+1].before(r.h[m]) {
			m = l + 1
		}
		if m == i {
			break
		}
		r.h[i], r.h[m] = r.h[m], r.h[i]
		i = m
	}
	return q
}
