package model

import (
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// The health-check node port counts each family's local ready endpoints
// apart, as kube-proxy's health server of each family does: a dual-stack
// pod is one endpoint to an IPv4 probe and one to an IPv6 probe, not two;
// FQDN slices, other nodes' and not-ready endpoints do not count, nor do
// endpoints of a slice without a valid port (kube-proxy's rule).
func TestHealthCheckCountsByFamily(t *testing.T) {
	svc := ServiceFrom(testobj.Service("ns", "lb", []string{"10.96.0.60"}, func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32060
	}))
	slice := func(name string, fam discovery.AddressType, eps ...testobj.Endpoint) *discovery.EndpointSlice {
		return testobj.Slice("ns", name, "lb", fam, testobj.HTTP(8080), eps...)
	}
	ported := func(name string, fam discovery.AddressType, ports []discovery.EndpointPort, eps ...testobj.Endpoint) *discovery.EndpointSlice {
		return testobj.Slice("ns", name, "lb", fam, ports, eps...)
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
		{"IPv4 slices only: no IPv6 count", []*discovery.EndpointSlice{
			slice("v4", discovery.AddressTypeIPv4, testobj.Endpoint{Addr: "10.244.1.5", Node: "node-a"}, testobj.Endpoint{Addr: "10.244.1.6", Node: "node-a"},
				testobj.Endpoint{Addr: "10.244.2.5", Node: "node-b"}, testobj.Endpoint{Addr: "10.244.1.7", Node: "node-a", Ready: testobj.No}),
		}, [2]int{2, 0}},
		{"FQDN slices are never real servers", []*discovery.EndpointSlice{
			slice("names", discovery.AddressTypeFQDN, testobj.Endpoint{Addr: "db.example.com", Node: "node-a"}),
		}, [2]int{0, 0}},
		// A pod that declares none of the Service's named targetPorts (a
		// rollout renaming a container port) gets a slice with ports: [].
		// It is no real server, so the node must answer 503, as
		// kube-proxy's does, or the load balancer keeps sending clients
		// to a node that drops them.
		{"a slice with no ports is no local endpoint", []*discovery.EndpointSlice{
			ported("renamed", discovery.AddressTypeIPv4, []discovery.EndpointPort{}, testobj.Endpoint{Addr: "10.244.1.5", Node: "node-a"}),
			slice("v4", discovery.AddressTypeIPv4, testobj.Endpoint{Addr: "10.244.2.5", Node: "node-b"}),
		}, [2]int{0, 0}},
		{"a slice whose only port has no number is no local endpoint", []*discovery.EndpointSlice{
			ported("nil", discovery.AddressTypeIPv4, []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP)}},
				testobj.Endpoint{Addr: "10.244.1.5", Node: "node-a"}),
			ported("zero", discovery.AddressTypeIPv4, testobj.HTTP(0), testobj.Endpoint{Addr: "10.244.1.6", Node: "node-a"}),
		}, [2]int{0, 0}},
		{"a slice whose only port has no name is no local endpoint", []*discovery.EndpointSlice{
			ported("unnamed", discovery.AddressTypeIPv4, []discovery.EndpointPort{{Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
				testobj.Endpoint{Addr: "10.244.1.5", Node: "node-a"}),
		}, [2]int{0, 0}},
		{"this node's endpoint under a valid port counts, its portless one not", []*discovery.EndpointSlice{
			ported("renamed", discovery.AddressTypeIPv4, []discovery.EndpointPort{}, testobj.Endpoint{Addr: "10.244.1.6", Node: "node-a"}),
			slice("v4", discovery.AddressTypeIPv4, testobj.Endpoint{Addr: "10.244.1.5", Node: "node-a"}),
			ported("v6", discovery.AddressTypeIPv6, nil, testobj.Endpoint{Addr: "fd00:244::5", Node: "node-a"}),
		}, [2]int{1, 0}},
		// kube-proxy counts endpoints under any valid slice port, even one
		// the Service no longer has.
		{"a valid port the Service does not have still counts", []*discovery.EndpointSlice{
			ported("old", discovery.AddressTypeIPv4, []discovery.EndpointPort{testobj.Port("web", v1.ProtocolTCP, 8080)},
				testobj.Endpoint{Addr: "10.244.1.5", Node: "node-a"}),
		}, [2]int{1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A dual-stack Service: each family is counted apart.
			hc := healthCheck(svc, []netip.Addr{netip.MustParseAddr("10.96.0.60"), netip.MustParseAddr("fd00:10:96::60")}, Slices(tc.slices...), "node-a")
			if hc == nil || hc.LocalEndpoints != tc.want {
				t.Errorf("health check %+v, want local endpoints %v", hc, tc.want)
			}
		})
	}
}

// The Service's families are those of the clusterIPs the Builder keeps:
// its health-check node port listens in those alone (see
// HealthCheck.Families), as kube-proxy's proxier of each family does for
// its own family's Services. On a node without IPv6 (NoIPv6) a
// dual-stack Service is IPv4 only.
func TestHealthCheckFamilies(t *testing.T) {
	v6 := discovery.AddressTypeIPv6
	lb := func(clusterIPs ...string) *v1.Service {
		return testobj.Service("ns", "web", clusterIPs, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 32060
		})
	}
	slices := Slices(
		slice("web-4", v4, httpPort, ep{Addr: "10.244.1.5", Node: "node-a"}),
		slice("web-6", v6, httpPort, ep{Addr: "fd00:244::5", Node: "node-a"}, ep{Addr: "fd00:244::6", Node: "node-a"}),
	)
	for _, tc := range []struct {
		name   string
		svc    *v1.Service
		noIPv6 bool
		want   HealthCheck
	}{
		// The other family's slices count for nothing: the node has no
		// virtual server of that family for their endpoints.
		{"single-stack IPv4", lb("10.96.0.60"), false,
			HealthCheck{NodePort: 32060, LocalEndpoints: [2]int{1, 0}, Families: [2]bool{true, false}}},
		{"single-stack IPv6", lb("fd00:10:96::60"), false,
			HealthCheck{NodePort: 32060, LocalEndpoints: [2]int{0, 2}, Families: [2]bool{false, true}}},
		{"dual-stack", lb("10.96.0.60", "fd00:10:96::60"), false,
			HealthCheck{NodePort: 32060, LocalEndpoints: [2]int{1, 2}, Families: [2]bool{true, true}}},
		{"dual-stack IPv6 first", lb("fd00:10:96::60", "10.96.0.60"), false,
			HealthCheck{NodePort: 32060, LocalEndpoints: [2]int{1, 2}, Families: [2]bool{true, true}}},
		{"dual-stack on a node without IPv6", lb("10.96.0.60", "fd00:10:96::60"), true,
			HealthCheck{NodePort: 32060, LocalEndpoints: [2]int{1, 0}, Families: [2]bool{true, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			o.NoIPv6 = tc.noIPv6
			st := NewBuilder(o).Service(ServiceInput{Service: ServiceFrom(tc.svc), Slices: slices})
			if st.HealthCheck == nil || *st.HealthCheck != tc.want {
				t.Errorf("health check %+v, want %+v", st.HealthCheck, tc.want)
			}
		})
	}
}
