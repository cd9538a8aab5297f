package watch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestCachedSliceRoundTrip(t *testing.T) {
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
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-abc", ResourceVersion: "42", UID: "u",
			Labels:      map[string]string{discovery.LabelServiceName: "web", "app": "web"},
			Annotations: map[string]string{TriggerTimeAnnotation: "2026-11-23T10:00:00Z", "other": "x"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
		Endpoints: []discovery.Endpoint{
			ep([]string{"10.244.1.2", "10.244.9.9"}, "node-a", yes, yes, no),
			ep([]string{"10.244.1.3"}, "node-b", nil, nil, nil),
			ep([]string{"10.244.1.4"}, "node-a", no, yes, yes),
			ep([]string{"010.244.1.5"}, "node-a", yes, nil, nil), // does not parse: kept as written
			ep([]string{"fd00:0::6"}, "", yes, nil, nil),         // parses, reads back otherwise: kept as written
			ep(nil, "node-a", yes, nil, nil),                     // no address: left out
		},
	}
	c := CompactSlice(in)
	out := c.EndpointSlice()
	var b strings.Builder
	fmt.Fprintf(&b, "meta %s/%s rv %s labels %v annotations %v type %s ports %s/%s:%d\n", out.Namespace, out.Name, out.ResourceVersion,
		out.Labels, out.Annotations, out.AddressType, *out.Ports[0].Name, *out.Ports[0].Protocol, *out.Ports[0].Port)
	str := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	cond := func(p *bool) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	for _, e := range out.Endpoints {
		fmt.Fprintf(&b, "%v node %s ready %s serving %s terminating %s\n", e.Addresses, str(e.NodeName),
			cond(e.Conditions.Ready), cond(e.Conditions.Serving), cond(e.Conditions.Terminating))
	}
	want := `meta ns/web-abc rv 42 labels map[kubernetes.io/service-name:web] annotations map[endpoints.kubernetes.io/last-change-trigger-time:2026-11-23T10:00:00Z] type IPv4 ports http/TCP:8080
[10.244.1.2] node node-a ready true serving true terminating false
[10.244.1.3] node node-b ready - serving - terminating -
[10.244.1.4] node node-a ready false serving true terminating true
[010.244.1.5] node node-a ready true serving - terminating -
[fd00:0::6] node - ready true serving - terminating -
`
	if got := b.String(); got != want {
		t.Errorf("round trip:\n%s\nwant:\n%s", got, want)
	}
	if c.Endpoints[0].Node != c.Endpoints[2].Node {
		t.Error("two endpoints on node-a do not share its name")
	}
	m, err := meta.Accessor(c)
	if err != nil || m.GetNamespace() != "ns" || m.GetName() != "web-abc" || m.GetResourceVersion() != "42" {
		t.Errorf("the cache cannot key it: %v %v", m, err)
	}

	// What the model builds from the cached form is what it builds from
	// the API's.
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: v1.ServiceSpec{
		Type: v1.ServiceTypeNodePort, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
		Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080}}}}
	bld := model.NewBuilder(model.Options{NodeName: "node-a", Scheduler: "rr"})
	direct := bld.Service(model.ServiceInput{Service: svc, Slices: []*discovery.EndpointSlice{in}}).Dump()
	cached := bld.Service(model.ServiceInput{Service: svc, Slices: []*discovery.EndpointSlice{out}}).Dump()
	t.Logf("built:\n%s", direct)
	if direct != cached {
		t.Errorf("the model builds differently from the cached form:\n%s\nfrom the API's:\n%s", cached, direct)
	}
}
