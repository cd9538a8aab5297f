// Package testobj builds the Services and EndpointSlices that tests feed to
// the proxy, so each test case spells only the fields it is about. Tests
// only: nothing outside _test.go files imports it.
package testobj

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Yes and No are the pointers an endpoint's conditions take.
var Yes, No = ptr.To(true), ptr.To(false)

// Service is a ClusterIP Service ns/name with one port, "http" TCP 80. The
// first of clusterIPs is its ClusterIP; none leaves both fields for the API
// server to allocate. mutate changes what a case is about.
func Service(ns, name string, clusterIPs []string, mutate ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ServiceSpec{
			Type:  v1.ServiceTypeClusterIP,
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}},
		},
	}
	if len(clusterIPs) > 0 {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = clusterIPs[0], clusterIPs
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

// Endpoint is one endpoint of a slice. Nil conditions are left out, which
// the API allows and consumers read as ready and serving; an empty Node
// leaves nodeName out.
type Endpoint struct {
	Addr                        string
	Node                        string
	Ready, Serving, Terminating *bool
	// Zones and Nodes are topology hints (forZones, forNodes).
	Zones, Nodes []string
}

// On returns endpoints at addrs on node, conditions left out.
func On(node string, addrs ...string) []Endpoint {
	out := make([]Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = Endpoint{Addr: a, Node: node}
	}
	return out
}

// Slice is an EndpointSlice ns/name of Service service, as the
// EndpointSlice controller labels it.
func Slice(ns, name, service string, fam discovery.AddressType, ports []discovery.EndpointPort, eps ...Endpoint) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discovery.LabelServiceName: service}},
		AddressType: fam,
		Ports:       ports,
	}
	for _, e := range eps {
		de := discovery.Endpoint{
			Addresses:  []string{e.Addr},
			Conditions: discovery.EndpointConditions{Ready: e.Ready, Serving: e.Serving, Terminating: e.Terminating},
		}
		if e.Node != "" {
			de.NodeName = ptr.To(e.Node)
		}
		if len(e.Zones)+len(e.Nodes) > 0 {
			de.Hints = &discovery.EndpointHints{}
			for _, z := range e.Zones {
				de.Hints.ForZones = append(de.Hints.ForZones, discovery.ForZone{Name: z})
			}
			for _, n := range e.Nodes {
				de.Hints.ForNodes = append(de.Hints.ForNodes, discovery.ForNode{Name: n})
			}
		}
		s.Endpoints = append(s.Endpoints, de)
	}
	return s
}

// Port is one port of a slice.
func Port(name string, proto v1.Protocol, n int32) discovery.EndpointPort {
	return discovery.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(n)}
}

// HTTP is the slice port that matches Service's port "http", at n.
func HTTP(n int32) []discovery.EndpointPort {
	return []discovery.EndpointPort{Port("http", v1.ProtocolTCP, n)}
}
