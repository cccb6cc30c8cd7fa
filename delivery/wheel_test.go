package delivery

import (
	"testing"
	"time"
)

func TestWheelOrdersByTick(t *testing.T) {
	start := time.Unix(1000, 0)
	w := newWheel(10*time.Millisecond, 64, start)
	var got []string
	for _, c := range []struct {
		key string
		in  time.Duration
	}{{"c", 300 * time.Millisecond}, {"a", 20 * time.Millisecond}, {"b", 100 * time.Millisecond}} {
		if w.add(&item{key: c.key, due: start.Add(c.in)}) != inWheel {
			t.Fatalf("%s not added", c.key)
		}
	}
	if w.add(&item{key: "now", due: start}) != alreadyDue {
		t.Fatal("an item already due went into the wheel")
	}
	if w.add(&item{key: "far", due: start.Add(time.Second)}) != beyondSpan {
		t.Fatal("an item beyond the span went into the wheel")
	}
	collect := func(it *item) { got = append(got, it.key) }
	w.advance(start.Add(50*time.Millisecond), collect)
	if len(got) != 1 || got[0] != "a" {
		t.Fatalf("after 50ms: %v", got)
	}
	w.advance(start.Add(time.Hour), collect) // a long stall releases everything
	if len(got) != 3 || got[1] != "b" || got[2] != "c" || w.n != 0 {
		t.Fatalf("after stall: %v (n=%d)", got, w.n)
	}
}

func BenchmarkWheel(b *testing.B) {
	start := time.Unix(1000, 0)
	w := newWheel(10*time.Millisecond, 4096, start)
	it := &item{}
	now := start
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		it.due = now.Add(time.Duration(i%4000+1) * 10 * time.Millisecond)
		w.add(it)
		if i%100 == 0 {
			now = now.Add(10 * time.Millisecond)
			w.advance(now, func(*item) {})
		}
	}
}
