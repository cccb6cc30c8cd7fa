package delivery

import "time"

// wheel is a hashed timing wheel for the near horizon: slot i holds the
// items due in tick i (mod len(slots)). It only ever holds items due less
// than one revolution ahead; the bbolt due index is the outer, unbounded
// level from which the scheduler loads the next horizon, so a backlog of
// millions of far-future retries costs disk, not memory.
type wheel struct {
	tick  time.Duration
	slots [][]*item
	cur   int64 // last tick that was collected
	n     int   // items held
}

func newWheel(tick time.Duration, slots int, now time.Time) *wheel {
	return &wheel{tick: tick, slots: make([][]*item, slots), cur: now.UnixNano() / int64(tick)}
}

// span is how far ahead the wheel can hold items.
func (w *wheel) span() time.Duration { return w.tick * time.Duration(len(w.slots)-1) }

// placement is where add put an item.
type placement int

const (
	inWheel    placement = iota
	alreadyDue           // the caller makes it ready now
	beyondSpan           // the caller leaves it in the store for a later scan
)

// add places it in its slot when it is due within the span.
func (w *wheel) add(it *item) placement {
	// Round up: an item is collected at the end of its tick, never early.
	t := (it.due.UnixNano() + int64(w.tick) - 1) / int64(w.tick)
	switch {
	case t <= w.cur:
		return alreadyDue
	case t-w.cur >= int64(len(w.slots)):
		return beyondSpan
	}
	i := t % int64(len(w.slots))
	w.slots[i] = append(w.slots[i], it)
	w.n++
	return inWheel
}

// advance collects every item due up to now, in tick order.
func (w *wheel) advance(now time.Time, fn func(*item)) {
	end := now.UnixNano() / int64(w.tick)
	if end-w.cur > int64(len(w.slots)) {
		w.cur = end - int64(len(w.slots)) // a long stall: every slot is due
	}
	for w.cur < end {
		w.cur++
		i := w.cur % int64(len(w.slots))
		for _, it := range w.slots[i] {
			fn(it)
		}
		w.n -= len(w.slots[i])
		clear(w.slots[i])
		w.slots[i] = w.slots[i][:0]
	}
}
