package proxier

import (
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"maps"
	"path/filepath"
)

// refusingSets refuses, as the kernel refuses a value it cannot hold,
// every add to the sets whose names start with prefix.
type refusingSets struct {
	ipset.Interface
	prefix string
}

func (r refusingSets) Add(set string, e ipset.Entry) error {
	if strings.HasPrefix(set, r.prefix) {
		return syscall.EINVAL
	}
	return r.Interface.Add(set, e)
}

func (r refusingSets) AddAll(set string, es []ipset.Entry) []error {
	if !strings.HasPrefix(set, r.prefix) {
		return r.Interface.AddAll(set, es)
	}
	errs := make([]error, len(es))
	for i := range errs {
		errs[i] = syscall.EINVAL
	}
	return errs
}

// A set member the kernel refuses is the failure of the Services that
// want it, whatever the sync: they are retried, and nothing else is. It
// is not the node's, which would make every sync a full one, nor the
// failure of another Service synced with it.
func TestRefusedMemberIsItsServices(t *testing.T) {
	lb := input(svc("lb", "10.96.0.60", nodePort(30060), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
	}), slice("lb", "10.244.1.5"))
	bystander := input(web, webSlice)
	world := []model.ServiceInput{lb, bystander}
	want := []types.NamespacedName{nameOf(lb)}
	check := func(t *testing.T, what string, res Result) {
		t.Helper()
		if res.NodeWide || !slices.Equal(res.Failed, want) || len(res.Errors) == 0 {
			t.Errorf("%s: node-wide %v, failed %v (want %v), errors %v", what, res.NodeWide, res.Failed, want, res.Errors)
		}
	}
	newProxier := func(t *testing.T) *Proxier {
		k := newKernel()
		owned, err := LoadOwned("")
		if err != nil {
			t.Fatal(err)
		}
		return New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, refusingSets{k.sets, "IPVS-PROXY-SOURCE-RANGES"}, owned)
	}
	t.Run("full sync", func(t *testing.T) {
		check(t, "full sync", newProxier(t).SyncAll(world))
	})
	t.Run("change", func(t *testing.T) {
		p := newProxier(t)
		p.SyncAll(nil)
		check(t, "change", p.SyncServices(changesOf(world...)))
	})
	t.Run("resync in steps", func(t *testing.T) {
		p := newProxier(t)
		p.SyncAll(nil)
		check(t, "resync", resyncInSteps(t, p.BeginResync(PrepareInputs(world), p.ReadKernel()), 1, nil))
	})
}

// switchableSets refuses adds to sets starting with prefix while *refuse.
type switchableSets struct {
	ipset.Interface
	prefix string
	refuse *bool
}

func (s switchableSets) Add(set string, e ipset.Entry) error {
	if *s.refuse && strings.HasPrefix(set, s.prefix) {
		return syscall.ENOSPC // a full set
	}
	return s.Interface.Add(set, e)
}

// An LB IP:port whose firewall member cannot be written does not serve
// without its ranges: its virtual server is left out (fail closed) until a
// retry writes the member, while the Service's clusterIP serves on.
func TestUnguardedLoadBalancerIsNotServed(t *testing.T) {
	lb := input(svc("lb", "10.96.0.60", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
	}), slice("lb", "10.244.1.5"))
	k := newKernel()
	refuse := true
	owned, err := LoadOwned("")
	if err != nil {
		t.Fatal(err)
	}
	p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, switchableSets{k.sets, "IPVS-PROXY-FIREWALL", &refuse}, owned)
	p.SyncAll(nil)
	const clusterIP = "TCP  10.96.0.60:80 rr\n  -> 10.244.1.5:8080              Masq    1\n"
	const lbVS = "TCP  203.0.113.9:80 rr\n  -> 10.244.1.5:8080              Masq    1\n"
	for i, want := range []string{ipvsHeader + clusterIP, ipvsHeader + clusterIP, ipvsHeader + clusterIP + lbVS} {
		if i == 2 {
			refuse = false // the set has room again
		}
		res := p.SyncServices(changesOf(lb)) // the change, then the daemon's retries
		if got := k.ipvs.Dump(); got != want {
			t.Errorf("sync %d: ipvs:\n%s\nwant:\n%s", i, got, want)
		}
		if failed := len(res.Failed) > 0; failed != refuse {
			t.Errorf("sync %d: failed %v, want failing %v", i, res.Failed, refuse)
		}
	}
}

// failThenRetry syncs changes while fail is in effect, expecting them to
// fail for the one Service named, then again after heal, expecting no
// error: the daemon's retry.
func failThenRetry(t *testing.T, p *Proxier, changes map[types.NamespacedName]*model.ServiceInput, failing string, fail, heal func()) {
	t.Helper()
	fail()
	if res := p.SyncServices(changes); !slices.Equal(res.Failed, []types.NamespacedName{name(failing)}) {
		t.Fatalf("while failing: failed %v, errors %v; want %s failed", res.Failed, res.Errors, failing)
	}
	heal()
	if res := p.SyncServices(changes); len(res.Errors) > 0 || len(res.Failed) > 0 {
		t.Fatalf("retry: errors %v, failed %v", res.Errors, res.Failed)
	}
}

// A VIP whose add failed is not on the link: the Service's retry adds it,
// a resync still knows its virtual server for the Service's, and deleting
// the Service takes both away. Before, the failed add counted as written:
// the retry wrote nothing, and the virtual server, neither on the link
// nor in the ownership record, read as another tool's and stayed forever.
func TestFailedAddressIsWrittenAgain(t *testing.T) {
	ext := input(svc("ext", "10.96.0.70", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} }), slice("ext", "10.244.1.5"))
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{ext})
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll(nil)
	empty := k.dump(t)
	addr := netip.MustParseAddr("203.0.113.9")
	failThenRetry(t, p, changesOf(ext), "ext",
		func() { k.link.FailOn[addr] = syscall.EPERM }, func() { delete(k.link.FailOn, addr) })
	checkDump(t, k, ref.dump(t))
	res := resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{ext}), p.ReadKernel()), 1, nil)
	if len(res.Errors) > 0 || len(res.Problems[name("ext")]) > 0 {
		t.Fatalf("resync: errors %v, problems %v", res.Errors, res.Problems)
	}
	checkDump(t, k, ref.dump(t))
	p.SyncServices(map[types.NamespacedName]*model.ServiceInput{name("ext"): nil})
	checkDump(t, k, empty)
}

// A VIP whose delete failed is still on the link: the retry of the
// Service that let it go deletes it.
func TestFailedAddressDeleteIsWrittenAgain(t *testing.T) {
	ext := input(svc("ext", "10.96.0.70", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} }), slice("ext", "10.244.1.5"))
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll(nil)
	empty := k.dump(t)
	p.SyncServices(changesOf(ext))
	addr := netip.MustParseAddr("203.0.113.9")
	failThenRetry(t, p, map[types.NamespacedName]*model.ServiceInput{name("ext"): nil}, "ext",
		func() { k.link.FailOn[addr] = syscall.EBUSY }, func() { delete(k.link.FailOn, addr) })
	checkDump(t, k, empty)
}

// A source range a Service let go whose member's delete failed is deleted
// by the Service's retry: it must not admit the range until the next
// resync. Before, the retry re-added only what the Service still held.
func TestFailedMemberDeleteIsWrittenAgain(t *testing.T) {
	lb := func(ranges ...string) model.ServiceInput {
		return input(svc("lb", "10.96.0.60", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerSourceRanges = ranges
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
		}), slice("lb", "10.244.1.5"))
	}
	narrowed := lb("192.0.2.0/24")
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{narrowed})
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll([]model.ServiceInput{lb("192.0.2.0/24", "198.51.100.0/24")})
	const set = "IPVS-PROXY-SOURCE-RANGES"
	failThenRetry(t, p, changesOf(narrowed), "lb",
		func() { k.sets.FailOn[set] = syscall.EIO }, func() { delete(k.sets.FailOn, set) })
	checkDump(t, k, ref.dump(t))
}

// A node port whose delete failed in a full sync stays in the ownership
// record: the next full sync deletes it, and the Service can have it back.
// Before, the record was rebuilt from what the Services want after the
// addresses' writes, whatever the virtual servers' writes did, and the
// virtual server was left as another tool's.
func TestFailedDeleteInFullSyncStaysRecorded(t *testing.T) {
	api := input(svc("api", "10.96.0.80", nodePort(30080)), slice("api", "10.244.1.5"))
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{api})
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll([]model.ServiceInput{api})
	empty := newKernel()
	empty.proxier(t, "").SyncAll(nil)
	key := ipvs.ServiceKey{Proto: ipvs.TCP, Addr: netip.MustParseAddr("192.168.1.10"), Port: 30080}
	k.ipvs.FailOn = map[ipvs.ServiceKey]error{key: syscall.EIO}
	if res := p.SyncAll(nil); len(res.Errors) == 0 {
		t.Fatal("the full sync without api reported no error")
	}
	delete(k.ipvs.FailOn, key)
	if res := p.SyncAll(nil); len(res.Errors) > 0 {
		t.Fatalf("second full sync: %v", res.Errors)
	}
	checkDump(t, k, empty.dump(t))
	if res := p.SyncAll([]model.ServiceInput{api}); len(res.Errors) > 0 || len(res.Problems[name("api")]) > 0 {
		t.Fatalf("api back: errors %v, problems %v", res.Errors, res.Problems)
	}
	checkDump(t, k, ref.dump(t))
}

// An LB IP:port whose virtual server could not be deleted stays guarded:
// its firewall member (and the VIP's, while the address stays on the link
// with it) is not taken away before the virtual server, which would admit
// every source until the resync. The resync that deletes the virtual
// server then drops them. Before, the members went first, whatever the
// delete did.
func TestFailedDeleteStaysGuarded(t *testing.T) {
	lb := rangedLB
	dropped := lb()
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll([]model.ServiceInput{lb("203.0.113.9")})
	k.ipvs.FailOn = map[ipvs.ServiceKey]error{key("203.0.113.9", 80): syscall.EBUSY}
	if res := p.SyncServices(changesOf(dropped)); !slices.Equal(res.Failed, []types.NamespacedName{name("lb")}) {
		t.Fatalf("failed delete: failed %v, errors %v; want lb failed", res.Failed, res.Errors)
	}
	sets, err := k.sets.Dump()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"set IPVS-PROXY-FIREWALL hash:ip,port family inet\n  203.0.113.9,tcp:80\n",
		"set IPVS-PROXY-VIPS hash:ip family inet\n  10.96.0.60\n  203.0.113.9\n",
	} {
		if !strings.Contains(sets, want) {
			t.Errorf("after the failed delete, the sets lack\n%s\nsets:\n%s", want, sets)
		}
	}
	k.ipvs.FailOn = nil
	p.SyncServices(changesOf(dropped)) // the Service's retry: the virtual server is still there
	if sets, _ := k.sets.Dump(); !strings.Contains(sets, "203.0.113.9,tcp:80\n") {
		t.Errorf("the retry dropped the firewall member of a virtual server still there:\n%s", sets)
	}
	p.BeginRead()
	resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{dropped}), p.ReadKernel()), 16, nil)
	p.SyncServices(changesOf(dropped)) // a later change: the virtual server is gone now
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{dropped})
	checkDump(t, k, ref.dump(t))
}

// Whatever the sync, a VIP that could not be taken off the link keeps its
// member of IPVS-PROXY-VIPS, so its other ports stay refused, until the
// address is gone. Before, a full sync and a resync deleted the member
// before the address, and kept nothing when the address's delete failed.
func TestVIPMemberOutlivesItsAddress(t *testing.T) {
	ext := input(svc("ext", "10.96.0.70", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} }), slice("ext", "10.244.1.5"))
	addr := netip.MustParseAddr("203.0.113.9")
	for _, tc := range []struct {
		name string
		sync func(p *Proxier) Result // without ext
	}{
		{name: "full sync", sync: func(p *Proxier) Result { return p.SyncAll(nil) }},
		{name: "resync", sync: func(p *Proxier) Result {
			p.BeginRead()
			return resyncInSteps(t, p.BeginResync(PrepareInputs(nil), p.ReadKernel()), 16, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel()
			p := k.proxier(t, "")
			p.SyncAll(nil)
			empty := k.dump(t)
			p.SyncServices(changesOf(ext))
			k.link.FailOn[addr] = syscall.EBUSY
			if res := tc.sync(p); len(res.Errors) == 0 {
				t.Fatal("the sync without ext reported no error")
			}
			sets, err := k.sets.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sets, "set IPVS-PROXY-VIPS hash:ip family inet\n  203.0.113.9\n") {
				t.Errorf("the address is still on the link, but not in IPVS-PROXY-VIPS:\n%s", sets)
			}
			delete(k.link.FailOn, addr)
			tc.sync(p)
			checkDump(t, k, empty)
		})
	}
}

// A deny-list member a Service no longer wants goes, whatever the sync,
// when its virtual server stays because the Service still has it: the
// Service dropped its source ranges (the firewall member), or got a local
// endpoint under externalTrafficPolicy Local (the no-local-endpoints
// members). Kept, the firewall member dropped every client of the LB
// IP:port, the other every new connection, until the Service was gone.
func TestDenialsNoServiceWantsGo(t *testing.T) {
	lb := func(ranges []string, local bool, node string) model.ServiceInput {
		s := svc("lb", "10.96.0.60", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30060
			s.Spec.LoadBalancerSourceRanges = ranges
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
			if local {
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
				s.Spec.HealthCheckNodePort = 32060
			}
		})
		return input(s, testobj.Slice("ns", "lb-1", "lb", discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On(node, "10.244.1.5")...))
	}
	syncs := map[string]func(k kernel, p *Proxier, state string, in model.ServiceInput) Result{
		"change": func(_ kernel, p *Proxier, _ string, in model.ServiceInput) Result {
			return p.SyncServices(changesOf(in))
		},
		"full sync": func(_ kernel, p *Proxier, _ string, in model.ServiceInput) Result {
			return p.SyncAll([]model.ServiceInput{in})
		},
		"resync": func(_ kernel, p *Proxier, _ string, in model.ServiceInput) Result {
			p.BeginRead()
			return resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{in}), p.ReadKernel()), 16, nil)
		},
		"restart": func(k kernel, _ *Proxier, state string, in model.ServiceInput) Result {
			return k.proxier(t, state).SyncAll([]model.ServiceInput{in})
		},
	}
	for _, tc := range []struct {
		name          string
		before, after model.ServiceInput
	}{
		{"ranges dropped", lb([]string{"192.0.2.0/24"}, false, "node-a"), lb(nil, false, "node-a")},
		{"a local endpoint comes", lb(nil, true, "node-b"), lb(nil, true, "node-a")},
	} {
		for _, kind := range slices.Sorted(maps.Keys(syncs)) {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				ref := newKernel()
				ref.proxier(t, "").SyncAll([]model.ServiceInput{tc.after})
				k := newKernel()
				state := filepath.Join(t.TempDir(), "owned")
				p := k.proxier(t, state)
				p.SyncAll([]model.ServiceInput{tc.before})
				if res := syncs[kind](k, p, state, tc.after); len(res.Errors) > 0 {
					t.Fatal(res.Errors)
				}
				checkDump(t, k, ref.dump(t))
			})
		}
	}
}

// A deny-list member kept for a virtual server whose delete failed costs
// the change-by-change syncs nothing: they read the kernel exactly as
// without it, and the resync, which deletes the virtual server, drops it
// in its last step.
func TestKeptDenialCostsChangesNoRead(t *testing.T) {
	lb := input(svc("lb", "10.96.0.60", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30060
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
	}), slice("lb", "10.244.1.5"))
	readsPerChange := func(t *testing.T, stuck bool) int {
		k := newKernel()
		r := &reads{Fake: k.ipvs}
		owned, err := LoadOwned("")
		if err != nil {
			t.Fatal(err)
		}
		p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, r, k.link, k.sets, owned)
		p.SyncAll([]model.ServiceInput{lb, input(web, webSlice)})
		if stuck {
			k.ipvs.FailOn = map[ipvs.ServiceKey]error{key("203.0.113.9", 80): syscall.EBUSY}
			p.SyncServices(map[types.NamespacedName]*model.ServiceInput{name("lb"): nil})
			k.ipvs.FailOn = nil
			if len(p.undeleted.denials) == 0 {
				t.Fatal("no denial kept for the virtual server whose delete failed")
			}
		}
		r.gets = 0
		for i := range 20 {
			addrs := []string{"10.244.1.2", "10.244.1.3"}
			if i%2 == 0 {
				addrs = addrs[:1]
			}
			p.SyncServices(changesOf(input(web, slice("web", addrs...))))
		}
		return r.gets
	}
	if without, with := readsPerChange(t, false), readsPerChange(t, true); with != without {
		t.Errorf("20 changes read %d virtual servers with a kept denial, %d without", with, without)
	}
}

// TestFailedAddressInFullSyncIsWrittenAgain is TestFailedAddressIsWrittenAgain
// for a full sync, which writes the virtual servers before the addresses:
// those on an address whose add failed are recorded, and the Service's
// retry puts the address on.
func TestFailedAddressInFullSyncIsWrittenAgain(t *testing.T) {
	ext := input(svc("ext", "10.96.0.70", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} }), slice("ext", "10.244.1.5"))
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{ext})
	k := newKernel()
	p := k.proxier(t, "")
	addr := netip.MustParseAddr("203.0.113.9")
	k.link.FailOn[addr] = syscall.EPERM
	if res := p.SyncAll([]model.ServiceInput{ext}); !slices.Equal(res.Failed, []types.NamespacedName{name("ext")}) {
		t.Fatalf("full sync: failed %v, errors %v; want ext failed", res.Failed, res.Errors)
	}
	delete(k.link.FailOn, addr)
	if res := p.SyncServices(changesOf(ext)); len(res.Errors) > 0 || len(res.Problems[name("ext")]) > 0 {
		t.Fatalf("retry: errors %v, problems %v", res.Errors, res.Problems)
	}
	checkDump(t, k, ref.dump(t))
}

// A Service in another namespace that takes an LB IP:port (its externalIP,
// once the LoadBalancer Service lets the address go) does not take the LB
// Service's firewall member away while the virtual server still holds the
// LB Service's real servers: the write that hands it over failed. The
// member goes once the handover is written.
func TestFailedHandoverStaysGuarded(t *testing.T) {
	lb := rangedLB
	other := model.ServiceInput{
		Service: model.ServiceFrom(testobj.Service("other", "ext", []string{"10.96.0.61"}, func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"203.0.113.9"}
		})),
		Slices: model.Slices(testobj.Slice("other", "ext-1", "ext", discovery.AddressTypeIPv4, testobj.HTTP(8080),
			testobj.On("node-a", "10.244.9.9")...)),
	}
	ref := newKernel()
	ref.proxier(t, "").SyncAll([]model.ServiceInput{lb(), other})
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll([]model.ServiceInput{lb("203.0.113.9"), other})
	k.ipvs.FailOn = map[ipvs.ServiceKey]error{key("203.0.113.9", 80): syscall.EBUSY}
	p.SyncServices(changesOf(lb()))
	if sets, _ := k.sets.Dump(); !strings.Contains(sets, "set IPVS-PROXY-FIREWALL hash:ip,port family inet\n  203.0.113.9,tcp:80\n") {
		t.Errorf("the handover failed, but the firewall member is gone:\n%s\n%s", k.ipvs.Dump(), sets)
	}
	k.ipvs.FailOn = nil
	p.SyncServices(map[types.NamespacedName]*model.ServiceInput{name("lb"): ptrTo(lb()), nameOf(other): &other}) // the retries
	checkDump(t, k, ref.dump(t))
}

// rangedLB is ns/lb, a LoadBalancer Service admitting 192.0.2.0/24 only,
// with the given ingress IPs.
func rangedLB(ingress ...string) model.ServiceInput {
	return input(svc("lb", "10.96.0.60", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30060
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
		for _, ip := range ingress {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
	}), slice("lb", "10.244.1.5"))
}
