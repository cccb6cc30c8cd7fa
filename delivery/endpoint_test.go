package delivery

import (
	"strings"
	"testing"
)

// Managed ids are short, and sort in the order their numbers were handed
// out; an old ULID id is longer than any of them, so none can be made again.
func TestManagedID(t *testing.T) {
	for n, want := range map[uint64]string{1: "m:00000001", 35: "m:0000000z", 36: "m:00000010", 1 << 40: "m:e13wu1og"} {
		if got := ManagedID(n); got != want {
			t.Errorf("ManagedID(%d) = %q, want %q", n, got, want)
		}
	}
	prev := ""
	for _, n := range []uint64{1, 2, 35, 36, 1295, 1296, 100_000, 1 << 40, 36*36*36*36*36*36*36*36 - 1} {
		id := ManagedID(n)
		if id <= prev {
			t.Errorf("%q (%d) sorts before %q", id, n, prev)
		}
		prev = id
	}
	if ulid := "m:01kbx3qz8v4n6r2t7w9y5c0d1e"; len(ManagedID(1<<63)) >= len(ulid) || !strings.HasPrefix(ulid, ManagedIDPrefix) {
		t.Errorf("a number's id may be as long as a ULID id: %q", ManagedID(1<<63))
	}
}
