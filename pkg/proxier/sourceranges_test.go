package proxier

import (
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
)

// A range of every source (0.0.0.0/0, ::/0), which the kernel's net sets
// refuse, is stored as its two halves: the Service's LB IP admits every
// client (the node too, by its own member), and no sync fails. Before, the refused member was an error of no
// Service's, so every sync on every node became a full one.
func TestEverySourceRangeIsStored(t *testing.T) {
	lb := func(ranges ...string) model.ServiceInput {
		return input(svc("lb", "10.96.0.60", nodePort(30060), func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ClusterIPs = []string{"10.96.0.60", "fd00:10:96::60"}
			s.Spec.LoadBalancerSourceRanges = ranges
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}, {IP: "2001:db8::9"}}
		}), slice("lb", "10.244.1.5"))
	}
	k := newKernel()
	p := k.proxier(t, "")
	res := p.SyncAll([]model.ServiceInput{lb("0.0.0.0/0", "::/0")})
	if len(res.Errors) > 0 || res.NodeWide || len(res.Problems) > 0 {
		t.Fatalf("full sync: errors %v, node-wide %v, problems %v", res.Errors, res.NodeWide, res.Problems)
	}
	const want = "set IPVS-PROXY-SOURCE-RANGES hash:ip,port,net family inet\n" +
		"  203.0.113.9,tcp:80,0.0.0.0/1\n  203.0.113.9,tcp:80,128.0.0.0/1\n" +
		"  203.0.113.9,tcp:80,203.0.113.9/32\n" + // the node (192.168.1.10) is in 0.0.0.0/0
		"set IPVS-PROXY-SOURCE-RANGES6 hash:ip,port,net family inet6\n" +
		"  2001:db8::9,tcp:80,::/1\n  2001:db8::9,tcp:80,8000::/1\n"
	if got := setsNamed(k.dump(t), "IPVS-PROXY-SOURCE-RANGES"); got != want {
		t.Errorf("source-range sets after a full sync:\n%s\nwant:\n%s", got, want)
	}
	// A change to a narrower range and back goes through the change path.
	if res := p.SyncServices(changesOf(lb("192.0.2.0/24", "::/0"))); len(res.Errors) > 0 || res.NodeWide {
		t.Fatalf("change: errors %v, node-wide %v", res.Errors, res.NodeWide)
	}
	if res := p.SyncServices(changesOf(lb("0.0.0.0/0", "::/0"))); len(res.Errors) > 0 || res.NodeWide {
		t.Fatalf("change back: errors %v, node-wide %v", res.Errors, res.NodeWide)
	}
	if got := setsNamed(k.dump(t), "IPVS-PROXY-SOURCE-RANGES"); got != want {
		t.Errorf("source-range sets after the changes:\n%s\nwant:\n%s", got, want)
	}
}

// setsNamed is the part of a kernel dump that lists the sets whose names
// start with prefix, with their members.
func setsNamed(dump, prefix string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.SplitAfter(dump, "\n") {
		if strings.HasPrefix(l, "set ") {
			in = strings.HasPrefix(l, "set "+prefix)
		} else if !strings.HasPrefix(l, "  ") {
			in = false
		}
		if in {
			b.WriteString(l)
		}
	}
	return b.String()
}
