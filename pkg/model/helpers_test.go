package model

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Small builders keep each test case to the fields it is about.

func service(name string, mutate ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeClusterIP,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			Ports:      []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

type ep struct {
	addr        string
	node        string
	ready       *bool
	serving     *bool
	terminating *bool
}

func slice(name string, fam discovery.AddressType, ports []discovery.EndpointPort, eps ...ep) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: fam,
		Ports:       ports,
	}
	for _, e := range eps {
		de := discovery.Endpoint{Addresses: []string{e.addr}, Conditions: discovery.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating}}
		if e.node != "" {
			de.NodeName = ptr.To(e.node)
		}
		s.Endpoints = append(s.Endpoints, de)
	}
	return s
}

func port(name string, proto v1.Protocol, n int32) discovery.EndpointPort {
	return discovery.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(n)}
}

var (
	httpPort = []discovery.EndpointPort{port("http", v1.ProtocolTCP, 8080)}
	yes      = ptr.To(true)
	no       = ptr.To(false)
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}
