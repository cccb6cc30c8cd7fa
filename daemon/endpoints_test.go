package daemon

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"hookd/delivery"
)

// firstByName gives what sorting every endpoint and cutting would: for
// any page size, cursor and filter, endpoints in any order.
func TestFirstByName(t *testing.T) {
	var eps []*delivery.Endpoint
	for i := range 1000 {
		eps = append(eps, &delivery.Endpoint{EndpointConfig: delivery.EndpointConfig{Name: fmt.Sprintf("e%04d", i), Tenant: fmt.Sprint("t", i%3)}})
	}
	byName := func(a, b *delivery.Endpoint) int { return strings.Compare(a.Name, b.Name) }
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		rng.Shuffle(len(eps), func(i, j int) { eps[i], eps[j] = eps[j], eps[i] })
		n, after, tenant := 1+rng.IntN(120), fmt.Sprintf("e%04d", rng.IntN(1100)), fmt.Sprint("t", rng.IntN(4))
		if rng.IntN(4) == 0 {
			after = ""
		}
		keep := func(e *delivery.Endpoint) bool { return tenant == "t3" || e.Tenant == tenant }
		var want []*delivery.Endpoint
		for _, e := range eps {
			if e.Name > after && keep(e) {
				want = append(want, e)
			}
		}
		slices.SortFunc(want, byName)
		want = want[:min(n, len(want))]
		if got := firstByName(eps, after, n, keep); !slices.Equal(got, want) {
			t.Fatalf("n %d after %q tenant %s: got %d, want %d", n, after, tenant, len(got), len(want))
		}
	}
}

// A patch's events are unchanged whatever their order: the portal's form
// sends catalogued types in the catalogue's order (review).
func TestSameSet(t *testing.T) {
	if !sameSet([]string{"b.x", "a.x"}, []string{"a.x", "b.x", "a.x"}) || sameSet([]string{"a.x"}, []string{"a.x", "b.x"}) {
		t.Fatal("sameSet")
	}
}
