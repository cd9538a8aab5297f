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
		return metav1.ObjectMeta{Name: "web-1", Namespace: "ns", UID: "uid-1", ResourceVersion: "7", Generation: 3, GenerateName: "web-",
			Labels:          map[string]string{discovery.LabelServiceName: "web", "app": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
			Annotations:     map[string]string{"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-23T10:00:00Z", "ipvs-proxy.io/scheduler": "lc", "kubectl.kubernetes.io/last-applied-configuration": `{"big":"copy"}`},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Service", Name: "web"}}}
	}
	endpoint := func(addr string) discovery.Endpoint {
		return discovery.Endpoint{Addresses: []string{addr}, NodeName: ptr.To("node-a"),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			Hostname:   ptr.To("web-0"), Zone: ptr.To("z1"), TargetRef: &v1.ObjectReference{Kind: "Pod", Name: "web-0"},
			Hints: &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: "z1"}}}, DeprecatedTopology: map[string]string{"a": "b"}}
	}
	// Spare capacity, as the decoder leaves it.
	eps := append(make([]discovery.Endpoint, 0, 4), endpoint("10.244.1.2"), endpoint("10.244.1.3"))
	s := &discovery.EndpointSlice{ObjectMeta: meta(), AddressType: discovery.AddressTypeIPv4,
		Ports: []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}, Endpoints: eps}
	out, err := trimCached(s)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*discovery.EndpointSlice)
	text := fmt.Sprintf("meta %+v\nports %s:%d\n", got.ObjectMeta, *got.Ports[0].Name, *got.Ports[0].Port)
	for _, e := range got.Endpoints {
		text += fmt.Sprintf("endpoint %v node %s ready %v serving %v terminating %v; dropped %v %v %v %v %v\n",
			e.Addresses, *e.NodeName, *e.Conditions.Ready, *e.Conditions.Serving, *e.Conditions.Terminating,
			e.Hostname, e.Zone, e.TargetRef, e.Hints, e.DeprecatedTopology)
	}
	text += fmt.Sprintf("endpoints len %d cap %d; node names shared %v; conditions shared %v",
		len(got.Endpoints), cap(got.Endpoints), got.Endpoints[0].NodeName == got.Endpoints[1].NodeName,
		got.Endpoints[0].Conditions.Ready == got.Endpoints[1].Conditions.Serving)
	want := `meta {Name:web-1 GenerateName: Namespace:ns SelfLink: UID:uid-1 ResourceVersion:7 Generation:0 CreationTimestamp:0001-01-01 00:00:00 +0000 UTC DeletionTimestamp:<nil> DeletionGracePeriodSeconds:<nil> Labels:map[kubernetes.io/service-name:web] Annotations:map[endpoints.kubernetes.io/last-change-trigger-time:2026-11-23T10:00:00Z] OwnerReferences:[] Finalizers:[] ManagedFields:[]}
ports http:8080
endpoint [10.244.1.2] node node-a ready true serving true terminating false; dropped <nil> <nil> nil nil map[]
endpoint [10.244.1.3] node node-a ready true serving true terminating false; dropped <nil> <nil> nil nil map[]
endpoints len 2 cap 2; node names shared true; conditions shared true`
	if text != want {
		t.Errorf("slice after the transform:\n%s\nwant:\n%s", text, want)
	}

	svc := &v1.Service{ObjectMeta: meta(), Status: v1.ServiceStatus{
		LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}},
		Conditions:   []metav1.Condition{{Type: "Ready"}}}}
	out, _ = trimCached(svc)
	gs := out.(*v1.Service)
	if got := fmt.Sprintf("%s %s %v %v %v %v", gs.UID, gs.ResourceVersion, gs.Labels, gs.Annotations, gs.Status.LoadBalancer.Ingress, gs.Status.Conditions); got != "uid-1 7 map[] map[ipvs-proxy.io/scheduler:lc] [{203.0.113.9  <nil> []}] []" {
		t.Errorf("Service after the transform: %s", got)
	}

	// A tombstone is not an object with metadata: it passes unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web-1"}
	if out, err := trimCached(tomb); err != nil || out != tomb {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}
