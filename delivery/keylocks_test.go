package delivery

import (
	"testing"
	"time"
)

// A key's lock waits only for that key's holder, and is dropped once
// nobody holds or waits for it.
func TestKeyLocks(t *testing.T) {
	var l KeyLocks
	unlockA := l.Lock("a")
	l.Lock("b")() // another key: not held up by a
	got := make(chan struct{})
	go func() { l.Lock("a")(); close(got) }()
	select {
	case <-got:
		t.Fatal("a was locked twice at once")
	case <-time.After(50 * time.Millisecond): // a wrong answer shows up here; a right one waits
	}
	unlockA()
	<-got
	if len(l.m) != 0 {
		t.Fatalf("locks left behind: %v", l.m)
	}
}
