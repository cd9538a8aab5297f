package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// TestBuildNoIPv6: on a host without ip6tables (Options.NoIPv6) a
// dual-stack Service keeps its IPv4 side exactly and loses every IPv6
// entry (clusterIP, externalIP, LoadBalancer IP and its firewall, the
// NodePort on the IPv6 node address, endpoints, health-check count, VIPs
// and set members); an IPv6-only Service gets nothing. Without the option
// both sides are built, as before.
func TestBuildNoIPv6(t *testing.T) {
	v6 := discovery.AddressTypeIPv6
	dualStack := func(local bool) *v1.Service {
		return service("web", func(s *v1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:10:96::10"}
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30080
			s.Spec.ExternalIPs = []string{"203.0.113.7", "2001:db8:3::7"}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.1"}, {IP: "2001:db8:2::1"}}
			s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24", "2001:db8:1::/48"}
			if local {
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
				s.Spec.HealthCheckNodePort = 30256
			}
		})
	}
	slices := []*discovery.EndpointSlice{
		slice("web-4", v4, httpPort, ep{Addr: "10.244.1.2", Node: "node-a"}, ep{Addr: "10.244.2.2", Node: "node-b"}),
		slice("web-6", v6, httpPort, ep{Addr: "fd00:244::2", Node: "node-a"}),
	}
	v6Slices := slices[1:]
	ipv6Only := service("web", func(s *v1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00:10:96::10", []string{"fd00:10:96::10"}
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 30256
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "2001:db8:2::1"}}
	})
	cases := []struct {
		name   string
		svc    *v1.Service
		slices []*discovery.EndpointSlice // the dual-stack ones if nil
		noIPv6 bool
		want   string
	}{{
		name: "dual-stack LoadBalancer, both families",
		svc:  dualStack(false),
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  198.51.100.1:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  203.0.113.7:80 rr                    # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  [2001:db8::10]:30080 rr              # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [2001:db8:2::1]:80 rr                # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [2001:db8:3::7]:80 rr                # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [fd00:10:96::10]:80 rr               # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
vip 10.96.0.10
vip 198.51.100.1
vip 203.0.113.7
vip 2001:db8:2::1
vip 2001:db8:3::7
vip fd00:10:96::10
external-vip 198.51.100.1
external-vip 203.0.113.7
external-vip 2001:db8:2::1
external-vip 2001:db8:3::7
hairpin 10.244.1.2,tcp:8080
hairpin fd00:244::2,tcp:8080
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
service-port 203.0.113.7,tcp:80
service-port 2001:db8:2::1,tcp:80
service-port 2001:db8:3::7,tcp:80
service-port fd00:10:96::10,tcp:80
firewall 198.51.100.1,tcp:80
firewall 2001:db8:2::1,tcp:80
source-range 198.51.100.1,tcp:80,203.0.113.0/24
source-range 2001:db8:2::1,tcp:80,2001:db8:1::/48
`,
	}, {
		name:   "dual-stack LoadBalancer, no IPv6: the IPv4 side alone",
		svc:    dualStack(false),
		noIPv6: true,
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  198.51.100.1:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  203.0.113.7:80 rr                    # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
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
source-range 198.51.100.1,tcp:80,203.0.113.0/24
`,
	}, {
		name: "dual-stack Local with a health check, both families",
		svc:  dualStack(true),
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  198.51.100.1:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  203.0.113.7:80 rr                    # ns/web:http
  -> 10.244.1.2:8080              Masq    1
FWM  1146949323 IPv6 rr                   # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [2001:db8::10]:30080 rr              # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [2001:db8:2::1]:80 rr                # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [2001:db8:3::7]:80 rr                # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [fd00:10:96::10]:80 rr               # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
vip 10.96.0.10
vip 198.51.100.1
vip 203.0.113.7
vip 2001:db8:2::1
vip 2001:db8:3::7
vip fd00:10:96::10
external-vip 198.51.100.1
external-vip 203.0.113.7
external-vip 2001:db8:2::1
external-vip 2001:db8:3::7
hairpin 10.244.1.2,tcp:8080
hairpin fd00:244::2,tcp:8080
keep-source 192.168.1.10,tcp:30080
keep-source 198.51.100.1,tcp:80
keep-source 203.0.113.7,tcp:80
keep-source 2001:db8::10,tcp:30080
keep-source 2001:db8:2::1,tcp:80
keep-source 2001:db8:3::7,tcp:80
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
service-port 203.0.113.7,tcp:80
service-port 2001:db8:2::1,tcp:80
service-port 2001:db8:3::7,tcp:80
service-port fd00:10:96::10,tcp:80
firewall 198.51.100.1,tcp:80
firewall 2001:db8:2::1,tcp:80
source-range 198.51.100.1,tcp:80,203.0.113.0/24
source-range 2001:db8:2::1,tcp:80,2001:db8:1::/48
short-circuit 192.168.1.10,tcp:30080 skbmark 0x445d0ecb
short-circuit 198.51.100.1,tcp:80 skbmark 0x445d0ecb
short-circuit 203.0.113.7,tcp:80 skbmark 0x445d0ecb
short-circuit 2001:db8::10,tcp:30080 skbmark 0x445d0ecb
short-circuit 2001:db8:2::1,tcp:80 skbmark 0x445d0ecb
short-circuit 2001:db8:3::7,tcp:80 skbmark 0x445d0ecb
health-check-node-port 30256 local-endpoints 1,1
`,
	}, {
		name:   "dual-stack Local with a health check, no IPv6: IPv4 counts alone",
		svc:    dualStack(true),
		noIPv6: true,
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
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
keep-source 192.168.1.10,tcp:30080
keep-source 198.51.100.1,tcp:80
keep-source 203.0.113.7,tcp:80
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
service-port 203.0.113.7,tcp:80
firewall 198.51.100.1,tcp:80
source-range 198.51.100.1,tcp:80,203.0.113.0/24
short-circuit 192.168.1.10,tcp:30080 skbmark 0x445d0ecb
short-circuit 198.51.100.1,tcp:80 skbmark 0x445d0ecb
short-circuit 203.0.113.7,tcp:80 skbmark 0x445d0ecb
health-check-node-port 30256 local-endpoints 1,0
`,
	}, {
		name:   "IPv6-only Service, IPv6 programmed",
		svc:    ipv6Only,
		slices: v6Slices,
		want: header + `FWM  1146949323 IPv6 rr                   # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [2001:db8::10]:30080 rr              # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [2001:db8:2::1]:80 rr                # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
TCP  [fd00:10:96::10]:80 rr               # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
vip 2001:db8:2::1
vip fd00:10:96::10
external-vip 2001:db8:2::1
hairpin fd00:244::2,tcp:8080
keep-source 2001:db8::10,tcp:30080
keep-source 2001:db8:2::1,tcp:80
service-port 2001:db8:2::1,tcp:80
service-port fd00:10:96::10,tcp:80
short-circuit 2001:db8::10,tcp:30080 skbmark 0x445d0ecb
short-circuit 2001:db8:2::1,tcp:80 skbmark 0x445d0ecb
health-check-node-port 30256 local-endpoints 0,1
`,
	}, {
		name:   "IPv6-only Service, no IPv6: nothing",
		svc:    ipv6Only,
		slices: v6Slices,
		noIPv6: true,
		want:   header,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions() // NodeIPs include 2001:db8::10
			o.NoIPv6 = tc.noIPv6
			in := tc.slices
			if in == nil {
				in = slices
			}
			got := NewBuilder(o).Service(ServiceInput{Service: ServiceFrom(tc.svc), Slices: Slices(in...)}).Dump()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("dump (-want +got):\n%s\ngot:\n%s", diff, got)
			}
		})
	}
}

// TestExplainNoIPv6: `status --service` says why a dual-stack Service's
// IPv6 endpoints are not programmed on a host without ip6tables, rather
// than leaving them out of its list.
func TestExplainNoIPv6(t *testing.T) {
	o := defaultOptions()
	o.NoIPv6 = true
	svc := service("web", func(s *v1.Service) { s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:10:96::10"} })
	in := ServiceInput{Service: ServiceFrom(svc), Slices: Slices(
		slice("web-4", v4, httpPort, ep{Addr: "10.244.1.2", Node: "node-a"}),
		slice("web-6", discovery.AddressTypeIPv6, httpPort, ep{Addr: "fd00:244::2", Node: "node-a"}))}
	want := []Explanation{
		{Port: "http", Endpoint: "10.244.1.2", Node: "node-a", Internal: "programmed", External: "-"},
		{Port: "http", Endpoint: "fd00:244::2", Node: "node-a", Internal: noIPv6Reason, External: noIPv6Reason},
	}
	if diff := cmp.Diff(want, NewBuilder(o).Explain(in)); diff != "" {
		t.Errorf("explanations (-want +got):\n%s", diff)
	}
}
