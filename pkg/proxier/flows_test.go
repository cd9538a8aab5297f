package proxier

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Removing a UDP real server, or a whole UDP Service, deletes the
// conntrack entries of exactly the flows IPVS sent there; TCP removals
// and unchanged Services ask for nothing.
func TestStaleUDPFlowsAreCleared(t *testing.T) {
	dns := svc("dns", "10.96.0.53", nodePort(30053), func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053}}
	})
	udpSlice := func(addrs ...string) model.ServiceInput {
		sl := slice("dns", addrs...)
		udp := v1.ProtocolUDP
		sl.Ports[0].Protocol = &udp
		return input(dns, sl)
	}
	sig := svc("sig", "10.96.0.54", func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolSCTP, Port: 9000}}
	})
	sctpSlice := func(addrs ...string) model.ServiceInput {
		sl := slice("sig", addrs...)
		sctp := v1.ProtocolSCTP
		sl.Ports[0].Protocol = &sctp
		return input(sig, sl)
	}
	cases := []struct {
		name   string
		change map[types.NamespacedName]*model.ServiceInput
		want   string
	}{{
		name:   "one UDP endpoint leaves: its flows on the clusterIP and the NodePort",
		change: changes("dns", udpSlice("10.244.1.2")),
		want: `UDP 10.96.0.53:53 -> 10.244.1.3:8080
UDP 192.168.1.10:30053 -> 10.244.1.3:8080
`,
	}, {
		name:   "UDP Service deleted: the flows of every real server",
		change: map[types.NamespacedName]*model.ServiceInput{name("dns"): nil},
		want: `UDP 10.96.0.53:53 -> 10.244.1.2:8080
UDP 10.96.0.53:53 -> 10.244.1.3:8080
UDP 192.168.1.10:30053 -> 10.244.1.2:8080
UDP 192.168.1.10:30053 -> 10.244.1.3:8080
`,
	}, {
		name:   "a TCP endpoint leaves: nothing",
		change: changes("web", input(web, slice("web", "10.244.1.2"))),
		want:   "",
	}, {
		// As kube-proxy, which clears UDP flows only. netlink reads no
		// SCTP ports, so a flow could only be matched by address: it
		// took other Services' flows to the same pod, and with a
		// host-network endpoint every SCTP association ending on the
		// node.
		name:   "an SCTP endpoint leaves: nothing",
		change: changes("sig", sctpSlice("10.244.1.2")),
		want:   "",
	}, {
		name:   "unchanged: nothing",
		change: changes("dns", udpSlice("10.244.1.2", "10.244.1.3")),
		want:   "",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel()
			p := k.proxier(t, "")
			ct := conntrack.NewFake()
			p.Conntrack = ct
			if res := p.SyncAll([]model.ServiceInput{input(web, webSlice), udpSlice("10.244.1.2", "10.244.1.3"), sctpSlice("10.244.1.2", "10.244.1.3")}); len(res.Errors) > 0 {
				t.Fatal(res.Errors)
			}
			if len(ct.Calls) != 0 {
				t.Fatalf("first sync asked to delete flows: %v", ct.Calls)
			}
			res := p.SyncServices(tc.change)
			if len(res.Errors)+len(res.Warnings) > 0 {
				t.Fatal(res.Errors, res.Warnings)
			}
			var got strings.Builder
			for _, call := range ct.Calls {
				for _, f := range call {
					fmt.Fprintln(&got, f)
				}
			}
			if got.String() != tc.want {
				t.Errorf("flows deleted:\n%s\nwant:\n%s", got.String(), tc.want)
			}
			if len(ct.Calls) > 1 {
				t.Errorf("%d DeleteFlows calls, want at most one (one conntrack dump per sync)", len(ct.Calls))
			}
		})
	}
}

func TestHealthChecksFollowServices(t *testing.T) {
	lb := svc("lb", "10.96.0.60", nodePort(30060), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32060
	})
	k := newKernel()
	p := k.proxier(t, "")
	res := p.SyncAll([]model.ServiceInput{input(web, webSlice), input(lb, slice("lb", "10.244.1.5", "10.244.1.6"))})
	dump := func() string {
		var b strings.Builder
		for n, hc := range p.HealthChecks() {
			fmt.Fprintf(&b, "%s %d %d,%d\n", n, hc.NodePort, hc.LocalEndpoints[0], hc.LocalEndpoints[1])
		}
		return b.String()
	}
	if got, want := dump(), "ns/lb 32060 2,0\n"; got != want || !res.HealthChecksChanged {
		t.Fatalf("after SyncAll: %q (changed %v), want %q", got, res.HealthChecksChanged, want)
	}
	res = p.SyncServices(changes("lb", input(lb, slice("lb", "10.244.1.5"))))
	if got, want := dump(), "ns/lb 32060 1,0\n"; got != want || !res.HealthChecksChanged {
		t.Fatalf("one endpoint fewer: %q (changed %v), want %q", got, res.HealthChecksChanged, want)
	}
	res = p.SyncServices(changes("web", input(web, slice("web", "10.244.1.2"))))
	if res.HealthChecksChanged {
		t.Errorf("another Service's change reported a health check change")
	}
	res = p.SyncServices(map[types.NamespacedName]*model.ServiceInput{name("lb"): nil})
	if got := dump(); got != "" || !res.HealthChecksChanged {
		t.Fatalf("after delete: %q (changed %v), want none", got, res.HealthChecksChanged)
	}
}

// An externalTrafficPolicy Local UDP externalIP: when a real server goes,
// or the whole Service, the flows that in-cluster clients sent to the
// externalIP through the firewall-mark virtual server are cleared with the
// others. Once the Service is deleted no Service holds the mark: its
// addresses are those it had before the sync.
func TestStaleShortCircuitFlowsAreCleared(t *testing.T) {
	dns := svc("dns", "10.96.0.53", func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolUDP, Port: 53}}
		s.Spec.ExternalIPs = []string{"203.0.113.53"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	})
	// Endpoints on another node: the externalIP's own virtual server has
	// none, so only the mark leads to their flows.
	udpSlice := func(addrs ...string) model.ServiceInput {
		sl := testobj.Slice("ns", "dns-1", "dns", discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On("node-b", addrs...)...)
		udp := v1.ProtocolUDP
		sl.Ports[0].Protocol = &udp
		return input(dns, sl)
	}
	deleted := "UDP 10.96.0.53:53 -> 10.244.1.2:8080\nUDP 10.96.0.53:53 -> 10.244.2.3:8080\n" +
		"UDP 203.0.113.53:53 -> 10.244.1.2:8080\nUDP 203.0.113.53:53 -> 10.244.2.3:8080"
	for _, tc := range []struct {
		name string
		sync func(p *Proxier) Result
		want string
	}{{
		name: "a real server goes",
		sync: func(p *Proxier) Result { return p.SyncServices(changes("dns", udpSlice("10.244.1.2"))) },
		want: "UDP 10.96.0.53:53 -> 10.244.2.3:8080\nUDP 203.0.113.53:53 -> 10.244.2.3:8080",
	}, {
		name: "the Service is deleted",
		sync: func(p *Proxier) Result {
			return p.SyncServices(map[types.NamespacedName]*model.ServiceInput{name("dns"): nil})
		},
		want: deleted,
	}, {
		// The daemon folds changes into a full sync (after an aborted
		// sync, a failed write no Service owns, a zone change).
		name: "the Service is deleted, and a full sync finds it gone",
		sync: func(p *Proxier) Result { return p.SyncAll(nil) },
		want: deleted,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel()
			p := k.proxier(t, "")
			ct := conntrack.NewFake()
			p.Conntrack = ct
			if res := p.SyncAll([]model.ServiceInput{udpSlice("10.244.1.2", "10.244.2.3")}); len(res.Errors) > 0 {
				t.Fatal(res.Errors)
			}
			if res := tc.sync(p); len(res.Errors)+len(res.Warnings) > 0 {
				t.Fatal(res.Errors, res.Warnings)
			}
			var got []string
			for _, call := range ct.Calls {
				for _, f := range call {
					got = append(got, f.String()) // in no particular order
				}
			}
			slices.Sort(got)
			if g := strings.Join(got, "\n"); g != tc.want {
				t.Errorf("flows deleted:\n%s\nwant:\n%s", g, tc.want)
			}
		})
	}
}
