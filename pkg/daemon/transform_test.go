package daemon

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
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

// TestTrimKeepsWhatTheModelReads builds Services that use every field and
// annotation the model reads, as the API server sends them and as the
// cache keeps them after trimCached: the two must build the same state.
// A field or annotation the trim drops that the model reads (as the
// scheduler-flags annotation once was) shows here as a difference.
func TestTrimKeepsWhatTheModelReads(t *testing.T) {
	local, cluster := v1.ServiceExternalTrafficPolicyLocal, v1.ServiceInternalTrafficPolicyLocal
	proxyMode := v1.LoadBalancerIPModeProxy
	timeout := int32(600)
	ready := true
	slice := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "ns", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(v1.ProtocolTCP)}},
		Endpoints: []discovery.Endpoint{
			{Addresses: []string{"10.244.1.2"}, NodeName: ptr.To("node-a"), Conditions: discovery.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"10.244.2.2"}, NodeName: ptr.To("node-b"), Conditions: discovery.EndpointConditions{Ready: &ready}},
		},
	}
	base := func(mod func(*v1.Service)) *v1.Service {
		s := &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1", ResourceVersion: "7",
				CreationTimestamp: metav1.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
				Labels:            map[string]string{"app": "web"},
				Annotations:       map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{}`}},
			Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
				Selector: map[string]string{"app": "web"},
				Ports:    []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}}},
		}
		mod(s)
		return s
	}
	lb := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}, {IP: "203.0.113.10", IPMode: &proxyMode}}
	}
	for _, tc := range []struct {
		name string
		svc  *v1.Service
	}{
		{"scheduler and its flags", base(func(s *v1.Service) {
			s.Annotations[model.SchedulerAnnotation] = "sh"
			s.Annotations[model.SchedulerFlagsAnnotation] = "sh-fallback,sh-port"
		})},
		{"a bad scheduler flag", base(func(s *v1.Service) { s.Annotations[model.SchedulerFlagsAnnotation] = "sh-port" })},
		{"session affinity", base(func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &timeout}}
		})},
		{"internal traffic policy Local", base(func(s *v1.Service) { s.Spec.InternalTrafficPolicy = &cluster })},
		{"externalIPs", base(func(s *v1.Service) { s.Spec.ExternalIPs = []string{"198.51.100.7", "not-an-ip"} })},
		{"LoadBalancer, eTP Local, health check", base(func(s *v1.Service) {
			lb(s)
			s.Spec.ExternalTrafficPolicy = local
			s.Spec.HealthCheckNodePort = 32000
		})},
		{"source ranges in the spec", base(func(s *v1.Service) {
			lb(s)
			s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24", "bad"}
		})},
		{"source ranges in the annotation", base(func(s *v1.Service) {
			lb(s)
			s.Annotations[model.SourceRangesAnnotation] = "192.0.2.0/24, 198.51.100.0/24"
		})},
		{"headless", base(func(s *v1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = v1.ClusterIPNone, []string{v1.ClusterIPNone}
		})},
		{"ExternalName", base(func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeExternalName })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := model.NewBuilder(model.Options{NodeName: "node-a", NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.1.5")}, Scheduler: "rr"})
			build := func(svc *v1.Service) string {
				in := model.ServiceInput{Service: svc, Slices: model.Slices(slice)}
				st := b.Service(in)
				return fmt.Sprintf("%s%+v\n%+v", st.Dump(), st.Precedence, b.Explain(in))
			}
			want := build(tc.svc)
			trimmed, err := trimCached(tc.svc.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			if got := build(trimmed.(*v1.Service)); got != want {
				t.Errorf("built from the cached Service:\n%s\nfrom the API's:\n%s", got, want)
			}
		})
	}
}
