package model

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func loadBalancer(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
	}
}

// TestBuildChosenAddresses covers the addresses a tenant writes: which are
// refused, and the source ranges of LoadBalancer IPs.
func TestBuildChosenAddresses(t *testing.T) {
	onePod := []*discovery.EndpointSlice{slice("web-1", v4, httpPort, ep{Addr: "10.244.1.2", Node: "node-a"})}
	cases := []struct {
		name string
		svc  *v1.Service
		opts func(*Options)
		want string
	}{{
		name: "loopback, link-local, multicast and unspecified externalIPs and LB IPs are refused",
		svc: service("web", loadBalancer("127.0.0.1", "169.254.169.254"), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"0.0.0.0", "224.0.0.251", "203.0.113.7"}
		}),
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  203.0.113.7:80 rr                    # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
vip 203.0.113.7
external-vip 203.0.113.7
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
service-port 203.0.113.7,tcp:80
problem: externalIP 0.0.0.0 is the unspecified address; skipped
problem: externalIP 224.0.0.251 is a multicast address; skipped
problem: LoadBalancer ingress IP 127.0.0.1 is a loopback address; skipped
problem: LoadBalancer ingress IP 169.254.169.254 is a link-local address; skipped
`,
	}, {
		name: "an externalIP in the pod or Service range is refused, the Service's own clusterIP is not",
		svc: service("web", func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"10.244.1.2", "10.96.0.53", "10.96.0.10"}
		}),
		opts: func(o *Options) {
			o.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
			o.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")}
		},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
problem: externalIP 10.244.1.2 is inside the cluster's pod range; skipped
problem: externalIP 10.96.0.53 is inside the Service range and not this Service's clusterIP; skipped
`,
	}, {
		name: "AllowServiceExternalIPs=false skips externalIPs but not LoadBalancer IPs",
		svc: service("web", loadBalancer("198.51.100.1"), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"203.0.113.7"}
		}),
		opts: func(o *Options) { o.DenyExternalIPs = true },
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  198.51.100.1:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
vip 198.51.100.1
external-vip 198.51.100.1
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
problem: externalIPs are disabled on this node (feature gate AllowServiceExternalIPs=false); skipped
`,
	}, {
		// An IPv4-mapped range is the IPv4 range it spells (the kernel's
		// sets refuse mapped addresses).
		name: "source ranges guard the LB IPs only, per family, and admit the node when a range holds a node address",
		svc: service("web", loadBalancer("198.51.100.1"), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"203.0.113.7"}
			s.Spec.LoadBalancerSourceRanges = []string{"::ffff:192.0.2.0/120", "192.168.1.0/24", "2001:db8::/32", "bogus", "::ffff:0:0/95"}
		}),
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  198.51.100.1:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  203.0.113.7:80 rr                    # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
vip 198.51.100.1
vip 203.0.113.7
external-vip 198.51.100.1
external-vip 203.0.113.7
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
service-port 203.0.113.7,tcp:80
firewall 198.51.100.1,tcp:80
source-range 198.51.100.1,tcp:80,192.0.2.0/24
source-range 198.51.100.1,tcp:80,192.168.1.0/24
source-range 198.51.100.1,tcp:80,198.51.100.1/32
problem: loadBalancerSourceRange "bogus" is not a valid CIDR; skipped
problem: loadBalancerSourceRange "::ffff:0:0/95" mixes IPv4-mapped and other IPv6 addresses; skipped
`,
	}, {
		// kube-proxy would leave the IPv6 LB IP open to everyone.
		name: "a dual-stack LB whose ranges are of one family: the other family's LB IP admits no one, with a problem",
		svc: service("web", loadBalancer("198.51.100.1", "2001:db8::1"), func(s *v1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:10:96::10"}
			s.Spec.LoadBalancerSourceRanges = []string{"0.0.0.0/0"}
		}),
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  198.51.100.1:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  [2001:db8::1]:80 rr                  # ns/web:http
TCP  [fd00:10:96::10]:80 rr               # ns/web:http
vip 10.96.0.10
vip 198.51.100.1
vip 2001:db8::1
vip fd00:10:96::10
external-vip 198.51.100.1
external-vip 2001:db8::1
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
firewall 198.51.100.1,tcp:80
firewall 2001:db8::1,tcp:80
source-range 198.51.100.1,tcp:80,0.0.0.0/0
source-range 198.51.100.1,tcp:80,198.51.100.1/32
problem: loadBalancerSourceRanges hold no IPv6 range: the IPv6 LoadBalancer IPs admit no client (kube-proxy would admit every one; add ::/0 to admit all)
`,
	}, {
		name: "the annotation is read when the field is empty; ranges that all fail admit no one",
		svc: service("web", loadBalancer("198.51.100.1"), func(s *v1.Service) {
			s.Annotations = map[string]string{SourceRangesAnnotation: "nonsense"}
		}),
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  198.51.100.1:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
vip 198.51.100.1
external-vip 198.51.100.1
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
firewall 198.51.100.1,tcp:80
problem: loadBalancerSourceRange "nonsense" is not a valid CIDR; skipped
`,
	}, {
		// The node's own address as an externalIP on the Service's own
		// healthCheckNodePort: IPVS would take the load balancer's checks
		// in LOCAL_IN, before the health-check server's socket. Another
		// Service's such port is refused by Allocated.
		name: "a node address on the Service's own healthCheckNodePort is refused",
		svc: service("web", loadBalancer("198.51.100.1"), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"192.168.1.10"}
			s.Spec.Ports[0].Port = 32000
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 32000
		}),
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  10.96.0.10:32000 rr                  # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  198.51.100.1:32000 rr                # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
vip 198.51.100.1
external-vip 198.51.100.1
hairpin 10.244.1.2,tcp:8080
keep-source 198.51.100.1,tcp:32000
service-port 10.96.0.10,tcp:32000
service-port 198.51.100.1,tcp:32000
short-circuit 198.51.100.1,tcp:32000 skbmark 0x445d0ecb
health-check-node-port 32000 local-endpoints 1,0
problem: http TCP 192.168.1.10:32000: the externalIP is a node address and the port a Service's healthCheckNodePort, whose checks it would take; skipped
`,
	}, {
		// The node's own ports: kubelet's probes of ipvs-proxy's health
		// port, and the API server's calls to kubelet, would go to the
		// Service's pods. Another node port of the same address is the
		// Service's, as under kube-proxy.
		name: "a node address may not take a port the node serves itself",
		svc: service("web", func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"192.168.1.10"}
			s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "probe", Protocol: v1.ProtocolTCP, Port: 10256},
				v1.ServicePort{Name: "probe-udp", Protocol: v1.ProtocolUDP, Port: 10256})
		}),
		opts: func(o *Options) { o.ReservedNodePorts = []uint16{10256, 10250} },
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  10.96.0.10:10256 rr                  # ns/web:probe
UDP  10.96.0.10:10256 rr                  # ns/web:probe-udp
TCP  192.168.1.10:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
UDP  192.168.1.10:10256 rr                # ns/web:probe-udp
vip 10.96.0.10
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
problem: port "probe"/TCP matches no port of the Service's IPv4 EndpointSlices; it has no real servers
problem: probe TCP 192.168.1.10:10256: the externalIP is a node address and the port one the node serves itself (ipvs-proxy's health or metrics port, or kubelet's); skipped
problem: port "probe-udp"/UDP matches no port of the Service's IPv4 EndpointSlices; it has no real servers
`,
	}, {
		name: "the cap keeps allocated addresses first and drops what came with the rest",
		svc: service("web", func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"203.0.113.7", "203.0.113.8"}
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}),
		opts: func(o *Options) { o.MaxVirtualServers = 2; o.NodeName = "node-b" },
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  203.0.113.7:80 rr                    # ns/web:http
vip 10.96.0.10
vip 203.0.113.7
external-vip 203.0.113.7
service-port 10.96.0.10,tcp:80
no-local-endpoints 203.0.113.7,tcp:80
short-circuit 203.0.113.7,tcp:80 skbmark 0x445d0ecb
problem: the Service wants 3 virtual servers, more than the cap of 2 per Service; 1 skipped (externalIPs and LoadBalancer IPs first)
`,
	}, {
		// 3 virtual servers and 2 LB IP:ports × 2 ranges: 7 against a cap
		// of 5. The members of the shared IPVS-PROXY-SOURCE-RANGES count,
		// or one port with 70,000 ranges would fill the set (maxelem
		// 65,536) for every Service. The LB IP:port that does not fit
		// goes whole, its firewall and ranges with it.
		name: "source-range set members count against the cap",
		svc: service("web", loadBalancer("198.51.100.1", "198.51.100.2"), func(s *v1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24", "203.0.113.0/24"}
		}),
		opts: func(o *Options) { o.MaxVirtualServers = 5 },
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  198.51.100.1:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
vip 198.51.100.1
external-vip 198.51.100.1
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
firewall 198.51.100.1,tcp:80
source-range 198.51.100.1,tcp:80,192.0.2.0/24
source-range 198.51.100.1,tcp:80,203.0.113.0/24
problem: the Service wants 3 virtual servers and 4 source-range set members (loadBalancerSourceRanges times LoadBalancer IP:ports), more than the cap of 5 per Service; 1 skipped (externalIPs and LoadBalancer IPs first)
`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			got := NewBuilder(o).Service(ServiceInput{Service: ServiceFrom(tc.svc), Slices: Slices(onePod...)}).Dump()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("dump mismatch (-want +got):\n%s\ngot:\n%s", diff, got)
			}
		})
	}
}

// TestSourceRangesCappedAtScale: one LoadBalancer port with 70,000
// loadBalancerSourceRanges, more than the kernel's default maxelem
// (65,536) of the IPVS-PROXY-SOURCE-RANGES set every Service shares, is
// within the cap of 1,000 virtual servers but not once its set members
// count: its LB IP:port is refused, with a problem that names the count.
func TestSourceRangesCappedAtScale(t *testing.T) {
	ranges := make([]string, 70000)
	for i := range ranges {
		ranges[i] = fmt.Sprintf("%d.%d.%d.0/24", 11+i/65536, (i/256)%256, i%256)
	}
	svc := service("web", loadBalancer("203.0.113.10"), func(s *v1.Service) {
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.LoadBalancerSourceRanges = ranges
	})
	o := defaultOptions()
	o.MaxVirtualServers = 1000
	st := NewBuilder(o).Service(ServiceInput{Service: ServiceFrom(svc)})
	if len(st.SourceRanges) != 0 || len(st.Firewall) != 0 || slices.ContainsFunc(st.Entries, func(e Entry) bool { return e.Chosen }) {
		t.Errorf("the LB IP:port over the cap is kept, with %d source-range members:\n%s", len(st.SourceRanges), st.Entries)
	}
	want := []string{"the Service wants 3 virtual servers and 70000 source-range set members (loadBalancerSourceRanges times LoadBalancer IP:ports), more than the cap of 1000 per Service; 1 skipped (externalIPs and LoadBalancer IPs first)"}
	if diff := cmp.Diff(want, st.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestWins(t *testing.T) {
	older := Precedence{Created: time.Unix(100, 0), UID: "b", Name: types.NamespacedName{Namespace: "zzz", Name: "x"}}
	newer := Precedence{Created: time.Unix(200, 0), UID: "a", Name: types.NamespacedName{Namespace: "aaa", Name: "x"}}
	sameTimeLowUID := Precedence{Created: time.Unix(100, 0), UID: "a", Name: types.NamespacedName{Namespace: "zzz", Name: "y"}}
	allocated, chosen, lb := Entry{}, Entry{Chosen: true}, Entry{Chosen: true, LoadBalancer: true}
	cases := []struct {
		name  string
		a     Entry
		pa    Precedence
		b     Entry
		pb    Precedence
		aWins bool
	}{
		{"an allocated address beats a chosen one, however old", allocated, newer, chosen, older, true},
		{"a chosen address loses to an allocated one", chosen, older, allocated, newer, false},
		{"an allocated address beats a LoadBalancer IP too", allocated, newer, lb, older, true},
		{"a LoadBalancer IP beats an externalIP, however old", lb, newer, chosen, older, true},
		{"an externalIP loses to a LoadBalancer IP, however young", chosen, older, lb, newer, false},
		{"between two LoadBalancer IPs the older Service wins", lb, older, lb, newer, true},
		{"the older Service wins, whatever its name", chosen, older, chosen, newer, true},
		{"at the same age the lower UID wins", chosen, sameTimeLowUID, chosen, older, true},
		{"the name breaks a full tie", chosen, Precedence{Name: types.NamespacedName{Namespace: "a", Name: "y"}}, chosen, Precedence{Name: types.NamespacedName{Namespace: "a-b", Name: "x"}}, true},
	}
	for _, tc := range cases {
		if got := Wins(tc.a, tc.pa, tc.b, tc.pb); got != tc.aWins {
			t.Errorf("%s: Wins = %v", tc.name, got)
		}
		if got := Wins(tc.b, tc.pb, tc.a, tc.pa); got == tc.aWins {
			t.Errorf("%s: Wins is not antisymmetric", tc.name)
		}
	}
}

// TestLoadBalancerIPBeatsAnOlderExternalIP: a long-lived tenant Service
// that edits its externalIPs to name a younger Service's LoadBalancer
// ingress IP does not take that IP:port (nor its source ranges) from it,
// as built: Build marks which chosen address is an LB IP, and Wins reads it.
func TestLoadBalancerIPBeatsAnOlderExternalIP(t *testing.T) {
	victim := service("victim", loadBalancer("203.0.113.9"), func(s *v1.Service) {
		s.CreationTimestamp = metav1.Unix(200, 0)
		s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"}
	})
	tenant := service("tenant", func(s *v1.Service) {
		s.CreationTimestamp = metav1.Unix(100, 0)
		s.Spec.ClusterIPs = []string{"10.96.0.51"}
		s.Spec.ExternalIPs = []string{"203.0.113.9"}
	})
	b := NewBuilder(defaultOptions())
	v, tn := b.Service(ServiceInput{Service: ServiceFrom(victim)}), b.Service(ServiceInput{Service: ServiceFrom(tenant)})
	k := ipvs.ServiceKey{Addr: netip.MustParseAddr("203.0.113.9"), Proto: ipvs.TCP, Port: 80}
	entry := func(st ServiceState) Entry {
		i := slices.IndexFunc(st.Entries, func(e Entry) bool { return e.ServiceKey == k })
		if i < 0 {
			t.Fatalf("no entry for %s:\n%s", k, st.Dump())
		}
		return st.Entries[i]
	}
	ve, te := entry(v), entry(tn)
	if !ve.Chosen || !ve.LoadBalancer || !te.Chosen || te.LoadBalancer {
		t.Errorf("victim's entry chosen %v LB %v, tenant's chosen %v LB %v; want true true true false", ve.Chosen, ve.LoadBalancer, te.Chosen, te.LoadBalancer)
	}
	if !Wins(ve, v.Precedence, te, tn.Precedence) || Wins(te, tn.Precedence, ve, v.Precedence) {
		t.Errorf("the older Service's externalIP takes the younger one's LoadBalancer IP:port %s", k)
	}
}

// TestWithoutLeavesNothingOfALostKey: a Service that loses every key
// contributes nothing at all, and one that loses one key keeps the rest.
func TestWithoutLeavesNothingOfALostKey(t *testing.T) {
	o := defaultOptions()
	o.NodeName = "node-b"
	svc := service("evil", loadBalancer("198.51.100.1"), func(s *v1.Service) {
		s.CreationTimestamp = metav1.Unix(5, 0)
		s.Spec.ExternalIPs = []string{"10.96.0.53"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
		s.Spec.HealthCheckNodePort = 32000
	})
	st := NewBuilder(o).Service(ServiceInput{Service: ServiceFrom(svc)})
	dns := ipvs.ServiceKey{Addr: netip.MustParseAddr("10.96.0.53"), Proto: ipvs.TCP, Port: 80}
	got := st.Without(map[ipvs.ServiceKey]string{dns: "lost"}).Dump()
	want := header + `FWM  1175391937 rr                        # ns/evil:http
TCP  10.96.0.10:80 rr                     # ns/evil:http
TCP  198.51.100.1:80 rr                   # ns/evil:http
vip 10.96.0.10
vip 198.51.100.1
external-vip 198.51.100.1
no-local-endpoints 198.51.100.1,tcp:80
firewall 198.51.100.1,tcp:80
source-range 198.51.100.1,tcp:80,192.0.2.0/24
short-circuit 198.51.100.1,tcp:80 skbmark 0x460f0ec1
health-check-node-port 32000 local-endpoints 0,0
problem: lost
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("one key lost (-want +got):\n%s", diff)
	}
	all := map[ipvs.ServiceKey]string{}
	for _, e := range st.Entries {
		all[e.ServiceKey] = "lost " + e.ServiceKey.String()
	}
	empty := st.Without(all)
	empty.Problems = nil
	empty.Precedence = Precedence{}
	if d := empty.Dump(); d != header {
		t.Errorf("every key lost, still contributes:\n%s", d)
	}
}
