package proxier

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// adminVS is an operator's virtual server on 172.17.0.1, an address on no
// link of the node (a keepalived VIP its peer holds, or an AnyIP route).
const adminVS = "TCP  172.17.0.1:8080 wlc\n  -> 172.17.0.2:80                Masq    3\n"

func addAdminVS(t *testing.T, k kernel) {
	t.Helper()
	admin := ipvs.Service{ServiceKey: key("172.17.0.1", 8080), Scheduler: "wlc"}
	if err := errors.Join(k.ipvs.AddService(admin),
		k.ipvs.AddDestination(admin.ServiceKey, ipvs.Destination{Addr: netip.MustParseAddr("172.17.0.2"), Port: 80, Weight: 3})); err != nil {
		t.Fatal(err)
	}
}

// A Service that names, as an externalIP or a LoadBalancer IP, an address
// where another tool's virtual server is (on any port) does not get that
// address: were it put on kube-ipvs0, the other tool's virtual server
// would sit on an address of ipvs-proxy's and be taken for its own, then
// deleted by the next full sync or rewritten when the Service names its
// port. Whatever the kind of sync, a restart or a resync in steps, the
// kernel holds the Service's clusterIP and the other tool's virtual
// server, untouched, and the address is in no set.
func TestChosenAddressOfAnotherToolsVirtualServerIsRefused(t *testing.T) {
	externalIP := func(s *v1.Service) { s.Spec.ExternalIPs = []string{"172.17.0.1"} }
	lbIP := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30099
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "172.17.0.1"}}
	}
	steal := func(s *v1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "steal", Protocol: v1.ProtocolTCP, Port: 8080})
	}
	const (
		clusterIP = "TCP  10.96.0.99:80 rr\n  -> 10.244.1.9:8080              Masq    1\n"
		stolen    = "TCP  10.96.0.99:8080 rr\n"
		nodePort  = "TCP  192.168.1.10:30099 rr\n  -> 10.244.1.9:8080              Masq    1\n"
		link      = "link kube-ipvs0 dummy down\naddr 10.96.0.99/32\n"
		refused   = "http TCP 172.17.0.1:80: 172.17.0.1 holds a virtual server ipvs-proxy did not create; skipped"
		// The admin's own port: the key itself is foreign first. (The
		// slice has no port "steal", which the model reports first.)
		refusedSteal = `port "steal"/TCP matches no port of the Service's IPv4 EndpointSlices; it has no real servers; ` +
			refused + "; steal TCP 172.17.0.1:8080 is a virtual server ipvs-proxy did not create; skipped"
	)
	services := []struct {
		name     string
		mutate   []func(*v1.Service)
		kernel   string // the hostile Service's virtual servers
		guard    []string
		problems string
	}{
		{name: "externalIP", mutate: []func(*v1.Service){externalIP}, kernel: clusterIP + adminVS,
			guard: []string{"10.96.0.99,tcp:80"}, problems: refused},
		{name: "externalIP on the admin's port too", mutate: []func(*v1.Service){externalIP, steal}, kernel: clusterIP + stolen + adminVS,
			guard: []string{"10.96.0.99,tcp:80", "10.96.0.99"}, problems: refusedSteal},
		{name: "LoadBalancer IP", mutate: []func(*v1.Service){lbIP}, kernel: clusterIP + adminVS + nodePort,
			guard: []string{"10.96.0.99,tcp:80"}, problems: refused},
		{name: "LoadBalancer IP on the admin's port too", mutate: []func(*v1.Service){lbIP, steal}, kernel: clusterIP + stolen + adminVS + nodePort,
			guard: []string{"10.96.0.99,tcp:80", "10.96.0.99"}, problems: refusedSteal},
	}
	// syncs brings the hostile Service in and returns the last result
	// that reports on it.
	syncs := []struct {
		name string
		run  func(t *testing.T, k kernel, state string, hostile model.ServiceInput) Result
	}{
		{name: "full sync", run: func(t *testing.T, k kernel, state string, hostile model.ServiceInput) Result {
			return k.proxier(t, state).SyncAll([]model.ServiceInput{hostile})
		}},
		{name: "change, then full sync", run: func(t *testing.T, k kernel, state string, hostile model.ServiceInput) Result {
			p := k.proxier(t, state)
			p.SyncAll(nil)
			if res := p.SyncServices(changesOf(hostile)); len(res.Problems[nameOf(hostile)]) == 0 {
				t.Errorf("the change reported no problem")
			}
			return p.SyncAll([]model.ServiceInput{hostile})
		}},
		{name: "change, then resync in steps", run: func(t *testing.T, k kernel, state string, hostile model.ServiceInput) Result {
			p := k.proxier(t, state)
			p.SyncAll(nil)
			p.SyncServices(changesOf(hostile))
			return resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{hostile}), p.ReadKernel()), 1, nil)
		}},
		{name: "externalIP added to a running Service", run: func(t *testing.T, k kernel, state string, hostile model.ServiceInput) Result {
			p := k.proxier(t, state)
			p.SyncAll([]model.ServiceInput{input(svc("hostile", "10.96.0.99"), slice("hostile", "10.244.1.9"))})
			return p.SyncServices(changesOf(hostile))
		}},
		{name: "change, then restart", run: func(t *testing.T, k kernel, state string, hostile model.ServiceInput) Result {
			p := k.proxier(t, state)
			p.SyncAll(nil)
			p.SyncServices(changesOf(hostile))
			return k.proxier(t, state).SyncAll([]model.ServiceInput{hostile})
		}},
	}
	for _, s := range services {
		for _, sy := range syncs {
			t.Run(s.name+"/"+sy.name, func(t *testing.T) {
				k := newKernel()
				addAdminVS(t, k)
				hostile := input(svc("hostile", "10.96.0.99", s.mutate...), slice("hostile", "10.244.1.9"))
				res := sy.run(t, k, filepath.Join(t.TempDir(), "owned"), hostile)
				if len(res.Errors) > 0 {
					t.Errorf("errors: %v", res.Errors)
				}
				if got := strings.Join(res.Problems[nameOf(hostile)], "; "); got != s.problems {
					t.Errorf("problems = %q, want %q", got, s.problems)
				}
				checkDump(t, k, ipvsHeader+s.kernel+link+sets("10.244.1.9")+guard(s.guard...))
			})
		}
	}
}

// The rule is about addresses that are not ipvs-proxy's yet. Once the
// other tool's virtual server is gone, the next full sync gives the
// address to the Service; and on kube-ipvs0 (kube-proxy's VIPs, during a
// migration) every virtual server is ipvs-proxy's, as before.
func TestChosenAddressIsRefusedOnlyWhileAnotherToolsVirtualServerIsThere(t *testing.T) {
	hostile := input(svc("hostile", "10.96.0.99", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"172.17.0.1"} }),
		slice("hostile", "10.244.1.9"))
	const taken = ipvsHeader + "TCP  10.96.0.99:80 rr\n  -> 10.244.1.9:8080              Masq    1\n" +
		"TCP  172.17.0.1:80 rr\n  -> 10.244.1.9:8080              Masq    1\n" +
		"link kube-ipvs0 dummy down\naddr 10.96.0.99/32\naddr 172.17.0.1/32\n"
	cases := []struct {
		name string
		run  func(t *testing.T, k kernel, p *Proxier) Result
	}{
		{name: "gone, then full sync", run: func(t *testing.T, k kernel, p *Proxier) Result {
			addAdminVS(t, k)
			p.SyncAll([]model.ServiceInput{hostile})
			if err := k.ipvs.DeleteService(key("172.17.0.1", 8080)); err != nil {
				t.Fatal(err)
			}
			return p.SyncAll([]model.ServiceInput{hostile})
		}},
		{name: "gone, then resync in steps", run: func(t *testing.T, k kernel, p *Proxier) Result {
			addAdminVS(t, k)
			p.SyncAll(nil)
			p.SyncServices(changesOf(hostile))
			if err := k.ipvs.DeleteService(key("172.17.0.1", 8080)); err != nil {
				t.Fatal(err)
			}
			return resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{hostile}), p.ReadKernel()), 1, nil)
		}},
		{name: "kube-proxy's on kube-ipvs0", run: func(t *testing.T, k kernel, p *Proxier) Result {
			addAdminVS(t, k)
			if err := errors.Join(k.link.EnsureLink(), k.link.AddAddress(netip.MustParseAddr("172.17.0.1"))); err != nil {
				t.Fatal(err)
			}
			p.AdoptNodePorts = true
			return p.SyncAll([]model.ServiceInput{hostile})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel()
			res := tc.run(t, k, k.proxier(t, ""))
			if len(res.Errors) > 0 || len(res.Problems[nameOf(hostile)]) > 0 {
				t.Errorf("errors %v, problems %v", res.Errors, res.Problems)
			}
			checkDump(t, k, taken+withExternalVIP(sets("10.244.1.9"), "172.17.0.1")+
				guard("10.96.0.99,tcp:80", "172.17.0.1,tcp:80"))
		})
	}
}

// Another tool's virtual server made after the last full listing, on a
// port no Service names, is found when a Service names its address for the
// first time: the address stays off kube-ipvs0, and the next resync and a
// restart leave the other tool's virtual server as it is.
func TestChosenAddressOfAVirtualServerMadeSinceTheListingIsRefused(t *testing.T) {
	const (
		clusterIP = "TCP  10.96.0.99:80 rr\n  -> 10.244.1.9:8080              Masq    1\n"
		link      = "link kube-ipvs0 dummy down\naddr 10.96.0.99/32\n"
		refused   = "http TCP 172.17.0.1:80: 172.17.0.1 holds a virtual server ipvs-proxy did not create; skipped"
	)
	hostile := input(svc("hostile", "10.96.0.99", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"172.17.0.1"} }),
		slice("hostile", "10.244.1.9"))
	cases := []struct {
		name string
		run  func(t *testing.T, k kernel, p *Proxier) Result
	}{
		{name: "new Service", run: func(t *testing.T, k kernel, p *Proxier) Result {
			p.SyncAll(nil)
			addAdminVS(t, k)
			return p.SyncServices(changesOf(hostile))
		}},
		{name: "externalIP added to a running Service", run: func(t *testing.T, k kernel, p *Proxier) Result {
			p.SyncAll([]model.ServiceInput{input(svc("hostile", "10.96.0.99"), slice("hostile", "10.244.1.9"))})
			addAdminVS(t, k)
			return p.SyncServices(changesOf(hostile))
		}},
		{name: "then a resync in steps", run: func(t *testing.T, k kernel, p *Proxier) Result {
			p.SyncAll(nil)
			addAdminVS(t, k)
			p.SyncServices(changesOf(hostile))
			return resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{hostile}), p.ReadKernel()), 1, nil)
		}},
		{name: "then a restart", run: func(t *testing.T, k kernel, p *Proxier) Result {
			p.SyncAll(nil)
			addAdminVS(t, k)
			p.SyncServices(changesOf(hostile))
			return k.proxier(t, "").SyncAll([]model.ServiceInput{hostile})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel()
			res := tc.run(t, k, k.proxier(t, ""))
			if len(res.Errors) > 0 {
				t.Errorf("errors: %v", res.Errors)
			}
			if got := strings.Join(res.Problems[nameOf(hostile)], "; "); got != refused {
				t.Errorf("problems = %q, want %q", got, refused)
			}
			checkDump(t, k, ipvsHeader+clusterIP+adminVS+link+sets("10.244.1.9")+guard("10.96.0.99,tcp:80"))
		})
	}
}

// A Service that drops its externalIP while a resync reads the kernel
// leaves, in the snapshot, a virtual server of ours on an address that is
// off the link by the time the resync begins: it is not taken for another
// tool's, so the Service recreated (or another naming the address) gets
// the address at once, as a fresh start would give it.
func TestAddressDroppedDuringTheReadStaysOurs(t *testing.T) {
	ext := func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} }
	a := input(svc("a", "10.96.0.50", ext, created(100)), slice("a", "10.244.1.10"))
	again := input(svc("a", "10.96.0.51", ext, created(200)), slice("a", "10.244.1.10"))
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll([]model.ServiceInput{a})
	p.BeginRead()
	snap := p.ReadKernel()
	p.SyncServices(map[types.NamespacedName]*model.ServiceInput{nameOf(a): nil}) // deleted during the read
	resyncInSteps(t, p.BeginResync(PrepareInputs(nil), snap), 16, nil)
	res := p.SyncServices(changesOf(again))
	if len(res.Errors) > 0 || len(res.Problems[nameOf(again)]) > 0 {
		t.Errorf("recreated: errors %v, problems %v", res.Errors, res.Problems[nameOf(again)])
	}
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{again})
	checkDump(t, k, ref.dump(t))
}

// A virtual server of ours that fails to be deleted keeps its address on
// the link, so it stays ours: the next resync deletes both, and a Service
// that names the address later gets it. Before, the address went and the
// virtual server was left to no one, and the address taken for another
// tool's for good.
func TestFailedDeleteLeavesNoOrphan(t *testing.T) {
	ext := func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} }
	a := input(svc("a", "10.96.0.50", ext, created(100)), slice("a", "10.244.1.10"))
	dropped := input(svc("a", "10.96.0.50", created(100)), slice("a", "10.244.1.10"))
	b := input(svc("b", "10.96.0.51", ext, created(200)), slice("b", "10.244.1.11"))
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll([]model.ServiceInput{a})
	k.ipvs.FailOn = map[ipvs.ServiceKey]error{key("203.0.113.9", 80): errors.New("injected: busy")}
	if res := p.SyncServices(changesOf(dropped)); len(res.Failed) != 1 {
		t.Fatalf("the failed delete was not a's failure: %v", res.Failed)
	}
	k.ipvs.FailOn = nil
	p.SyncServices(changesOf(dropped)) // the retry
	p.BeginRead()
	resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{dropped}), p.ReadKernel()), 16, nil)
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{dropped})
	checkDump(t, k, ref.dump(t))
	res := p.SyncServices(changesOf(b))
	if len(res.Errors) > 0 || len(res.Problems[nameOf(b)]) > 0 {
		t.Errorf("b: errors %v, problems %v", res.Errors, res.Problems[nameOf(b)])
	}
	ref = newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{dropped, b})
	checkDump(t, k, ref.dump(t))
}

// Another tool's virtual server made after a resync's read is not the
// resync's to take, though its snapshot lacks it: at a key a Service
// wants (here its node port), and on an address a Service names (here an
// externalIP, found another tool's by a change synced during the read).
// Before, a key the snapshot lacked read as absent, so the resync added
// it ("exists" is success), gave it the Service's real servers and
// recorded it as ours; and the snapshot freed the address, which went on
// kube-ipvs0, where the next resync deleted the other tool's virtual
// server as one of ours no Service wanted.
func TestResyncDoesNotTakeWhatWasMadeAfterItsRead(t *testing.T) {
	const (
		clusterIP = "TCP  10.96.0.99:80 rr\n  -> 10.244.1.9:8080              Masq    1\n"
		otherNP   = "TCP  192.168.1.10:30099 wlc\n  -> 172.17.0.2:80                Masq    3\n"
	)
	for _, tc := range []struct {
		name   string
		mutate func(*v1.Service)
		other  func(t *testing.T, k kernel)
		// during: the Service comes while the resync reads, and a
		// change-by-change sync finds the other tool's address.
		during  bool
		kernel  string
		problem string
	}{
		{name: "node port", mutate: nodePort(30099), kernel: clusterIP + otherNP,
			other: func(t *testing.T, k kernel) {
				t.Helper()
				s := ipvs.Service{ServiceKey: key("192.168.1.10", 30099), Scheduler: "wlc"}
				if err := errors.Join(k.ipvs.AddService(s),
					k.ipvs.AddDestination(s.ServiceKey, ipvs.Destination{Addr: netip.MustParseAddr("172.17.0.2"), Port: 80, Weight: 3})); err != nil {
					t.Fatal(err)
				}
			},
			problem: "http TCP 192.168.1.10:30099 is a virtual server ipvs-proxy did not create; skipped"},
		{name: "externalIP", mutate: func(s *v1.Service) { s.Spec.ExternalIPs = []string{"172.17.0.1"} }, kernel: clusterIP + adminVS,
			other: addAdminVS, during: true,
			problem: "http TCP 172.17.0.1:80: 172.17.0.1 holds a virtual server ipvs-proxy did not create; skipped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostile := input(svc("h", "10.96.0.99", tc.mutate), slice("h", "10.244.1.9"))
			k := newKernel()
			p := k.proxier(t, filepath.Join(t.TempDir(), "owned"))
			p.SyncAll(nil)
			p.BeginRead()
			snap := p.ReadKernel()
			tc.other(t, k)
			var during Result
			if tc.during {
				during = p.SyncServices(changesOf(hostile))
			}
			// The first resync is of the snapshot read before the other
			// tool's write, the second of one read after it.
			for round := range 2 {
				if round == 1 {
					p.BeginRead()
					snap = p.ReadKernel()
				}
				res := resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{hostile}), snap), 1, nil)
				if round == 0 && tc.during {
					res = during // the resync leaves a Service synced since its read to that sync
				}
				if got := strings.Join(res.Problems[name("h")], "; "); got != tc.problem {
					t.Errorf("resync %d: problems %q, want %q", round+1, got, tc.problem)
				}
				if got := k.ipvs.Dump(); got != ipvsHeader+tc.kernel {
					t.Errorf("resync %d: IPVS\n%s\nwant\n%s", round+1, got, ipvsHeader+tc.kernel)
				}
				if l, _ := k.link.Dump(); l != "link kube-ipvs0 dummy down\naddr 10.96.0.99/32\n" {
					t.Errorf("resync %d: link\n%s", round+1, l)
				}
			}
		})
	}
}
