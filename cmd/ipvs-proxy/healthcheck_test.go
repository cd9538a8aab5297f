package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
)

// Health-check node ports listen where NodePorts do, by family: every
// address of a family --nodeport-addresses names no prefix of, as
// kube-proxy's health server of that family does.
func TestHealthCheckAddresses(t *testing.T) {
	link := netif.NewFake("kube-ipvs0")
	link.SetHostAddresses([]netif.HostAddress{
		{Link: "eth0", Addr: netip.MustParseAddr("192.168.1.10")},
		{Link: "eth1", Addr: netip.MustParseAddr("10.0.0.5")},
		{Link: "eth0", Addr: netip.MustParseAddr("fd00::10")},
		{Link: "lo", Addr: netip.MustParseAddr("127.0.0.1")},
	})
	for _, tc := range []struct {
		prefixes []string
		want     string
	}{
		{nil, "IPv4 every, IPv6 every"},
		{[]string{"192.168.0.0/16"}, "IPv4 [192.168.1.10], IPv6 every"},
		{[]string{"172.16.0.0/12"}, "IPv4 none, IPv6 every"},
		{[]string{"fd00::/64"}, "IPv4 every, IPv6 [fd00::10]"},
		{[]string{"10.0.0.0/8", "fd01::/64"}, "IPv4 [10.0.0.5], IPv6 none"},
	} {
		var prefixes []netip.Prefix
		for _, p := range tc.prefixes {
			prefixes = append(prefixes, netip.MustParsePrefix(p))
		}
		got := healthCheckAddresses(link, prefixes)
		var fams []string
		for f, name := range []string{"IPv4", "IPv6"} {
			switch {
			case got[f] == nil:
				fams = append(fams, name+" every")
			case len(got[f]) == 0:
				fams = append(fams, name+" none")
			default:
				fams = append(fams, fmt.Sprint(name, " ", got[f]))
			}
		}
		if s := strings.Join(fams, ", "); s != tc.want {
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
