package main

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
)

// Health-check node ports listen where NodePorts do.
func TestHealthCheckAddresses(t *testing.T) {
	link := netif.NewFake("kube-ipvs0")
	link.SetHostAddresses([]netif.HostAddress{
		{Link: "eth0", Addr: netip.MustParseAddr("192.168.1.10")},
		{Link: "eth1", Addr: netip.MustParseAddr("10.0.0.5")},
		{Link: "lo", Addr: netip.MustParseAddr("127.0.0.1")},
	})
	for _, tc := range []struct {
		prefixes []netip.Prefix
		want     string
	}{
		{nil, "[]"}, // nil: every address
		{[]netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}, "[192.168.1.10]"},
		{[]netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}, "[] empty"},
	} {
		got := healthCheckAddresses(link, tc.prefixes)
		s := fmt.Sprint(got)
		if got != nil && len(got) == 0 {
			s += " empty"
		}
		if s != tc.want {
			t.Errorf("%v: %s, want %s", tc.prefixes, s, tc.want)
		}
	}
}

func TestHTTPServersHaveTimeouts(t *testing.T) {
	s := newHTTPServer("127.0.0.1:0", nil)
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("timeouts: header %v, read %v, write %v, idle %v; want all set", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
}
