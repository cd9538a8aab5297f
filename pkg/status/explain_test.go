package status

import (
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

type endpoint = testobj.Endpoint

var yes, no = testobj.Yes, testobj.No

// endpointSlice is a slice of Service "web" with one TCP port.
func endpointSlice(name string, fam discovery.AddressType, portName string, port int32, eps ...endpoint) *discovery.EndpointSlice {
	return testobj.Slice("ns", name, "web", fam, []discovery.EndpointPort{testobj.Port(portName, v1.ProtocolTCP, port)}, eps...)
}

func webService(mutate func(*v1.Service)) *v1.Service {
	return testobj.Service("ns", "web", []string{"10.96.0.10"}, func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		if mutate != nil {
			mutate(s)
		}
	})
}

func TestExplain(t *testing.T) {
	v4 := discovery.AddressTypeIPv4
	b := model.NewBuilder(model.Options{NodeName: "node-a", NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.1.10")}, Scheduler: "rr"})
	cases := []struct {
		golden string
		in     model.ServiceInput
	}{{
		// externalTrafficPolicy Local, with: a ready local endpoint, a
		// not-ready one, one terminating while ready ones exist, a ready
		// remote one, and a slice whose port name is not the Service's.
		golden: "explain-local.txt",
		in: model.ServiceInput{
			Service: model.ServiceFrom(webService(func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal })),
			Slices: model.Slices(
				endpointSlice("web-abc", v4, "http", 8080,
					endpoint{Addr: "10.244.1.2", Node: "node-a", Ready: yes, Serving: yes, Terminating: no},
					endpoint{Addr: "10.244.1.3", Node: "node-a", Ready: no, Serving: no, Terminating: no},
					endpoint{Addr: "10.244.1.4", Node: "node-a", Ready: no, Serving: yes, Terminating: yes},
					endpoint{Addr: "10.244.2.2", Node: "node-b", Ready: yes, Serving: yes, Terminating: no},
				),
				endpointSlice("web-old", v4, "web", 8080,
					endpoint{Addr: "10.244.1.9", Node: "node-a", Ready: yes},
				),
			),
		},
	}, {
		// Every endpoint is terminating: those still serving are kept.
		golden: "explain-terminating.txt",
		in: model.ServiceInput{
			Service: model.ServiceFrom(webService(nil)),
			Slices: model.Slices(
				endpointSlice("web-abc", v4, "http", 8080,
					endpoint{Addr: "10.244.1.4", Node: "node-a", Ready: no, Serving: yes, Terminating: yes},
					endpoint{Addr: "10.244.2.4", Node: "node-b", Ready: no, Serving: no, Terminating: yes},
				),
			),
		},
	}, {
		// internalTrafficPolicy Local restricts the clusterIP, not NodePorts;
		// an endpoint with no node is never local; a bad address is named.
		golden: "explain-internal-local.txt",
		in: model.ServiceInput{
			Service: model.ServiceFrom(webService(func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal) })),
			Slices: model.Slices(
				endpointSlice("web-abc", v4, "http", 8080,
					endpoint{Addr: "10.244.1.2", Node: "node-a"},
					endpoint{Addr: "10.244.2.2", Node: "node-b"},
					endpoint{Addr: "10.244.3.2"},
					endpoint{Addr: "not-an-ip", Node: "node-a"},
				),
			),
		},
	}}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			golden(t, tc.golden, Explain(b.Explain(tc.in)))
		})
	}
}

// The explanations are the builder's decisions under the running proxy's
// options: a NodePort Service with an externalIP explained under options
// that leave its external addresses out says "-" for them, and lists the
// problems the builder reported.
func TestExplainFollowsOptions(t *testing.T) {
	v4 := discovery.AddressTypeIPv4
	in := model.ServiceInput{
		Service: model.ServiceFrom(webService(func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.7"} })),
		Slices: model.Slices(endpointSlice("web-abc", v4, "http", 8080,
			endpoint{Addr: "10.244.1.2", Node: "node-a", Ready: yes})),
	}
	base := model.Options{NodeName: "node-a", NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.1.10")}, Scheduler: "rr"}
	cases := []struct {
		golden string
		change func(*model.Options)
	}{
		{"explain-options-default.txt", func(*model.Options) {}},
		// The NodePort stays (the node address is inside); the externalIP goes.
		{"explain-options-no-externalips.txt", func(o *model.Options) { o.DenyExternalIPs = true }},
		// Neither the NodePort (no node address inside) nor the externalIP.
		{"explain-options-nothing-external.txt", func(o *model.Options) {
			o.DenyExternalIPs = true
			o.NodePortAddresses = []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}
		}},
		// The externalIP inside the Service CIDR is refused, NodePorts
		// are on no address.
		{"explain-options-cidr.txt", func(o *model.Options) {
			o.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
			o.NodePortAddresses = []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			opts := base
			tc.change(&opts)
			b := model.NewBuilder(opts)
			golden(t, tc.golden, Explain(b.Explain(in))+Problems(b.Service(in)))
		})
	}
}
