package delivery

import (
	"net/netip"
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
