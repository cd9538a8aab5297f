package proxier

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
)

// resyncInSteps runs r to its end, chunk Services (or chunk virtual
// servers or set members looked at for being stale) a step and each step
// with a zero budget (so one unit of work), calling between(i) before
// step i (from 0), and returns the steps' results merged. It fails when
// the resync does not end.
func resyncInSteps(t *testing.T, r *Resync, chunk int, between func(step int)) Result {
	t.Helper()
	r.chunk, r.scan = chunk, chunk
	res := Result{Problems: map[types.NamespacedName][]string{}}
	for step := 0; ; step++ {
		if step > 10000 {
			t.Fatal("the resync does not end")
		}
		if between != nil {
			between(step)
		}
		done, part := r.Step(0)
		res.merge(part)
		if done {
			return res
		}
	}
}

// TestResyncInStepsEndsAsInOneGo: whatever drifted in the kernel or in the
// inputs (changed or gone without an event), a resync in steps leaves the
// kernel, the ownership record and the write count as one full sync does,
// with a Service a step (so an address two Services want is settled across
// steps) or many.
func TestResyncInStepsEndsAsInOneGo(t *testing.T) {
	shared := func(ip string) func(*v1.Service) {
		return func(s *v1.Service) { s.Spec.ExternalIPs = []string{ip} }
	}
	// a-old holds 203.0.113.9:80, which z-young wants too; a-old comes
	// first in name order, so its step settles the address before z-young's.
	aOld := input(svc("a-old", "10.96.0.50", shared("203.0.113.9"), created(100)), slice("a-old", "10.244.1.10"))
	zYoung := input(svc("z-young", "10.96.0.51", shared("203.0.113.9"), created(200)), slice("z-young", "10.244.1.11"))
	world := []model.ServiceInput{input(web, webSlice), input(api, apiSlice), aOld, zYoung}
	without := func(n string) []model.ServiceInput {
		return slices.DeleteFunc(slices.Clone(world), func(in model.ServiceInput) bool { return in.Service.Name == n })
	}
	key := func(ap string) ipvs.ServiceKey {
		a := netip.MustParseAddrPort(ap)
		return ipvs.ServiceKey{Addr: a.Addr(), Proto: ipvs.TCP, Port: a.Port()}
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		drift func(t *testing.T, k kernel, p *Proxier)
		after []model.ServiceInput // the inputs of the resync; nil: world
		// handOff: the steps hand an address to a Service that loses it
		// to a later one, so they write more than one full sync does
		// (only with inputs that changed without an event).
		handOff bool
	}{
		{name: "nothing drifted"},
		{name: "a real server gone", drift: func(t *testing.T, k kernel, _ *Proxier) {
			must(t, k.ipvs.DeleteDestination(key("10.96.0.10:80"), ipvs.Destination{Addr: netip.MustParseAddr("10.244.1.2"), Port: 8080}))
		}},
		{name: "a virtual server gone", drift: func(t *testing.T, k kernel, _ *Proxier) {
			must(t, k.ipvs.DeleteService(key("203.0.113.9:80")))
		}},
		{name: "a stale virtual server on the link", drift: func(t *testing.T, k kernel, _ *Proxier) {
			must(t, k.ipvs.AddService(ipvs.Service{ServiceKey: key("10.96.0.10:443"), Scheduler: "rr"}))
		}},
		{name: "a VIP gone, a stale one there", drift: func(t *testing.T, k kernel, _ *Proxier) {
			must(t, k.link.DeleteAddress(netip.MustParseAddr("10.96.0.20")))
			must(t, k.link.AddAddress(netip.MustParseAddr("10.96.0.99")))
		}},
		{name: "a set member gone, a stale one there", drift: func(t *testing.T, k kernel, _ *Proxier) {
			must(t, k.sets.Del("IPVS-PROXY-HAIRPIN", ipset.Entry{IP: netip.MustParseAddr("10.244.1.2"), Proto: "tcp", Port: 8080, IP2: netip.MustParseAddr("10.244.1.2")}))
			must(t, k.sets.Add("IPVS-PROXY-VIPS", ipset.Entry{IP: netip.MustParseAddr("10.96.0.98")}))
		}},
		{name: "a stale ownership record", drift: func(t *testing.T, _ kernel, p *Proxier) {
			rec := p.owned.Map()
			rec[key("192.168.1.10:31000")] = true
			must(t, p.owned.Set(rec))
		}},
		{name: "another tool's virtual server at a node port", drift: func(t *testing.T, _ kernel, p *Proxier) {
			rec := p.owned.Map()
			delete(rec, key("192.168.1.10:30080"))
			must(t, p.owned.Set(rec))
		}},
		{name: "a new node address", drift: func(_ *testing.T, k kernel, _ *Proxier) {
			k.link.SetHostAddresses([]netif.HostAddress{
				{Link: "eth0", Addr: netip.MustParseAddr("192.168.1.10")},
				{Link: "eth1", Addr: netip.MustParseAddr("192.168.1.11")},
			})
		}},
		{name: "a Service gone without an event", after: without("web")},
		{name: "the holder of a shared address gone without an event", after: without("a-old")},
		{name: "the holder of a shared address changed without an event", after: append(without("a-old"),
			input(svc("a-old", "10.96.0.50", created(100)), slice("a-old", "10.244.1.10")))},
		// a-old's step gives the address to z-young, m-oldest's takes it:
		// the second diff must see the first one's writes.
		{name: "the holder of a shared address changed and an older one new, without events", after: append(without("a-old"),
			input(svc("a-old", "10.96.0.50", created(100)), slice("a-old", "10.244.1.10")),
			input(svc("m-oldest", "10.96.0.52", shared("203.0.113.9"), created(50)), slice("m-oldest", "10.244.1.12"))), handOff: true},
		{name: "a Service new without an event", after: append(slices.Clone(world),
			input(svc("m-new", "10.96.0.60"), slice("m-new", "10.244.1.12")))},
	}
	for _, tc := range cases {
		after := tc.after
		if after == nil {
			after = world
		}
		node := func(t *testing.T) (kernel, *Proxier) {
			k := newKernel()
			p := k.proxier(t, "")
			if res := p.SyncAll(world); len(res.Errors) > 0 {
				t.Fatal(res.Errors)
			}
			if tc.drift != nil {
				tc.drift(t, k, p)
			}
			return k, p
		}
		k, p := node(t)
		want := p.SyncAll(after)
		for _, chunk := range []int{1, resyncChunk} {
			t.Run(fmt.Sprintf("%s, %d a step", tc.name, chunk), func(t *testing.T) {
				l, q := node(t)
				q.BeginRead()
				got := resyncInSteps(t, q.BeginResync(PrepareInputs(after), q.ReadKernel()), chunk, nil)
				if len(want.Errors)+len(got.Errors) > 0 {
					t.Fatalf("errors: in one go %v, in steps %v", want.Errors, got.Errors)
				}
				checkDump(t, l, k.dump(t))
				if diff := cmp.Diff(fmt.Sprint(p.owned.Keys()), fmt.Sprint(q.owned.Keys())); diff != "" {
					t.Errorf("ownership record (-in one go +in steps):\n%s", diff)
				}
				if got.Counts != want.Counts && !(tc.handOff && chunk == 1) {
					t.Errorf("writes in steps %+v, in one go %+v", got.Counts, want.Counts)
				}
				if res := q.SyncAll(after); res.Counts.Writes() != 0 {
					t.Errorf("a full sync after the steps wrote %+v", res.Counts)
				}
			})
		}
	}
}

// slowIPVS advances a fake clock by perOp for each write, as the kernel
// takes time for each.
type slowIPVS struct {
	*ipvs.Fake
	clk   *testingclock.FakeClock
	perOp time.Duration
}

func (s slowIPVS) Write(ops []ipvs.Op) []error {
	s.clk.Step(time.Duration(len(ops)) * s.perOp)
	return s.Fake.Write(ops)
}

// TestResyncStepIsBounded: a step stops at the first chunk of Services
// (or whole-node part) that ends past its budget, and a chunk is sized to
// fit the budget by the last one's time per Service (one Service at
// first, 16 at most), so a step takes about its budget and a change
// synced between steps waits for about that. Here each Service costs 11
// kernel writes of 1 ms on a fake clock. A budget of 0 is one chunk of 16
// a step.
func TestResyncStepIsBounded(t *testing.T) {
	for _, tc := range []struct {
		budget time.Duration
		// want is the Services each step synced; the last step also does
		// the whole-node parts, which cost no time here.
		want string
	}{
		{budget: 0, want: "16 16 16 16 16 16 4 0 0 0 0"},
		{budget: 100 * time.Millisecond, want: "10 18 18 18 18 18 0"}, // 1 + 9, then 9 + 9: 11 ms a Service
		{budget: 200 * time.Millisecond, want: "33 32 32 3"},          // 1 + 16 + 16, then 16 + 16
		{budget: time.Second, want: "97 3"},
	} {
		t.Run(tc.budget.String(), func(t *testing.T) {
			k := newBenchKernel()
			clk := testingclock.NewFakeClock(time.Unix(0, 0))
			owned, _ := LoadOwned("")
			p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, slowIPVS{k.ipvs, clk, time.Millisecond}, k.link, k.sets, owned)
			p.Clock = clk
			p.SyncAll(nil)
			r := p.BeginResync(PrepareInputs(benchWorld(100)), p.ReadKernel())
			var got []string
			for done := false; !done; {
				var res Result
				done, res = r.Step(tc.budget)
				if len(res.Errors) > 0 {
					t.Fatal(res.Errors)
				}
				got = append(got, fmt.Sprint(len(res.Synced)))
			}
			if diff := cmp.Diff(tc.want, strings.Join(got, " ")); diff != "" {
				t.Errorf("Services a step (-want +got):\n%s", diff)
			}
		})
	}
}
