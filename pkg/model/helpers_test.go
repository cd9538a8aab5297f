package model

import (
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// Small builders keep each test case to the fields it is about.

func service(name string, mutate ...func(*v1.Service)) *v1.Service {
	return testobj.Service("ns", name, []string{"10.96.0.10"}, mutate...)
}

type ep = testobj.Endpoint

// slice is a slice of Service "web".
func slice(name string, fam discovery.AddressType, ports []discovery.EndpointPort, eps ...ep) *discovery.EndpointSlice {
	return testobj.Slice("ns", name, "web", fam, ports, eps...)
}

var (
	port     = testobj.Port
	httpPort = testobj.HTTP(8080)
	yes, no  = testobj.Yes, testobj.No
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}
