package model

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestSliceFrom(t *testing.T) {
	ep := func(addrs []string, node string, ready, serving, terminating *bool) discovery.Endpoint {
		e := discovery.Endpoint{Addresses: addrs, Conditions: discovery.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating},
			Hostname: ptr.To("h"), TargetRef: &v1.ObjectReference{Kind: "Pod", Name: "p"}}
		if node != "" {
			e.NodeName = ptr.To(node)
		}
		return e
	}
	yes, no := ptr.To(true), ptr.To(false)
	in := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-abc", ResourceVersion: "42",
			Labels:      map[string]string{discovery.LabelServiceName: "web"},
			Annotations: map[string]string{TriggerTimeAnnotation: "2026-11-23T10:00:00Z", "other": "x"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
		Endpoints: []discovery.Endpoint{
			ep([]string{"10.244.1.2", "10.244.9.9"}, "node-a", yes, yes, no), // only the first address is used
			ep([]string{"10.244.1.3"}, "node-b", nil, nil, nil),
			ep([]string{"10.244.1.4"}, "node-a", no, yes, yes),
			ep([]string{"010.244.1.5"}, "node-a", yes, nil, nil), // does not parse: kept as written
			ep([]string{"fd00:0::6"}, "", yes, nil, nil),         // parses, reads back otherwise: kept as written
			ep(nil, "node-a", yes, nil, nil),                     // no address: left out
		},
	}
	s := SliceFrom(in)
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s %s trigger %s ports %s/%s:%d\n", s.Namespace, s.Name, s.AddressType, s.TriggerTime,
		*s.Ports[0].Name, *s.Ports[0].Protocol, *s.Ports[0].Port)
	for _, e := range s.Endpoints {
		fmt.Fprintf(&b, "%s parsed %v node %q ready %d serving %d terminating %d\n", e.Address(), e.Addr.IsValid(), e.Node, e.Ready, e.Serving, e.Terminating)
	}
	want := `ns/web-abc IPv4 trigger 2026-11-23T10:00:00Z ports http/TCP:8080
10.244.1.2 parsed true node "node-a" ready 1 serving 1 terminating 2
10.244.1.3 parsed true node "node-b" ready 0 serving 0 terminating 0
10.244.1.4 parsed true node "node-a" ready 2 serving 1 terminating 1
010.244.1.5 parsed false node "node-a" ready 1 serving 0 terminating 0
fd00:0::6 parsed false node "" ready 1 serving 0 terminating 0
`
	if got := b.String(); got != want {
		t.Errorf("SliceFrom:\n%s\nwant:\n%s", got, want)
	}
	if cap(s.Endpoints) != len(s.Endpoints) {
		t.Errorf("endpoints: len %d cap %d, want no spare room", len(s.Endpoints), cap(s.Endpoints))
	}
}
