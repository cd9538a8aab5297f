package status

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func lbService(ns, name, clusterIP string, created int64, mutate func(*v1.Service)) model.ServiceInput {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.Unix(created, 0)},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080}}},
	}
	mutate(s)
	return model.ServiceInput{Service: model.ServiceFrom(s)}
}

// The label of a key two Services want names the one that holds it, as
// the proxier decides, not the last one read.
func TestLabelsFollowPrecedence(t *testing.T) {
	b := model.NewBuilder(model.Options{NodeName: "n", Scheduler: "rr"})
	dns := lbService("kube-system", "dns", "10.96.0.10", 100, func(s *v1.Service) {})
	evil := lbService("zzz", "evil", "10.96.0.66", 1, func(s *v1.Service) { s.Spec.ExternalIPs = []string{"10.96.0.10"} })
	for _, order := range [][]model.ServiceInput{{dns, evil}, {evil, dns}} {
		l := LabelsFor(b, order)
		if got := l[key(ipvs.TCP, "10.96.0.10:80")]; got != "kube-system/dns:http" {
			t.Errorf("label of the DNS VIP = %q, want kube-system/dns:http", got)
		}
	}
}

func TestSourceRangesText(t *testing.T) {
	b := model.NewBuilder(model.Options{NodeName: "n", Scheduler: "rr", NodeIPs: []netip.Addr{netip.MustParseAddr("10.0.2.15")}})
	in := lbService("ns", "web", "10.96.0.20", 1, func(s *v1.Service) {
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24", "10.0.2.0/24", "2001:db8::/32"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.10"}, {IP: "2001:db8::10"}}
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
		s.Spec.ClusterIPs = []string{"10.96.0.20", "fd00::20"}
	})
	want := `loadBalancerSourceRanges: only these sources reach the LoadBalancer IPs (the node itself when one of its addresses is in them; its connections come from the LB IP):
  TCP 203.0.113.10:80 from 10.0.2.0/24, 192.0.2.0/24, 203.0.113.10/32
  TCP [2001:db8::10]:80 from 2001:db8::/32
`
	if diff := cmp.Diff(want, SourceRanges(b.Service(in))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := SourceRanges(b.Service(lbService("ns", "open", "10.96.0.21", 1, func(s *v1.Service) {}))); got != "" {
		t.Errorf("a Service without ranges explains %q", got)
	}
}
