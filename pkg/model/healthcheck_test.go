package model

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// The health-check node port counts each family's local ready endpoints
// apart, as kube-proxy's health server of each family does: a dual-stack
// pod is one endpoint to an IPv4 probe and one to an IPv6 probe, not two;
// FQDN slices, other nodes' and not-ready endpoints do not count.
func TestHealthCheckCountsByFamily(t *testing.T) {
	svc := ServiceFrom(testobj.Service("ns", "lb", []string{"10.96.0.60"}, func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32060
	}))
	slice := func(name string, fam discovery.AddressType, eps ...testobj.Endpoint) *discovery.EndpointSlice {
		return testobj.Slice("ns", name, "lb", fam, testobj.HTTP(8080), eps...)
	}
	for _, tc := range []struct {
		name   string
		slices []*discovery.EndpointSlice
		want   [2]int
	}{
		{"a dual-stack pod counts once in each family", []*discovery.EndpointSlice{
			slice("v4", discovery.AddressTypeIPv4, testobj.Endpoint{Addr: "10.244.1.5", Node: "node-a"}),
			slice("v6", discovery.AddressTypeIPv6, testobj.Endpoint{Addr: "fd00:244::5", Node: "node-a"}),
		}, [2]int{1, 1}},
		{"IPv4 only: an IPv6 probe finds none", []*discovery.EndpointSlice{
			slice("v4", discovery.AddressTypeIPv4, testobj.Endpoint{Addr: "10.244.1.5", Node: "node-a"}, testobj.Endpoint{Addr: "10.244.1.6", Node: "node-a"},
				testobj.Endpoint{Addr: "10.244.2.5", Node: "node-b"}, testobj.Endpoint{Addr: "10.244.1.7", Node: "node-a", Ready: testobj.No}),
		}, [2]int{2, 0}},
		{"FQDN slices are never real servers", []*discovery.EndpointSlice{
			slice("names", discovery.AddressTypeFQDN, testobj.Endpoint{Addr: "db.example.com", Node: "node-a"}),
		}, [2]int{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := healthCheck(svc, Slices(tc.slices...), "node-a")
			if hc == nil || hc.LocalEndpoints != tc.want {
				t.Errorf("health check %+v, want local endpoints %v", hc, tc.want)
			}
		})
	}
}
