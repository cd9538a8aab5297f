package daemon

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestTrimCached(t *testing.T) {
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1", ResourceVersion: "7", Generation: 3,
			CreationTimestamp: metav1.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Labels:            map[string]string{"app": "web"},
			Annotations: map[string]string{"ipvs-proxy.io/scheduler": "lc", "kubectl.kubernetes.io/last-applied-configuration": `{"big":"copy"}`,
				"service.beta.kubernetes.io/load-balancer-source-ranges": "192.0.2.0/24"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web"}}},
		Spec: v1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
			Ports: []v1.ServicePort{{Name: "http", Port: 80}}},
		Status: v1.ServiceStatus{
			LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}},
			Conditions:   []metav1.Condition{{Type: "Ready"}}}}
	out, err := trimCached(svc)
	if err != nil {
		t.Fatal(err)
	}
	gs := out.(*v1.Service)
	got := fmt.Sprintf("meta %+v\nspec %s %v selector %v\nstatus %v %v", gs.ObjectMeta, gs.Spec.ClusterIP, gs.Spec.Ports, gs.Spec.Selector,
		gs.Status.LoadBalancer.Ingress, gs.Status.Conditions)
	want := `meta {Name:web GenerateName: Namespace:ns SelfLink: UID:uid-1 ResourceVersion:7 Generation:0 CreationTimestamp:2026-01-02 03:04:05 +0000 UTC DeletionTimestamp:<nil> DeletionGracePeriodSeconds:<nil> Labels:map[] Annotations:map[ipvs-proxy.io/scheduler:lc service.beta.kubernetes.io/load-balancer-source-ranges:192.0.2.0/24] OwnerReferences:[] Finalizers:[] ManagedFields:[]}
spec 10.96.0.10 [{http  <nil> 80 {0 0 } 0}] selector map[]
status [{203.0.113.9  <nil> []}] []`
	if got != want {
		t.Errorf("Service after the transform:\n%s\nwant:\n%s", got, want)
	}

	// A tombstone is not a Service: it passes unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web"}
	if out, err := trimCached(tomb); err != nil || out != tomb {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}
