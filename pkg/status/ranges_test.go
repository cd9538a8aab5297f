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
		l := LabelsFor(b, order, Ours{})
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

// The proxier programs a key a Service wants only where the kernel's
// virtual server is ipvs-proxy's (pkg/proxier's foreign): on the dummy
// link's addresses, recorded, or the Service's own clusterIP. Elsewhere it
// is another tool's, which the proxier skips the Service for, and which
// status must not label as the Service's.
func TestLabelsOnlyOurs(t *testing.T) {
	nodeIP := netip.MustParseAddr("192.168.1.10")
	b := model.NewBuilder(model.Options{NodeName: "n", Scheduler: "rr", NodeIPs: []netip.Addr{nodeIP}})
	ext := lbService("ns", "ext", "10.96.0.20", 1, func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeClusterIP
		s.Spec.Ports[0].NodePort = 0
		s.Spec.ExternalIPs = []string{"192.168.1.10", "203.0.113.5"}
	})
	var (
		cluster  = key(ipvs.TCP, "10.96.0.20:80")
		onNode   = key(ipvs.TCP, "192.168.1.10:80")
		external = key(ipvs.TCP, "203.0.113.5:80")
		link     = func(as ...string) map[netip.Addr]bool {
			m := map[netip.Addr]bool{}
			for _, a := range as {
				m[netip.MustParseAddr(a)] = true
			}
			return m
		}
	)
	for _, tc := range []struct {
		name string
		ours Ours
		want Labels
	}{{
		name: "another tool's virtual servers at the externalIPs (neither on the link nor recorded): unlabelled",
		ours: Ours{LinkAddrs: link("10.96.0.20")},
		want: Labels{cluster: "ns/ext:http"},
	}, {
		name: "the externalIP on a node address recorded as ipvs-proxy's: labelled",
		ours: Ours{LinkAddrs: link("10.96.0.20"), Recorded: map[ipvs.ServiceKey]bool{onNode: true}},
		want: Labels{cluster: "ns/ext:http", onNode: "ns/ext:http"},
	}, {
		name: "the externalIP on kube-ipvs0: labelled",
		ours: Ours{LinkAddrs: link("10.96.0.20", "203.0.113.5")},
		want: Labels{cluster: "ns/ext:http", external: "ns/ext:http"},
	}, {
		name: "a node address on the record is ours by its key alone, not by its address",
		ours: Ours{LinkAddrs: link("10.96.0.20"), Recorded: map[ipvs.ServiceKey]bool{key(ipvs.TCP, "192.168.1.10:443"): true}},
		want: Labels{cluster: "ns/ext:http"},
	}, {
		name: "the Service's own clusterIP, even off the link (the proxier claims it and puts it back)",
		ours: Ours{},
		want: Labels{cluster: "ns/ext:http"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, LabelsFor(b, []model.ServiceInput{ext}, tc.ours)); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}
