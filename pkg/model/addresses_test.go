package model

import (
	"net/netip"
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
		name: "source ranges guard the LB IPs only, per family, and admit the node when a range holds a node address",
		svc: service("web", loadBalancer("198.51.100.1"), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"203.0.113.7"}
			s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24", "192.168.1.0/24", "2001:db8::/32", "bogus"}
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

func TestWins(t *testing.T) {
	older := Precedence{Created: time.Unix(100, 0), UID: "b", Name: types.NamespacedName{Namespace: "zzz", Name: "x"}}
	newer := Precedence{Created: time.Unix(200, 0), UID: "a", Name: types.NamespacedName{Namespace: "aaa", Name: "x"}}
	sameTimeLowUID := Precedence{Created: time.Unix(100, 0), UID: "a", Name: types.NamespacedName{Namespace: "zzz", Name: "y"}}
	allocated, chosen := Entry{}, Entry{Chosen: true}
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
health-check-node-port 32000 local-endpoints 0
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
