package proxier

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A hostile Service's chosen address (an externalIP) must leave the kernel
// exactly as if it had not named it, whatever the order of the syncs, when
// it names what the API server or a load balancer's controller gave
// another Service: its clusterIP (on a port that Service does not use,
// where no virtual server collides but the address-wide masquerade set
// would take every pod's source address to it), a node address on its
// healthCheckNodePort (whose checks IPVS would take before the health
// server's socket), or its LoadBalancer ingress IP:port (whose source
// ranges would go with it), even when the hostile Service is the older.
// The oracle is the same world with the hostile Service's externalIPs
// left out; the hostile Service gets a problem (its Event).
func TestChosenAddressCannotTakeAllocated(t *testing.T) {
	lb := input(svc("lb", "10.96.0.60", nodePort(30060), created(200), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32060
		s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
	}), slice("lb", "10.244.1.5"))
	victim := input(web, webSlice)
	hostile := func(extIP string, port int32) (with, without model.ServiceInput) {
		mk := func(ext []string) model.ServiceInput {
			return input(svc("hostile", "10.96.0.99", created(100), func(s *v1.Service) {
				s.Spec.ExternalIPs = ext
				s.Spec.Ports[0].Port = port
			}), slice("hostile", "10.244.1.9"))
		}
		return mk([]string{extIP}), mk(nil)
	}
	for _, tc := range []struct {
		name, extIP, problem string
		port                 int32
	}{
		{"another Service's clusterIP, on a port it does not use", "10.96.0.10", "http TCP 10.96.0.10:81: the externalIP is another Service's clusterIP, which no Service may take on any port; skipped", 81},
		{"a node address on another Service's healthCheckNodePort", "192.168.1.10", "http TCP 192.168.1.10:32060: the externalIP is a node address and the port a Service's healthCheckNodePort, whose checks it would take; skipped", 32060},
		{"a younger Service's LoadBalancer IP:port", "203.0.113.9", "http TCP 203.0.113.9:80 is wanted by another Service that takes precedence; skipped", 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			with, without := hostile(tc.extIP, tc.port)
			ref := newKernel()
			if res := ref.proxier(t, "").SyncAll([]model.ServiceInput{victim, lb, without}); len(res.Errors) > 0 {
				t.Fatal(res.Errors)
			}
			want := ref.dump(t)
			for _, order := range []struct {
				name        string
				full, steps []model.ServiceInput
			}{
				{"one full sync", []model.ServiceInput{victim, lb, with}, nil},
				{"the others first, then the hostile one", []model.ServiceInput{victim, lb}, []model.ServiceInput{with}},
				{"the hostile one first, then the others", []model.ServiceInput{with}, []model.ServiceInput{victim, lb}},
				{"the hostile one edits its externalIPs in", []model.ServiceInput{victim, lb, without}, []model.ServiceInput{with}},
			} {
				k := newKernel()
				p := k.proxier(t, "")
				res := p.SyncAll(order.full)
				for _, in := range order.steps {
					res = p.SyncServices(changesOf(in))
				}
				if diff := cmp.Diff(want, k.dump(t)); diff != "" {
					t.Errorf("%s: the kernel differs from the world without the hostile externalIP (-want +got):\n%s", order.name, diff)
				}
				// A resync comes to the same answer, and names the problem.
				res = p.SyncAll([]model.ServiceInput{victim, lb, with})
				if diff := cmp.Diff(want, k.dump(t)); diff != "" {
					t.Errorf("%s, then a full sync (-want +got):\n%s", order.name, diff)
				}
				if got := strings.Join(res.Problems[types.NamespacedName{Namespace: "ns", Name: "hostile"}], "; "); got != tc.problem {
					t.Errorf("%s: problems of the hostile Service = %q, want %q", order.name, got, tc.problem)
				}
			}
		})
	}
}

// A Service whose healthCheckNodePort moves onto a port where another
// Service's externalIP on a node address already is takes it back: the
// move changes no virtual server of its own, and must still re-settle
// the other Service.
func TestHealthCheckPortMovesOntoAChosenAddress(t *testing.T) {
	lbOn := func(hc int32) model.ServiceInput {
		return input(svc("lb", "10.96.0.60", nodePort(30060), func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = hc
		}), slice("lb", "10.244.1.5"))
	}
	hostile := func(ext []string) model.ServiceInput {
		return input(svc("hostile", "10.96.0.99", func(s *v1.Service) {
			s.Spec.ExternalIPs = ext
			s.Spec.Ports[0].Port = 32061
		}), slice("hostile", "10.244.1.9"))
	}
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{lbOn(32061), hostile(nil)})
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll([]model.ServiceInput{lbOn(32060), hostile([]string{"192.168.1.10"})})
	if !strings.Contains(k.ipvs.Dump(), "TCP  192.168.1.10:32061 rr") {
		t.Fatalf("before the move, the externalIP on a free port is not programmed:\n%s", k.ipvs.Dump())
	}
	p.SyncServices(changesOf(lbOn(32061)))
	if diff := cmp.Diff(ref.dump(t), k.dump(t)); diff != "" {
		t.Errorf("after the health-check port moved (-want +got):\n%s", diff)
	}
}
