package proxier

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func created(unix int64) func(*v1.Service) {
	return func(s *v1.Service) { s.CreationTimestamp = metav1.Unix(unix, 0) }
}

func inNamespace(ns string) func(*v1.Service) {
	return func(s *v1.Service) { s.Namespace = ns }
}

func udp53(s *v1.Service) {
	s.Spec.Ports = []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53}}
}

func dnsSlice(ns, svcName string, addrs ...string) *discovery.EndpointSlice {
	s := slice(svcName, addrs...)
	s.Namespace = ns
	s.Ports = []discovery.EndpointPort{{Name: ptr.To("dns"), Protocol: ptr.To(v1.ProtocolUDP), Port: ptr.To[int32](53)}}
	return s
}

func nsName(ns, n string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: n} }

// The tenant attack: a Service in any namespace names the cluster DNS
// clusterIP as an externalIP, with externalTrafficPolicy Local and no
// endpoints, which would put the DNS VIP:port in the no-local-endpoints
// set (dropping every DNS query) and take its virtual server. Whatever the
// order of the syncs and the age or name of the Services, the kernel must
// hold exactly what DNS alone asks for, plus the attackers' own clusterIPs.
func TestNoServiceTakesAnAllocatedAddress(t *testing.T) {
	dns := input(svc("kube-dns", "10.96.0.10", inNamespace("kube-system"), udp53, created(100)),
		dnsSlice("kube-system", "kube-dns", "10.244.1.53"))
	attacker := func(ns, clusterIP string, age int64) model.ServiceInput {
		return input(svc("evil", clusterIP, inNamespace(ns), udp53, created(age), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"10.96.0.10"}
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}))
	}
	zzz, aaa := attacker("zzz", "10.96.0.66", 50), attacker("aaa", "10.96.0.67", 10) // both older than DNS
	const want = ipvsHeader + `UDP  10.96.0.10:53 rr
  -> 10.244.1.53:53               Masq    1
UDP  10.96.0.66:53 rr
UDP  10.96.0.67:53 rr
link kube-ipvs0 dummy down
addr 10.96.0.10/32
addr 10.96.0.66/32
addr 10.96.0.67/32
set IPVS-PROXY-EXTERNAL-VIPS hash:ip family inet
set IPVS-PROXY-EXTERNAL-VIPS6 hash:ip family inet6
set IPVS-PROXY-FIREWALL hash:ip,port family inet
set IPVS-PROXY-FIREWALL6 hash:ip,port family inet6
set IPVS-PROXY-HAIRPIN hash:ip,port,ip family inet
  10.244.1.53,udp:53,10.244.1.53
set IPVS-PROXY-HAIRPIN6 hash:ip,port,ip family inet6
set IPVS-PROXY-KEEP-SOURCE hash:ip,port family inet
set IPVS-PROXY-KEEP-SOURCE6 hash:ip,port family inet6
set IPVS-PROXY-NO-LOCAL-ENDPOINTS hash:ip,port family inet
set IPVS-PROXY-NO-LOCAL-ENDPOINTS6 hash:ip,port family inet6
set IPVS-PROXY-SERVICE-PORTS hash:ip,port family inet
  10.96.0.10,udp:53
set IPVS-PROXY-SERVICE-PORTS6 hash:ip,port family inet6
set IPVS-PROXY-SHORT-CIRCUIT hash:ip,port family inet skbinfo
set IPVS-PROXY-SHORT-CIRCUIT6 hash:ip,port family inet6 skbinfo
set IPVS-PROXY-SOURCE-RANGES hash:ip,port,net family inet
set IPVS-PROXY-SOURCE-RANGES6 hash:ip,port,net family inet6
set IPVS-PROXY-VIPS hash:ip family inet
  10.96.0.10
  10.96.0.66
  10.96.0.67
set IPVS-PROXY-VIPS6 hash:ip family inet6
`
	const problem = "dns UDP 10.96.0.10:53 is wanted by another Service that takes precedence; skipped"
	all := []model.ServiceInput{zzz, dns, aaa}
	for _, tc := range []struct {
		name string
		// full are the inputs of a first SyncAll; then each of steps is
		// one SyncServices.
		full  []model.ServiceInput
		steps []model.ServiceInput
	}{
		{name: "one full sync", full: all},
		{name: "DNS first, then the attackers one by one", full: all[1:2], steps: []model.ServiceInput{zzz, aaa}},
		{name: "the attackers first, then DNS", full: []model.ServiceInput{zzz, aaa}, steps: []model.ServiceInput{dns}},
		{name: "everything change by change", steps: []model.ServiceInput{aaa, zzz, dns}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel()
			p := k.proxier(t, "")
			res := p.SyncAll(tc.full)
			for _, in := range tc.steps {
				res = p.SyncServices(changesOf(in))
			}
			if len(res.Errors) > 0 {
				t.Fatalf("errors: %v", res.Errors)
			}
			checkDump(t, k, want)
			// The periodic resync and a restarted proxy (a new Proxier on
			// the same kernel) come to the same answer.
			for _, q := range []*Proxier{p, k.proxier(t, "")} {
				res = q.SyncAll(all)
				checkDump(t, k, want)
				for _, n := range []types.NamespacedName{nsName("zzz", "evil"), nsName("aaa", "evil")} {
					if got := strings.Join(res.Problems[n], "; "); got != problem {
						t.Errorf("problems of %s = %q, want %q (no other Service named)", n, got, problem)
					}
				}
			}
		})
	}
}

func changesOf(ins ...model.ServiceInput) map[types.NamespacedName]*model.ServiceInput {
	out := map[types.NamespacedName]*model.ServiceInput{}
	for _, in := range ins {
		out[nameOf(in)] = &in
	}
	return out
}

// Between two chosen addresses the older Service wins, in either order of
// syncs; when it lets go, the other takes the key in the same sync.
func TestOlderServiceWinsAndTheNextTakesOver(t *testing.T) {
	withExt := func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} }
	young := input(svc("a", "10.96.0.50", withExt, created(200)), slice("a", "10.244.1.10"))
	old := input(svc("z", "10.96.0.51", withExt, created(100)), slice("z", "10.244.1.11"))
	extWith := func(ep string) string {
		return "TCP  203.0.113.9:80 rr\n  -> " + ep + ":8080             Masq    1\n"
	}
	dump := func(ext string) string {
		return ipvsHeader + "TCP  10.96.0.50:80 rr\n  -> 10.244.1.10:8080             Masq    1\n" +
			"TCP  10.96.0.51:80 rr\n  -> 10.244.1.11:8080             Masq    1\n" + ext +
			"link kube-ipvs0 dummy down\naddr 10.96.0.50/32\naddr 10.96.0.51/32\naddr 203.0.113.9/32\n" +
			withExternalVIP(sets("10.244.1.10", "10.244.1.11"), "203.0.113.9") + guard("10.96.0.50,tcp:80", "10.96.0.51,tcp:80", "203.0.113.9,tcp:80")
	}
	for _, order := range [][]model.ServiceInput{{young, old}, {old, young}} {
		k := newKernel()
		p := k.proxier(t, "")
		p.SyncAll(nil)
		for _, in := range order {
			p.SyncServices(changesOf(in))
		}
		checkDump(t, k, dump(extWith("10.244.1.11")))
		gone := changesOf(old)
		gone[nameOf(old)] = nil
		res := p.SyncServices(gone)
		if !slices.Contains(res.Changed, nameOf(young)) {
			t.Errorf("changed = %v, want the Service that took the key over", res.Changed)
		}
		want := strings.Replace(dump(extWith("10.244.1.10")), "TCP  10.96.0.51:80 rr\n  -> 10.244.1.11:8080             Masq    1\n", "", 1)
		want = strings.Replace(want, "addr 10.96.0.51/32\n", "", 1)
		want = strings.Replace(strings.Replace(want, "  10.96.0.51,tcp:80\n", "", 1), "  10.96.0.51\n", "", 1)
		want = strings.Replace(want, "  10.244.1.11,tcp:8080,10.244.1.11\n", "", 1)
		checkDump(t, k, want)
	}
}

// A virtual server another tool made on a node address is never adopted,
// rewritten or deleted, even when a Service names that address, and the
// Service is told why.
func TestForeignVirtualServerIsNeverAdopted(t *testing.T) {
	nodeKey := ipvs.ServiceKey{Addr: netip.MustParseAddr("192.168.1.10"), Proto: ipvs.TCP, Port: 80}
	foreign := ipvs.VirtualServer{
		Service:      ipvs.Service{ServiceKey: nodeKey, Scheduler: "wlc"},
		Destinations: []ipvs.Destination{{Addr: netip.MustParseAddr("192.168.1.99"), Port: 8000, Weight: 3}},
	}
	ext := input(svc("ext", "10.96.0.70", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"192.168.1.10"} }), slice("ext", "10.244.1.70"))
	const foreignDump = "TCP  192.168.1.10:80 wlc\n  -> 192.168.1.99:8000            Masq    3\n"
	const problem = "http TCP 192.168.1.10:80 is a virtual server ipvs-proxy did not create; skipped"
	for _, full := range []bool{true, false} {
		k := newKernel()
		if err := errors.Join(k.ipvs.AddService(foreign.Service), k.ipvs.AddDestination(nodeKey, foreign.Destinations[0])); err != nil {
			t.Fatal(err)
		}
		p := k.proxier(t, "")
		var res Result
		if full {
			res = p.SyncAll([]model.ServiceInput{ext})
		} else {
			p.SyncAll(nil)
			res = p.SyncServices(changesOf(ext))
		}
		if got := strings.Join(res.Problems[nameOf(ext)], "; "); got != problem {
			t.Errorf("full=%v: problems = %q, want %q", full, got, problem)
		}
		checkDump(t, k, ipvsHeader+"TCP  10.96.0.70:80 rr\n  -> 10.244.1.70:8080             Masq    1\n"+foreignDump+
			"link kube-ipvs0 dummy down\naddr 10.96.0.70/32\n"+sets("10.244.1.70")+guard("10.96.0.70,tcp:80"))
		gone := changesOf(ext)
		gone[nameOf(ext)] = nil
		p.SyncServices(gone)
		p.SyncAll(nil)
		checkDump(t, k, ipvsHeader+foreignDump+"link kube-ipvs0 dummy down\n"+sets()+guard())
	}
}

// During a move from kube-proxy, its NodePort virtual servers on node
// addresses (which it records nowhere) are taken over when a Service wants
// them, and recorded; any other virtual server there stays foreign.
func TestMigrationTakesOverKubeProxyNodePorts(t *testing.T) {
	kubeProxys := ipvs.Service{ServiceKey: key("192.168.1.10", 30080), Scheduler: "rr"}
	other := ipvs.Service{ServiceKey: key("192.168.1.10", 30999), Scheduler: "wlc"}
	for _, adopt := range []bool{true, false} {
		k := newKernel()
		for _, s := range []ipvs.Service{kubeProxys, other} {
			if err := errors.Join(k.ipvs.AddService(s), k.ipvs.AddDestination(s.ServiceKey, ipvs.Destination{Addr: netip.MustParseAddr("10.244.1.99"), Port: 8080, Weight: 1})); err != nil {
				t.Fatal(err)
			}
		}
		p := k.proxier(t, "")
		p.AdoptNodePorts = adopt
		res := p.SyncAll([]model.ServiceInput{input(api, apiSlice)})
		otherDump := "TCP  192.168.1.10:30999 wlc\n  -> 10.244.1.99:8080             Masq    1\n"
		nodePort := "TCP  192.168.1.10:30080 rr\n  -> 10.244.1.7:8080              Masq    1\n"
		if !adopt {
			nodePort = "TCP  192.168.1.10:30080 rr\n  -> 10.244.1.99:8080             Masq    1\n"
			if got := strings.Join(res.Problems[name("api")], "; "); !strings.Contains(got, "192.168.1.10:30080 is a virtual server ipvs-proxy did not create") {
				t.Errorf("without a migration: problems %q", got)
			}
		}
		want := ipvsHeader + "TCP  10.96.0.20:80 rr\n  -> 10.244.1.7:8080              Masq    1\n" + nodePort + otherDump +
			"link kube-ipvs0 dummy down\naddr 10.96.0.20/32\n" + sets("10.244.1.7") + guard("10.96.0.20,tcp:80")
		checkDump(t, k, want)
		if got := p.owned.Has(kubeProxys.ServiceKey); got != adopt {
			t.Errorf("adopt=%v: recorded %v", adopt, got)
		}
		p.AdoptNodePorts = false // the migration is over: the record carries it
		p.SyncAll([]model.ServiceInput{input(api, apiSlice)})
		checkDump(t, k, want)
	}
}

// Once the other tool's virtual server is gone, the Service's next sync
// takes the key: a key is not foreign for ever.
func TestForeignKeyFreedIsTaken(t *testing.T) {
	k := newKernel()
	nodeKey := key("192.168.1.10", 80)
	if err := k.ipvs.AddService(ipvs.Service{ServiceKey: nodeKey, Scheduler: "wlc"}); err != nil {
		t.Fatal(err)
	}
	ext := input(svc("ext", "10.96.0.70", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"192.168.1.10"} }), slice("ext", "10.244.1.70"))
	p := k.proxier(t, "")
	p.SyncAll(nil)
	p.SyncServices(changesOf(ext))
	if err := k.ipvs.DeleteService(nodeKey); err != nil {
		t.Fatal(err)
	}
	moved := model.ServiceInput{Service: ext.Service, Slices: model.Slices(slice("ext", "10.244.1.71"))}
	if res := p.SyncServices(changesOf(moved)); len(res.Problems[nameOf(ext)]) > 0 || len(res.Errors) > 0 {
		t.Errorf("problems %v, errors %v", res.Problems, res.Errors)
	}
	checkDump(t, k, ipvsHeader+"TCP  10.96.0.70:80 rr\n  -> 10.244.1.71:8080             Masq    1\n"+
		"TCP  192.168.1.10:80 rr\n  -> 10.244.1.71:8080             Masq    1\n"+
		"link kube-ipvs0 dummy down\naddr 10.96.0.70/32\n"+sets("10.244.1.71")+guard("10.96.0.70,tcp:80"))
}

// The no-local-endpoints gauge sums what the Services hold, in both kinds
// of sync.
func TestNoLocalEndpointsCount(t *testing.T) {
	k := newKernel()
	p := k.proxier(t, "")
	local := func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}
	remote := slice("a", "10.244.2.9")
	remote.Endpoints[0].NodeName = ptr.To("node-b")
	a := input(svc("a", "10.96.0.80", local), remote)
	p.SyncAll([]model.ServiceInput{a})
	if got := p.NoLocalEndpoints(); got != (model.NoLocalCounts{Internal: [2]int{1, 0}}) {
		t.Errorf("after the full sync: %+v", got)
	}
	gone := changesOf(a)
	gone[nameOf(a)] = nil
	p.SyncServices(gone)
	if got := p.NoLocalEndpoints(); got != (model.NoLocalCounts{}) {
		t.Errorf("after the Service went: %+v", got)
	}
}
