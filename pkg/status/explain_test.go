package status

import (
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// endpoint is one row of a slice; nil conditions are left out, as the API
// allows.
type endpoint struct {
	addr                        string
	node                        string
	ready, serving, terminating *bool
}

var yes, no = ptr.To(true), ptr.To(false)

func endpointSlice(name string, fam discovery.AddressType, portName string, port int32, eps ...endpoint) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: fam,
		Ports:       []discovery.EndpointPort{{Name: ptr.To(portName), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		de := discovery.Endpoint{Addresses: []string{e.addr},
			Conditions: discovery.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating}}
		if e.node != "" {
			de.NodeName = ptr.To(e.node)
		}
		s.Endpoints = append(s.Endpoints, de)
	}
	return s
}

func webService(mutate func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeNodePort,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			Ports:      []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080}},
		},
	}
	if mutate != nil {
		mutate(s)
	}
	return s
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
			Service: webService(func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }),
			Slices: model.Slices(
				endpointSlice("web-abc", v4, "http", 8080,
					endpoint{addr: "10.244.1.2", node: "node-a", ready: yes, serving: yes, terminating: no},
					endpoint{addr: "10.244.1.3", node: "node-a", ready: no, serving: no, terminating: no},
					endpoint{addr: "10.244.1.4", node: "node-a", ready: no, serving: yes, terminating: yes},
					endpoint{addr: "10.244.2.2", node: "node-b", ready: yes, serving: yes, terminating: no},
				),
				endpointSlice("web-old", v4, "web", 8080,
					endpoint{addr: "10.244.1.9", node: "node-a", ready: yes},
				),
			),
		},
	}, {
		// Every endpoint is terminating: those still serving are kept.
		golden: "explain-terminating.txt",
		in: model.ServiceInput{
			Service: webService(nil),
			Slices: model.Slices(
				endpointSlice("web-abc", v4, "http", 8080,
					endpoint{addr: "10.244.1.4", node: "node-a", ready: no, serving: yes, terminating: yes},
					endpoint{addr: "10.244.2.4", node: "node-b", ready: no, serving: no, terminating: yes},
				),
			),
		},
	}, {
		// internalTrafficPolicy Local restricts the clusterIP, not NodePorts;
		// an endpoint with no node is never local; a bad address is named.
		golden: "explain-internal-local.txt",
		in: model.ServiceInput{
			Service: webService(func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal) }),
			Slices: model.Slices(
				endpointSlice("web-abc", v4, "http", 8080,
					endpoint{addr: "10.244.1.2", node: "node-a"},
					endpoint{addr: "10.244.2.2", node: "node-b"},
					endpoint{addr: "10.244.3.2"},
					endpoint{addr: "not-an-ip", node: "node-a"},
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
