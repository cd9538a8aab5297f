package model

import (
	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

var v4 = discovery.AddressTypeIPv4

func defaultOptions() Options {
	return Options{
		NodeName:  "node-a",
		NodeIPs:   addrs("192.168.1.10", "127.0.0.1", "fe80::1", "2001:db8::10"),
		Scheduler: "rr",
	}
}

const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"

func TestBuildService(t *testing.T) {
	twoPods := slice("web-1", v4, httpPort, ep{Addr: "10.244.1.2", Node: "node-a"}, ep{Addr: "10.244.2.2", Node: "node-b"})
	cases := []struct {
		name   string
		svc    *v1.Service
		slices []*discovery.EndpointSlice
		opts   func(*Options)
		want   string
	}{{
		name:   "clusterIP with two ready endpoints",
		svc:    service("web"),
		slices: []*discovery.EndpointSlice{twoPods},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
vip 10.96.0.10
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
`,
	}, {
		name: "dual-stack clusterIPs take endpoints of their own family",
		svc: service("web", func(s *v1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:10:96::10"}
		}),
		slices: []*discovery.EndpointSlice{twoPods, slice("web-6", discovery.AddressTypeIPv6, httpPort, ep{Addr: "fd00:244::2", Node: "node-a"})},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  [fd00:10:96::10]:80 rr               # ns/web:http
  -> [fd00:244::2]:8080           Masq    1
vip 10.96.0.10
vip fd00:10:96::10
hairpin 10.244.1.2,tcp:8080
hairpin fd00:244::2,tcp:8080
service-port 10.96.0.10,tcp:80
service-port fd00:10:96::10,tcp:80
`,
	}, {
		name: "NodePort on every usable node address of the family, none on loopback or link-local",
		svc: service("web", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30080
		}),
		slices: []*discovery.EndpointSlice{twoPods},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
vip 10.96.0.10
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
`,
	}, {
		name: "nodeport-addresses restricts NodePort addresses",
		svc: service("web", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30080
		}),
		opts: func(o *Options) {
			o.NodeIPs = append(o.NodeIPs, netip.MustParseAddr("172.16.0.5"))
			o.NodePortAddresses = []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}
		},
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort, ep{Addr: "10.244.1.2"})},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  172.16.0.5:30080 rr                  # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
service-port 10.96.0.10,tcp:80
`,
	}, {
		name: "externalTrafficPolicy Local: NodePort, externalIP and LB get only local endpoints; clusterIP gets all",
		svc: service("web", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30080
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.ExternalIPs = []string{"203.0.113.7", "192.168.1.10"}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{
				{IP: "198.51.100.1"},
				{IP: "198.51.100.2", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)},
				{Hostname: "lb.example"},
			}
		}),
		slices: []*discovery.EndpointSlice{twoPods},
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:80 rr                   # ns/web:http
  -> 10.244.1.2:8080              Masq    1
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
keep-source 192.168.1.10,tcp:80
keep-source 192.168.1.10,tcp:30080
keep-source 198.51.100.1,tcp:80
keep-source 203.0.113.7,tcp:80
service-port 10.96.0.10,tcp:80
service-port 198.51.100.1,tcp:80
service-port 203.0.113.7,tcp:80
short-circuit 192.168.1.10,tcp:80 skbmark 0x445d0ecb
short-circuit 192.168.1.10,tcp:30080 skbmark 0x445d0ecb
short-circuit 198.51.100.1,tcp:80 skbmark 0x445d0ecb
short-circuit 203.0.113.7,tcp:80 skbmark 0x445d0ecb
`,
	}, {
		name: "externalTrafficPolicy Local with no local endpoint leaves external servers empty",
		svc: service("web", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30080
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort, ep{Addr: "10.244.2.2", Node: "node-b"})},
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
vip 10.96.0.10
service-port 10.96.0.10,tcp:80
no-local-endpoints 192.168.1.10,tcp:30080
short-circuit 192.168.1.10,tcp:30080 skbmark 0x445d0ecb
`,
	}, {
		name: "health-check node port counts local ready endpoints, not terminating or remote ones",
		svc: service("web", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30080
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 32000
			s.Spec.ExternalIPs = []string{"203.0.113.7"}
		}),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort,
			ep{Addr: "10.244.1.2", Node: "node-a"}, ep{Addr: "10.244.1.3", Node: "node-a"},
			ep{Addr: "10.244.1.4", Node: "node-a", Ready: no, Serving: yes, Terminating: yes},
			ep{Addr: "10.244.2.2", Node: "node-b"})},
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
TCP  203.0.113.7:80 rr                    # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
vip 10.96.0.10
vip 203.0.113.7
external-vip 203.0.113.7
hairpin 10.244.1.2,tcp:8080
hairpin 10.244.1.3,tcp:8080
keep-source 192.168.1.10,tcp:30080
keep-source 203.0.113.7,tcp:80
service-port 10.96.0.10,tcp:80
service-port 203.0.113.7,tcp:80
short-circuit 192.168.1.10,tcp:30080 skbmark 0x445d0ecb
short-circuit 203.0.113.7,tcp:80 skbmark 0x445d0ecb
health-check-node-port 32000 local-endpoints 2,0
`,
	}, {
		name: "eTP Local without local endpoints: external ports are dropped quietly, the clusterIP stays open, health check says 0",
		svc: service("web", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30080
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 32000
			s.Spec.ExternalIPs = []string{"203.0.113.7"}
		}),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort, ep{Addr: "10.244.2.2", Node: "node-b"})},
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
TCP  203.0.113.7:80 rr                    # ns/web:http
vip 10.96.0.10
vip 203.0.113.7
external-vip 203.0.113.7
service-port 10.96.0.10,tcp:80
no-local-endpoints 192.168.1.10,tcp:30080
no-local-endpoints 203.0.113.7,tcp:80
short-circuit 192.168.1.10,tcp:30080 skbmark 0x445d0ecb
short-circuit 203.0.113.7,tcp:80 skbmark 0x445d0ecb
health-check-node-port 32000 local-endpoints 0,0
`,
	}, {
		name: "internalTrafficPolicy Local: clusterIP gets only local endpoints",
		svc: service("web", func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		}),
		slices: []*discovery.EndpointSlice{twoPods},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
`,
	}, {
		name: "session affinity ClientIP with its timeout, and the default timeout",
		svc: service("web", func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
		}),
		slices: []*discovery.EndpointSlice{twoPods},
		want: header + `TCP  10.96.0.10:80 rr persistent 600      # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
vip 10.96.0.10
hairpin 10.244.1.2,tcp:8080
service-port 10.96.0.10,tcp:80
`,
	}, {
		// With publishNotReadyAddresses the EndpointSlice controller writes
		// ready=true for every pod, a terminating one too. kube-proxy's
		// IsReady is the Ready condition alone, so such an endpoint is a
		// normal real server, and a local one counts in the health check.
		name: "publishNotReadyAddresses: a terminating endpoint with ready=true stays a real server and counts",
		svc: service("web", func(s *v1.Service) {
			s.Spec.PublishNotReadyAddresses = true
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30080
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 32000
		}),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort,
			ep{Addr: "10.244.1.3", Node: "node-a", Ready: yes, Serving: no, Terminating: yes},
			ep{Addr: "10.244.2.2", Node: "node-b"})},
		want: header + `FWM  1146949323 rr                        # ns/web:http
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  192.168.1.10:30080 rr                # ns/web:http
  -> 10.244.1.3:8080              Masq    1
vip 10.96.0.10
hairpin 10.244.1.3,tcp:8080
keep-source 192.168.1.10,tcp:30080
service-port 10.96.0.10,tcp:80
short-circuit 192.168.1.10,tcp:30080 skbmark 0x445d0ecb
health-check-node-port 32000 local-endpoints 1,0
`,
	}, {
		name: "session affinity without config uses 10800 s",
		svc: service("web", func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		}),
		want: header + `TCP  10.96.0.10:80 rr persistent 10800    # ns/web:http
vip 10.96.0.10
`,
	}, {
		name: "ready endpoints win over serving terminating ones",
		svc:  service("web"),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort,
			ep{Addr: "10.244.1.2", Ready: yes},
			ep{Addr: "10.244.1.3", Ready: no, Serving: yes, Terminating: yes},
			ep{Addr: "10.244.1.4", Ready: no, Serving: no})},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
service-port 10.96.0.10,tcp:80
`,
	}, {
		name: "with none ready, serving terminating endpoints are used; not-serving ones never",
		svc:  service("web"),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort,
			ep{Addr: "10.244.1.3", Ready: no, Serving: yes, Terminating: yes},
			ep{Addr: "10.244.1.5", Ready: no, Serving: no, Terminating: yes},
			ep{Addr: "10.244.1.4", Ready: no, Serving: no})},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.3:8080              Masq    1
vip 10.96.0.10
service-port 10.96.0.10,tcp:80
`,
	}, {
		name: "the local fallback to terminating is separate from the cluster-wide one",
		svc: service("web", func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		}),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort,
			ep{Addr: "10.244.2.2", Node: "node-b", Ready: yes},
			ep{Addr: "10.244.1.3", Node: "node-a", Ready: no, Serving: yes, Terminating: yes})},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.3:8080              Masq    1
vip 10.96.0.10
hairpin 10.244.1.3,tcp:8080
service-port 10.96.0.10,tcp:80
`,
	}, {
		name: "several slices, an endpoint in two of them counted once",
		svc:  service("web"),
		slices: []*discovery.EndpointSlice{
			slice("web-1", v4, httpPort, ep{Addr: "10.244.1.2"}, ep{Addr: "10.244.1.3"}),
			slice("web-2", v4, httpPort, ep{Addr: "10.244.1.3"}, ep{Addr: "10.244.1.4"}),
		},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.1.4:8080              Masq    1
vip 10.96.0.10
service-port 10.96.0.10,tcp:80
`,
	}, {
		name: "ports matched by name, each with its own target port; protocols TCP, UDP, SCTP",
		svc: service("dns", func(s *v1.Service) {
			s.Spec.Ports = []v1.ServicePort{
				{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53},
				{Name: "dns-tcp", Protocol: v1.ProtocolTCP, Port: 53},
				{Name: "sig", Protocol: v1.ProtocolSCTP, Port: 9000},
			}
		}),
		slices: []*discovery.EndpointSlice{slice("dns-1", v4,
			[]discovery.EndpointPort{port("dns-tcp", v1.ProtocolTCP, 5353), port("dns", v1.ProtocolUDP, 1053), port("sig", v1.ProtocolSCTP, 9999)},
			ep{Addr: "10.244.1.2"})},
		want: header + `SCTP 10.96.0.10:9000 rr                   # ns/dns:sig
  -> 10.244.1.2:9999              Masq    1
TCP  10.96.0.10:53 rr                     # ns/dns:dns-tcp
  -> 10.244.1.2:5353              Masq    1
UDP  10.96.0.10:53 rr                     # ns/dns:dns
  -> 10.244.1.2:1053              Masq    1
vip 10.96.0.10
service-port 10.96.0.10,sctp:9000
service-port 10.96.0.10,tcp:53
service-port 10.96.0.10,udp:53
`,
	}, {
		name: "headless Service wants nothing",
		svc: service("web", func(s *v1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = v1.ClusterIPNone, []string{v1.ClusterIPNone}
		}),
		slices: []*discovery.EndpointSlice{twoPods},
		want:   header,
	}, {
		name: "ExternalName Service wants nothing",
		svc: service("web", func(s *v1.Service) {
			s.Spec.Type, s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.ExternalName = v1.ServiceTypeExternalName, "", nil, "example.com"
		}),
		want: header,
	}, {
		name: "scheduler annotation overrides the global one",
		svc: service("web", func(s *v1.Service) {
			s.Annotations = map[string]string{SchedulerAnnotation: "sh"}
		}),
		want: header + `TCP  10.96.0.10:80 sh                     # ns/web:http
vip 10.96.0.10
`,
	}, {
		name: "unknown scheduler annotation falls back to the global one with a problem",
		svc: service("web", func(s *v1.Service) {
			s.Annotations = map[string]string{SchedulerAnnotation: "fastest"}
		}),
		opts: func(o *Options) { o.Scheduler = "lc" },
		want: header + `TCP  10.96.0.10:80 lc                     # ns/web:http
vip 10.96.0.10
problem: annotation ipvs-proxy.io/scheduler: unknown IPVS scheduler "fastest" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos); using "lc"
`,
	}, {
		name: "a scheduler this node's kernel lacks falls back to the global one with a problem",
		svc: service("web", func(s *v1.Service) {
			s.Annotations = map[string]string{SchedulerAnnotation: "mh"}
		}),
		opts: func(o *Options) { o.Scheduler = "lc"; o.Unavailable = map[string]bool{"mh": true} },
		want: header + `TCP  10.96.0.10:80 lc                     # ns/web:http
vip 10.96.0.10
problem: annotation ipvs-proxy.io/scheduler: this node's kernel has no IPVS scheduler "mh" (module ip_vs_mh); using "lc"
`,
	}, {
		// Multicast, broadcast and 0.0.0.0/8 pass the API's validation,
		// and the kernel refuses them as real servers.
		name: "invalid endpoint address is skipped, the rest programmed",
		svc:  service("web"),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, httpPort,
			ep{Addr: "10.244.1.2"}, ep{Addr: "not-an-ip"}, ep{Addr: "fd00::1"},
			ep{Addr: "224.0.1.1"}, ep{Addr: "255.255.255.255"}, ep{Addr: "0.1.2.3"})},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
vip 10.96.0.10
service-port 10.96.0.10,tcp:80
problem: EndpointSlice ns/web-1: endpoint address "not-an-ip" is not a valid IPv4 address; skipped
problem: EndpointSlice ns/web-1: endpoint address "fd00::1" is not a valid IPv4 address; skipped
problem: EndpointSlice ns/web-1: endpoint address "224.0.1.1" is not a valid IPv4 address; skipped
problem: EndpointSlice ns/web-1: endpoint address "255.255.255.255" is not a valid IPv4 address; skipped
problem: EndpointSlice ns/web-1: endpoint address "0.1.2.3" is not a valid IPv4 address; skipped
`,
	}, {
		name:   "a Service port matching no slice port has no real servers and says why",
		svc:    service("web", func(s *v1.Service) { s.Spec.Ports[0].Name = "https" }),
		slices: []*discovery.EndpointSlice{twoPods},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:https
vip 10.96.0.10
problem: port "https"/TCP matches no port of the Service's IPv4 EndpointSlices; it has no real servers
`,
	}, {
		name:   "a slice with no ports (Service with no pods) is not a mismatch",
		svc:    service("web"),
		slices: []*discovery.EndpointSlice{slice("web-1", v4, nil)},
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
vip 10.96.0.10
`,
	}, {
		name: "invalid clusterIP and externalIP are skipped",
		svc: service("web", func(s *v1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10", "10.96.0.300"}
			s.Spec.ExternalIPs = []string{"bogus"}
		}),
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
vip 10.96.0.10
problem: clusterIP "10.96.0.300" is not a valid IP address; skipped
problem: externalIP "bogus" is not a valid IP address; skipped
`,
	}, {
		name: "unsupported protocol is skipped",
		svc: service("web", func(s *v1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "x", Protocol: "ICMP", Port: 1})
		}),
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
vip 10.96.0.10
problem: port "x": protocol "ICMP" is not supported; skipped
`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			got := NewBuilder(o).Service(ServiceInput{Service: ServiceFrom(tc.svc), Slices: Slices(tc.slices...)}).Dump()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("dump mismatch (-want +got):\n%s\ngot:\n%s", diff, got)
			}
		})
	}
}

// TestBuilderScratch: one Builder reuses its list of endpoints from one
// Service port to the next; what it builds is what a fresh Builder builds,
// in any order, including a Service with fewer endpoints after one with
// more, and the same endpoint in two slices.
func TestBuilderScratch(t *testing.T) {
	many := ServiceInput{Service: ServiceFrom(service("web")), Slices: Slices(
		slice("web-1", v4, httpPort, ep{Addr: "10.244.1.2", Node: "node-a"}, ep{Addr: "10.244.2.2", Node: "node-b"}, ep{Addr: "10.244.3.2", Node: "node-c", Ready: no}),
		slice("web-2", v4, httpPort, ep{Addr: "10.244.2.2", Node: "node-b"}, ep{Addr: "10.244.4.2", Node: "node-a"}),
	)}
	few := ServiceInput{Service: ServiceFrom(service("api", func(s *v1.Service) { s.Spec.ClusterIPs = []string{"10.96.0.11"} })), Slices: Slices(
		testobj.Slice("ns", "api-1", "api", v4, httpPort, ep{Addr: "10.244.9.9", Node: "node-b"}),
	)}
	o := Options{NodeName: "node-a", Scheduler: "rr"}
	b := NewBuilder(o)
	for i, in := range []ServiceInput{many, few, many, few} {
		want := NewBuilder(o).Service(in).Dump()
		if got := b.Service(in).Dump(); got != want {
			t.Errorf("build %d (%s) with a used Builder:\n%s\nwant:\n%s", i, in.Service.Name, got, want)
		}
	}
}
