package delivery

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
)

func TestDeniedUnspecifiedIsLoopback(t *testing.T) {
	deny := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, c := range []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"0.0.0.0", true}, {"::", true}, {"::ffff:0.0.0.0", true},
		{"::ffff:127.0.0.1", true}, {"192.0.2.1", false}, {"2001:db8::1", false},
	} {
		if got := Denied(netip.MustParseAddr(c.ip), deny); got != c.want {
			t.Errorf("Denied(%s) = %v, want %v", c.ip, got, c.want)
		}
	}
	if Denied(netip.MustParseAddr("198.51.100.7"), nil) {
		t.Error("nothing denied, yet denied")
	}
}

// Managed endpoints live in a sharded index that changes copy-on-write:
// a table taken before a change keeps seeing what it saw.
func TestTableManagedChanges(t *testing.T) {
	ordering := ""
	ep := func(id, name, tenant string) *Endpoint {
		e, err := NewEndpoint(EndpointConfig{ID: id, Name: name, Tenant: tenant, Events: []string{"*"}, Envelope: &StandardEnvelope, Signing: &SigningConfig{Scheme: "none"}, Ordering: ordering})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	cfgEp := ep("", "platform", "")
	t0 := NewTable([]*Endpoint{cfgEp}, nil)
	a1, b1 := ep("m:1", "a1", "A"), ep("m:2", "b1", "B")
	t1 := t0.WithManaged(a1).WithManaged(b1)
	if t0.Get("a1") != nil || t1.Get("a1") != a1 || t1.ByID("m:2") != b1 || len(t1.All()) != 3 {
		t.Fatalf("add: %v %v", t0.Get("a1"), t1.All())
	}
	if got, _ := t1.Route("x", "A", nil); len(got) != 2 || got[0] != a1 || got[1] != cfgEp {
		t.Fatalf("route A: %v", got)
	}
	a2 := ep("m:1", "a1", "A")
	t2 := t1.WithManaged(a2).WithoutManaged("b1")
	if t1.Get("a1") != a1 || t2.Get("a1") != a2 || t2.Get("b1") != nil || t2.ByID("m:2") != nil || t1.ByID("m:2") != b1 {
		t.Fatal("replace/remove changed an older table or missed the new one")
	}
	if got := t2.TenantEndpoints("A"); len(got) != 1 || got[0] != a2 {
		t.Fatalf("tenant A after replace: %v", got)
	}
	if got := t2.TenantEndpoints("B"); len(got) != 0 {
		t.Fatalf("tenant B after delete: %v", got)
	}
	t3 := t2.WithConfig(nil).WithAllManaged([]*Endpoint{a2, b1})
	// Indexed in one pass, the endpoints are copies (pack).
	if t3.Get("platform") != nil || t3.Get("b1") == nil || t3.Get("b1").ID != "m:2" || len(t3.All()) != 2 {
		t.Fatalf("reload: %v", t3.All())
	}
	// AnyOrdered follows every way an ordered endpoint comes and goes.
	ordering = OrderingFIFO
	fifoCfg, fifo := ep("", "fifo-cfg", ""), ep("m:3", "fifo", "A")
	if t3.AnyOrdered() || !NewTable([]*Endpoint{fifoCfg}, nil).AnyOrdered() {
		t.Fatal("AnyOrdered of the config's endpoints")
	}
	t4 := t3.WithManaged(fifo)
	if !t4.AnyOrdered() || t3.AnyOrdered() || t4.WithoutManaged("fifo").AnyOrdered() || !t4.WithManaged(ep("m:3", "fifo", "A")).WithoutManaged("b1").AnyOrdered() {
		t.Fatal("AnyOrdered after managed changes")
	}
	ordering = ""
	if t4.WithManaged(ep("m:3", "fifo", "A")).AnyOrdered() || !t3.WithAllManaged([]*Endpoint{fifo}).AnyOrdered() {
		t.Fatal("AnyOrdered after a patch or a reload")
	}
}

// ManagedChanges finds what changed between two tables, through the
// shards a change copied: a replaced endpoint, a new one, a deleted one
// (a name deleted and made again is both), and nothing between a table
// and itself or a table with only its config or disabled flags changed.
func TestTableManagedChangesSince(t *testing.T) {
	ep := func(id, name string) *Endpoint {
		e, err := NewEndpoint(EndpointConfig{ID: id, Name: name, Tenant: "T" + name, Events: []string{"*"}, Envelope: &StandardEnvelope, Signing: &SigningConfig{Scheme: "none"}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	var eps []*Endpoint
	for i := range 1000 {
		eps = append(eps, ep(fmt.Sprintf("m:%d", i), fmt.Sprintf("e%d", i)))
	}
	before := NewTable(nil, nil).WithAllManaged(eps)
	ids := func(eps []*Endpoint) []string {
		var out []string
		for _, e := range eps {
			out = append(out, e.ID)
		}
		slices.Sort(out)
		return out
	}
	check := func(what string, after *Table, changed, deleted []string) {
		t.Helper()
		c, d := after.ManagedChanges(before)
		if !slices.Equal(ids(c), changed) || !slices.Equal(ids(d), deleted) {
			t.Fatalf("%s: changed %d %.80v deleted %v, want %d %.80v and %v", what, len(c), ids(c), ids(d), len(changed), changed, deleted)
		}
	}
	check("itself", before, nil, nil)
	check("config and flags", before.WithConfig([]*Endpoint{ep("", "cfg")}).WithDisabled("m:3", true), nil, nil)
	after := before.WithManaged(ep("m:7", "e7")).WithManaged(ep("m:2000", "new")).WithoutManaged("e9").WithoutManaged("e11").WithManaged(ep("m:2001", "e11"))
	check("changes", after, []string{"m:2000", "m:2001", "m:7"}, []string{"m:11", "m:9"})
	check("a reload's", before.WithAllManaged(before.ManagedEndpoints()), ids(eps), nil) // every endpoint anew
}

// A listener on a wildcard address is reached at each of this host's
// addresses, not only at loopback: an endpoint at the host's own IP made a
// delivery loop through ingest (black-box testing).
func TestIsSelfAtTheHostsAddresses(t *testing.T) {
	self := []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:8525"), netip.MustParseAddrPort("127.0.0.1:8526")}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ip := netip.MustParsePrefix(a.String()).Addr()
		if !IsSelf(ip, 8525, self) {
			t.Errorf("%s:8525 is not self", ip)
		}
		if IsSelf(ip, 8527, self) || (!ip.IsLoopback() && IsSelf(ip, 8526, self)) {
			t.Errorf("%s on another port, or at a loopback-only listener, is self", ip)
		}
	}
	if IsSelf(netip.MustParseAddr("192.0.2.1"), 8525, self) {
		t.Error("a documentation address is self")
	}
}
