package daemon

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func TestTrimCached(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "web-1", Namespace: "ns",
			Labels:          map[string]string{discovery.LabelServiceName: "web"},
			Annotations:     map[string]string{"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-23T10:00:00Z", "ipvs-proxy.io/scheduler": "lc", lastApplied: `{"big":"copy"}`},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Service", Name: "web"}}}
	}
	s := &discovery.EndpointSlice{ObjectMeta: meta(), AddressType: discovery.AddressTypeIPv4,
		Ports: []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discovery.Endpoint{{Addresses: []string{"10.244.1.2"}, NodeName: ptr.To("node-a"),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			Hostname:   ptr.To("web-0"), Zone: ptr.To("z1"), TargetRef: &v1.ObjectReference{Kind: "Pod", Name: "web-0"},
			Hints: &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: "z1"}}}, DeprecatedTopology: map[string]string{"a": "b"}}}}
	out, err := trimCached(s)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*discovery.EndpointSlice)
	e := got.Endpoints[0]
	text := fmt.Sprintf("meta %v %v %v managed %v owners %v\nendpoint %v node %s ready %v serving %v terminating %v\ndropped %v %v %v %v %v\nports %s:%d",
		got.Name, got.Labels, got.Annotations, got.ManagedFields, got.OwnerReferences,
		e.Addresses, *e.NodeName, *e.Conditions.Ready, *e.Conditions.Serving, *e.Conditions.Terminating,
		e.Hostname, e.Zone, e.TargetRef, e.Hints, e.DeprecatedTopology, *got.Ports[0].Name, *got.Ports[0].Port)
	want := `meta web-1 map[kubernetes.io/service-name:web] map[endpoints.kubernetes.io/last-change-trigger-time:2026-11-23T10:00:00Z ipvs-proxy.io/scheduler:lc] managed [] owners []
endpoint [10.244.1.2] node node-a ready true serving true terminating false
dropped <nil> <nil> nil nil map[]
ports http:8080`
	if text != want {
		t.Errorf("slice after the transform:\n%s\nwant:\n%s", text, want)
	}

	svc := &v1.Service{ObjectMeta: meta(), Status: v1.ServiceStatus{
		LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}},
		Conditions:   []metav1.Condition{{Type: "Ready"}}}}
	out, _ = trimCached(svc)
	gs := out.(*v1.Service)
	if got := fmt.Sprintf("%v %v %v", gs.Annotations, gs.Status.LoadBalancer.Ingress, gs.Status.Conditions); got != "map[endpoints.kubernetes.io/last-change-trigger-time:2026-11-23T10:00:00Z ipvs-proxy.io/scheduler:lc] [{203.0.113.9  <nil> []}] []" {
		t.Errorf("Service after the transform: %s", got)
	}

	// A tombstone is not an object with metadata: it passes unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web-1"}
	if out, err := trimCached(tomb); err != nil || out != tomb {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}
