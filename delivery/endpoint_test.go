package delivery

import (
	"strings"
	"testing"
	"time"
)

// Managed ids are short, sort in the order their numbers were handed out
// (time in microseconds and up), after the ULID ids of older endpoints.
func TestManagedID(t *testing.T) {
	if got := ManagedID(1764158400000000); got != "m:hdcb6i51c0" {
		t.Errorf("ManagedID = %q", got)
	}
	ulid := "m:01kbx3qz8v4n6r2t7w9y5c0d1e"
	prev := ulid
	for _, at := range []time.Time{time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 0, 0, 0, 1000, time.UTC), time.Date(2085, 1, 1, 0, 0, 0, 0, time.UTC)} {
		id := ManagedID(uint64(at.UnixMicro()))
		if id <= prev || len(id) != len("m:")+10 || len(id) >= len(ulid) || !strings.HasPrefix(id, ManagedIDPrefix) {
			t.Errorf("%q (%v) does not sort after %q, or is not ten digits", id, at, prev)
		}
		prev = id
	}
}
