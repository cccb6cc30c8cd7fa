package delivery

import (
	"testing"
	"time"
)

// Hours puts each attempt in its hour of the last 24, oldest first,
// forgets hours older than that, and Forget drops a deleted endpoint.
func TestHours(t *testing.T) {
	var s Scheduler
	now := time.Date(2026, 11, 25, 18, 30, 0, 0, time.UTC)
	s.eps = map[string]*epState{}
	s.statsMu.Lock()
	for _, a := range []struct {
		at time.Time
		ok bool
	}{
		{now, true}, {now.Add(-10 * time.Minute), false}, {now.Add(-time.Hour), true},
		{now.Add(-23 * time.Hour), true},
		{now.Add(-24 * time.Hour), false}, // now's slot a day ago (a clock step): not counted, nothing lost
		{now.Add(72 * time.Hour), false},  // three days ahead (a clock step): the same
	} {
		s.stat("e").countHour(a.at, now, a.ok)
	}
	s.statsMu.Unlock()
	start, delivered, failed := s.Hours("e", now)
	if want := time.Date(2026, 11, 24, 19, 0, 0, 0, time.UTC); !start.Equal(want) {
		t.Fatalf("start %s, want %s", start, want)
	}
	if delivered[23] != 1 || failed[23] != 1 || delivered[22] != 1 || delivered[0] != 1 {
		t.Fatalf("delivered %v failed %v", delivered, failed)
	}
	sum := 0
	for i := range 24 {
		sum += delivered[i] + failed[i]
	}
	if sum != 4 {
		t.Fatalf("%d attempts in the last 24 hours, want 4 (delivered %v failed %v)", sum, delivered, failed)
	}
	s.Forget("e")
	if _, d, f := s.Hours("e", now); d != [24]int{} || f != [24]int{} {
		t.Fatalf("after Forget: %v %v", d, f)
	}
}
