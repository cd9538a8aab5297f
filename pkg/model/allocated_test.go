package model

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	v1 "k8s.io/api/core/v1"
)

// TestAllocatedRefuses: what the API server allocated to one Service (its
// clusterIP, on every port; its health-check node port on the node's
// addresses) is refused to every other Service's externalIPs and
// LoadBalancer IPs, whatever --service-cluster-ip-range says (unset here).
// Each case builds the Services, counts them all, and dumps each as it is
// once its refused keys are taken out.
func TestAllocatedRefuses(t *testing.T) {
	svc := func(name, clusterIP string, mutate ...func(*v1.Service)) *v1.Service {
		return testobj.Service("ns", name, []string{clusterIP}, mutate...)
	}
	web := svc("web", "10.96.0.10")
	lbLocal := svc("lb", "10.96.0.60", loadBalancer("198.51.100.60"), func(s *v1.Service) {
		s.Spec.Ports[0].NodePort = 30060
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32060
	})
	cases := []struct {
		name string
		svcs []*v1.Service
		want string
	}{{
		name: "an externalIP equal to another Service's clusterIP, on a port that Service does not use",
		svcs: []*v1.Service{web, svc("hostile", "10.96.0.99", func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"10.96.0.10", "203.0.113.7"}
			s.Spec.Ports[0].Port = 81
		})},
		want: `== ns/web
TCP  10.96.0.10:80 rr                     # ns/web:http
vip 10.96.0.10
== ns/hostile
TCP  10.96.0.99:81 rr                     # ns/hostile:http
TCP  203.0.113.7:81 rr                    # ns/hostile:http
vip 10.96.0.99
vip 203.0.113.7
external-vip 203.0.113.7
problem: http TCP 10.96.0.10:81: the externalIP is another Service's clusterIP, which no Service may take on any port; skipped
`,
	}, {
		name: "a LoadBalancer IP equal to another Service's clusterIP; a Service's own clusterIP as its externalIP stays",
		svcs: []*v1.Service{svc("web", "10.96.0.10", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"10.96.0.10"} }),
			svc("hostile", "10.96.0.99", loadBalancer("10.96.0.10"))},
		want: `== ns/web
TCP  10.96.0.10:80 rr                     # ns/web:http
vip 10.96.0.10
== ns/hostile
TCP  10.96.0.99:80 rr                     # ns/hostile:http
vip 10.96.0.99
problem: http TCP 10.96.0.10:80: the LoadBalancer ingress IP is another Service's clusterIP, which no Service may take on any port; skipped
`,
	}, {
		name: "a node address as externalIP on another Service's healthCheckNodePort; off the node, or on UDP, it stays",
		svcs: []*v1.Service{lbLocal, svc("hostile", "10.96.0.99", func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"192.168.1.10", "203.0.113.7"}
			s.Spec.Ports[0].Port = 32060
			s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 32060})
		})},
		want: `== ns/lb
FWM  1219102621 rr                        # ns/lb:http
TCP  10.96.0.60:80 rr                     # ns/lb:http
TCP  192.168.1.10:30060 rr                # ns/lb:http
TCP  198.51.100.60:80 rr                  # ns/lb:http
vip 10.96.0.60
vip 198.51.100.60
external-vip 198.51.100.60
no-local-endpoints 192.168.1.10,tcp:30060
no-local-endpoints 198.51.100.60,tcp:80
short-circuit 192.168.1.10,tcp:30060 skbmark 0x48aa079d
short-circuit 198.51.100.60,tcp:80 skbmark 0x48aa079d
health-check-node-port 32060 local-endpoints 0,0
== ns/hostile
TCP  10.96.0.99:32060 rr                  # ns/hostile:http
UDP  10.96.0.99:32060 rr                  # ns/hostile:dns
UDP  192.168.1.10:32060 rr                # ns/hostile:dns
TCP  203.0.113.7:32060 rr                 # ns/hostile:http
UDP  203.0.113.7:32060 rr                 # ns/hostile:dns
vip 10.96.0.99
vip 203.0.113.7
external-vip 203.0.113.7
problem: http TCP 192.168.1.10:32060: the externalIP is a node address and the port a Service's healthCheckNodePort, whose checks it would take; skipped
`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(defaultOptions())
			var alloc Allocated
			states := make([]ServiceState, len(tc.svcs))
			for i, s := range tc.svcs {
				states[i] = b.Service(ServiceInput{Service: ServiceFrom(s)})
				alloc.Add(&states[i], +1)
			}
			var got strings.Builder
			for i, st := range states {
				got.WriteString("== " + st.Precedence.Name.String() + "\n")
				got.WriteString(strings.TrimPrefix(st.Without(alloc.Refused(&states[i])).Dump(), header))
			}
			if diff := cmp.Diff(tc.want, got.String()); diff != "" {
				t.Errorf("dump mismatch (-want +got):\n%s\ngot:\n%s", diff, got.String())
			}
		})
	}
}

// TestAllocatedCounts: Add says when an allocated address or port comes or
// goes (the Services with chosen addresses must be refused again then),
// and once the owner of a clusterIP is gone, nothing refuses it.
func TestAllocatedCounts(t *testing.T) {
	b := NewBuilder(defaultOptions())
	web := b.Service(ServiceInput{Service: ServiceFrom(service("web"))})
	hostile := b.Service(ServiceInput{Service: ServiceFrom(testobj.Service("ns", "hostile", []string{"10.96.0.99"}, func(s *v1.Service) {
		s.Spec.ExternalIPs = []string{"10.96.0.10"}
	}))})
	var a Allocated
	steps := []struct {
		st      *ServiceState
		by      int
		changed bool
		refused int
	}{
		{&web, +1, true, 1},
		{&web, +1, false, 1},
		{&hostile, +1, true, 1}, // its own clusterIP 10.96.0.99
		{&web, -1, false, 1},
		{&web, -1, true, 0},
		{&hostile, -1, true, 0},
	}
	for i, s := range steps {
		if got := a.Add(s.st, s.by); got != s.changed {
			t.Errorf("step %d: Add changed = %v, want %v", i, got, s.changed)
		}
		if got := len(a.Refused(&hostile)); got != s.refused {
			t.Errorf("step %d: %d keys refused, want %d", i, got, s.refused)
		}
	}
	if len(a.ClusterIPs) != 0 || len(a.HealthCheckNodePorts) != 0 {
		t.Errorf("counts left after every Service went: %+v", a)
	}
}
