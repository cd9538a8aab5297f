package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient/kubeclienttest"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

type nopMetrics struct{}

func (nopMetrics) ObserveSync(time.Duration, bool, reconcile.Counts, int) {}
func (nopMetrics) ObserveNetworkProgramming(time.Duration)                {}
func (nopMetrics) ServiceChanged()                                        {}
func (nopMetrics) EndpointsChanged()                                      {}
func (nopMetrics) SetPending(int, int)                                    {}
func (nopMetrics) ServiceSkipped(string)                                  {}
func (nopMetrics) SetNoLocalEndpoints([2]int, [2]int)                     {}
func (nopMetrics) SetServicesFailing(int)                                 {}
func (nopMetrics) SetLastQueuedTimestamp(time.Time)                       {}
func (nopMetrics) ObserveRuleSync(string, bool)                           {}
func (nopMetrics) ObserveConntrack(string, time.Duration, int)            {}
func (nopMetrics) ObserveSyncCPU(time.Duration, bool, time.Duration)      {}

type health struct {
	mu       sync.Mutex
	updated  int
	eligible bool
}

func (h *health) QueuedUpdate() {}
func (h *health) Updated()      { h.mu.Lock(); h.updated++; h.mu.Unlock() }
func (h *health) SetNodeEligible(ok bool, _ string) {
	h.mu.Lock()
	h.eligible = ok
	h.mu.Unlock()
}

func TestRunProgramsTheKernelFromInformers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		service("web", "10.96.0.10"),
		endpointSlice("web", "10.244.1.2"),
	)
	kipvs, link := ipvs.NewFake(), netif.NewFake("kube-ipvs0")
	link.SetHostAddresses([]netif.HostAddress{{Link: "eth0", Addr: netip.MustParseAddr("192.168.1.10")}})
	owned, _ := proxier.LoadOwned("")
	recorder := record.NewFakeRecorder(10)
	h := &health{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Client: kubeclienttest.Clientset{Interface: client}, NodeName: "node-a",
			Proxier:    proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, kipvs, link, ipset.NewFake(), owned),
			SyncPeriod: time.Minute, MinSyncPeriod: 10 * time.Millisecond,
			Health: h, Metrics: nopMetrics{}, Recorder: recorder, Clock: clock.RealClock{},
		})
	}()
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")

	// One more endpoint arrives through the API.
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, endpointSlice("web", "10.244.1.2", "10.244.1.3"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.1.3:8080              Masq    1\n")

	// A Service with a bad endpoint is programmed without it, with an Event.
	if _, err := client.CoreV1().Services("ns").Create(ctx, service("bad", "10.96.0.11"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, endpointSlice("bad", "10.244.1.9", "not-an-ip"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.1.3:8080              Masq    1\n"+
		"TCP  10.96.0.11:80 rr\n  -> 10.244.1.9:8080              Masq    1\n")
	select {
	case ev := <-recorder.Events:
		if want := `Warning IPVSProxySkipped EndpointSlice ns/bad-1: endpoint address "not-an-ip" is not a valid IPv4 address; skipped`; ev != want {
			t.Errorf("event = %q, want %q", ev, want)
		}
	case <-time.After(5 * time.Second):
		t.Error("no Event for the bad Service")
	}

	// Deleting the Service removes its virtual server and VIP.
	if err := client.CoreV1().Services("ns").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, kipvs, header+"TCP  10.96.0.11:80 rr\n  -> 10.244.1.9:8080              Masq    1\n")
	if got, _ := link.Dump(); got != "link kube-ipvs0 dummy down\naddr 10.96.0.11/32\n" {
		t.Errorf("link dump:\n%s", got)
	}
	h.mu.Lock()
	if !h.eligible || h.updated == 0 {
		t.Errorf("health: eligible=%v updated=%d, want eligible and updated", h.eligible, h.updated)
	}
	h.mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func waitFor(t *testing.T, k *ipvs.Fake, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := k.Dump()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel never reached the wanted state (-want +got):\n%s", cmp.Diff(want, got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func service(name, ip string) *v1.Service { return testobj.Service("ns", name, []string{ip}) }

func endpointSlice(svc string, addrs ...string) *discovery.EndpointSlice {
	return testobj.Slice("ns", svc+"-1", svc, discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On("", addrs...)...)
}

// rulesFirst is an IPVS fake that records whether the masquerade rules
// were in place when the first virtual server was added.
type rulesFirst struct {
	*ipvs.Fake
	rules       *iptables.Fake
	checked     bool
	rulesBefore bool
}

func (r *rulesFirst) AddService(s ipvs.Service) error {
	if !r.checked {
		r.checked = true
		dump, _ := r.rules.Dump()
		r.rulesBefore = strings.Contains(dump, "MASQUERADE")
	}
	return r.Fake.AddService(s)
}

func (r *rulesFirst) Write(ops []ipvs.Op) []error { return ipvs.WriteEach(r, ops) }

// TestRulesBeforeVirtualServers: NAT is decided by a connection's first
// packet, so a VIP that answers before the masquerade rules exist would
// leave its first connections unmasqueraded for good (the VM showed it).
func TestRulesBeforeVirtualServers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, service("web", "10.96.0.10"), endpointSlice("web", "10.244.1.2"))
	ipt := iptables.NewFake(iptables.IPv4)
	kipvs := &rulesFirst{Fake: ipvs.NewFake(), rules: ipt}
	link := netif.NewFake("kube-ipvs0")
	owned, _ := proxier.LoadOwned("")
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Client: kubeclienttest.Clientset{Interface: client}, NodeName: "node-a",
			Proxier:    proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, kipvs, link, ipset.NewFake(), owned),
			Rules:      []RuleSync{{IPTables: ipt, Rules: iptables.Desired(iptables.Config{}, iptables.IPv4)}},
			SyncPeriod: time.Minute, MinSyncPeriod: 10 * time.Millisecond,
			Health: &health{}, Metrics: nopMetrics{}, Clock: clock.RealClock{},
		})
	}()
	waitFor(t, kipvs.Fake, "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"+
		"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")
	cancel()
	<-done
	if !kipvs.rulesBefore {
		t.Error("the first virtual server was added before the masquerade rules existed")
	}
}

// blockingRules is iptables whose every Sync after the first waits until
// released.
type blockingRules struct {
	iptables.Interface
	calls   atomic.Int32
	release chan struct{}
}

func (b *blockingRules) Sync(rs iptables.RuleSet) (int, error) {
	if b.calls.Add(1) > 1 {
		<-b.release
	}
	return b.Interface.Sync(rs)
}

// TestRuleCheckDoesNotHoldUpChanges: the periodic rule check runs apart
// from the sync loop, so an iptables that hangs (a held xtables lock, a
// slow node) delays no endpoint change.
func TestRuleCheckDoesNotHoldUpChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, service("web", "10.96.0.10"), endpointSlice("web", "10.244.1.2"))
	rules := &blockingRules{Interface: iptables.NewFake(iptables.IPv4), release: make(chan struct{})}
	defer close(rules.release)
	kipvs := ipvs.NewFake()
	done := runFast(ctx, client, kipvs, []RuleSync{{IPTables: rules, Rules: iptables.Desired(iptables.Config{}, iptables.IPv4)}})
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")
	waitCount(t, &rules.calls, 2, "a second rule check")
	// The rule check now hangs; an endpoint change must still land.
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, endpointSlice("web", "10.244.1.2", "10.244.1.3"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.1.3:8080              Masq    1\n")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// blockingList is an IPVS table whose every List after the first waits
// until released.
type blockingList struct {
	*ipvs.Fake
	calls   atomic.Int32
	release chan struct{}
}

func (b *blockingList) List() ([]ipvs.VirtualServer, error) {
	if b.calls.Add(1) > 1 {
		<-b.release
	}
	return b.Fake.List()
}

func (b *blockingList) Write(ops []ipvs.Op) []error { return ipvs.WriteEach(b, ops) }

// TestResyncReadDoesNotHoldUpChanges: the periodic resync reads the kernel
// apart from the sync loop (seconds, at scale), so an endpoint change
// lands while the read hangs, and the resync of that older read does not
// undo it.
func TestResyncReadDoesNotHoldUpChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, service("web", "10.96.0.10"), endpointSlice("web", "10.244.1.2"))
	kipvs := &blockingList{Fake: ipvs.NewFake(), release: make(chan struct{})}
	gc := recordGCPercent(t, 40)
	rt := &fakeGC{live: 1 << 20, now: 1 << 20} // the heap within the lean goal
	useFakeGC(t, rt)
	done := runFast(ctx, client, kipvs, nil)
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	waitFor(t, kipvs.Fake, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")
	waitCount(t, &kipvs.calls, 2, "a resync read")
	if got := gc.current(); got != resyncGCPercent {
		t.Errorf("during a resync's read the collector's target is %d, want %d", got, resyncGCPercent)
	}
	// The read hangs; the change must land, and stay after the resync.
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, endpointSlice("web", "10.244.1.3"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := header + "TCP  10.96.0.10:80 rr\n  -> 10.244.1.3:8080              Masq    1\n"
	waitFor(t, kipvs.Fake, want)
	close(kipvs.release)
	waitCount(t, &kipvs.calls, 3, "a resync from the old read, then another read")
	if got := kipvs.Fake.Dump(); got != want {
		t.Errorf("after the resync of the older read:\n%s\nwant:\n%s", got, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	// Each resync raised the target once and put it back once.
	sets := gc.sets()
	for i, v := range sets {
		if want := []int{resyncGCPercent, 40}[i%2]; v != want {
			t.Fatalf("the collector's targets set, in order: %v; want %d, then 40, in turn", sets, resyncGCPercent)
		}
	}
	if len(sets) < 2 {
		t.Errorf("the collector's targets set: %v; want the resync's raise and its restore", sets)
	}
}

// gcPercent stands in for the Go collector's target (setGCPercent).
type gcPercent struct {
	mu  sync.Mutex
	cur int
	log []int
}

// recordGCPercent makes setGCPercent set a gcPercent starting at start,
// for the rest of the test.
func recordGCPercent(t *testing.T, start int) *gcPercent {
	g := &gcPercent{cur: start}
	orig := setGCPercent
	setGCPercent = func(v int) int {
		g.mu.Lock()
		defer g.mu.Unlock()
		prev := g.cur
		g.cur = v
		g.log = append(g.log, v)
		return prev
	}
	t.Cleanup(func() { setGCPercent = orig })
	return g
}

func (g *gcPercent) current() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur
}

func (g *gcPercent) sets() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.log...)
}

// fakeGC stands in for the runtime's count of collections and its heap
// sizes for the rest of the test.
type fakeGC struct {
	cycles, live, now uint64
}

func useFakeGC(t *testing.T, g *fakeGC) {
	origCycles, origHeap := gcCycles, heapSizes
	gcCycles = func() uint64 { return g.cycles }
	heapSizes = func() (uint64, uint64) { return g.live, g.now }
	t.Cleanup(func() { gcCycles, heapSizes = origCycles, origHeap })
}

// TestGCRelax: a resync raises the collector's target to 100; when it is
// over the lean target comes back at once if the heap is within the lean
// goal, and otherwise after a collection, with a target meanwhile whose
// goal is just above the heap; an operator's higher GOGC, or GC off, is
// kept.
func TestGCRelax(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name        string
		start       int
		live, now   uint64 // at the resync's end
		during, end int    // the target during the resync and after it
	}{
		{"heap within the lean goal", 40, 30 * mb, 40 * mb, 100, 40},
		{"heap past the lean goal", 40, 30 * mb, 50 * mb, 100, 80}, // (50+4-30)/30
		{"heap just past it", 40, 30 * mb, 43 * mb, 100, 56},       // (43+4-30)/30
		{"heap at twice live", 40, 100 * mb, 200 * mb, 100, 100},   // capped at 100
		{"nothing measured yet", 40, 0, 10 * mb, 100, 40},
		{"GOGC 100", 100, 30 * mb, 50 * mb, 100, 100},
		{"GOGC 200", 200, 30 * mb, 50 * mb, 200, 200},
		{"GC off", -1, 30 * mb, 50 * mb, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := recordGCPercent(t, tc.start)
			rt := &fakeGC{live: tc.live, now: tc.now}
			useFakeGC(t, rt)
			clk := clocktesting.NewFakeClock(time.Unix(0, 0))
			d := &daemon{Config: Config{Clock: clk}}
			check := func(when string, want int) {
				t.Helper()
				if got := g.current(); got != want {
					t.Errorf("%s: %d, want %d", when, got, want)
				}
			}
			// A collection finishes, and the sync loop's next run looks.
			afterCollection := func(when string) {
				t.Helper()
				rt.cycles++
				d.restoreGC()
				check(when, tc.start)
			}
			d.resyncOver()
			check("a void resync before any read", tc.start)
			d.relaxGC()
			check("during a resync's read", tc.during)
			d.relaxGC()
			check("at a second look", tc.during)
			d.restoreGC()
			check("at a sync during the resync", tc.during)
			d.resyncOver()
			check("after the resync", tc.end)
			d.restoreGC()
			check("after the resync, before a collection", tc.end)
			afterCollection("after the resync and a collection")

			// A resync that begins before the collection: 100 again, and
			// the same lean target in the end.
			d.relaxGC()
			d.resyncOver()
			d.relaxGC()
			check("during a resync begun before the collection", tc.during)
			rt.now = rt.live
			d.resyncOver()
			check("after it, with the heap at its live size", tc.start)

			// A resync that outlasts maxRelax: lowered then, as at its
			// end, and its end changes nothing more.
			rt.now = tc.now
			d.relaxGC()
			clk.Step(maxRelax - time.Millisecond)
			d.restoreGC()
			check("a resync just short of maxRelax", tc.during)
			clk.Step(time.Millisecond)
			d.restoreGC()
			check("a resync at maxRelax", tc.end)
			d.resyncOver()
			check("the end of a resync that outlasted maxRelax", tc.end)
			afterCollection("after it and a collection")
		})
	}
}

// runFast runs the daemon with a 50 ms sync period, for tests of what the
// periodic work must not hold up; its error arrives on the channel.
func runFast(ctx context.Context, client *fake.Clientset, k ipvs.Interface, rules []RuleSync, mods ...func(*Config)) chan error {
	owned, _ := proxier.LoadOwned("")
	cfg := Config{
		Client: kubeclienttest.Clientset{Interface: client}, NodeName: "node-a",
		Proxier:    proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k, netif.NewFake("kube-ipvs0"), ipset.NewFake(), owned),
		Rules:      rules,
		SyncPeriod: 50 * time.Millisecond, MinSyncPeriod: 10 * time.Millisecond,
		Health: &health{}, Metrics: nopMetrics{}, Clock: clock.RealClock{},
	}
	for _, m := range mods {
		m(&cfg)
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	return done
}

// waitStopped waits for Run to return want after why, and checks that it
// left the kernel as programmed.
func waitStopped(t *testing.T, done chan error, want error, why string, kipvs *ipvs.Fake, programmed string) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Errorf("Run returned %v, want %v", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run goes on after %s", why)
	}
	if got := kipvs.Dump(); got != programmed {
		t.Errorf("kernel changed on the way out:\n%s", got)
	}
}

// waitCount waits until c reaches n.
func waitCount(t *testing.T, c *atomic.Int32, n int32, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// programmingMetrics records the network-programming latencies observed
// and the times a sync was queued.
type programmingMetrics struct {
	nopMetrics
	mu     sync.Mutex
	got    []time.Duration
	queued []time.Time
}

func (m *programmingMetrics) SetLastQueuedTimestamp(t time.Time) {
	m.mu.Lock()
	m.queued = append(m.queued, t)
	m.mu.Unlock()
}

func (m *programmingMetrics) queuedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queued)
}

func (m *programmingMetrics) ObserveNetworkProgramming(d time.Duration) {
	m.mu.Lock()
	m.got = append(m.got, d)
	m.mu.Unlock()
}

func (m *programmingMetrics) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.got)
}

// TestProgrammingLatencySkipsChangesBeforeStart: a slice's trigger time
// from before the proxy started (every slice's, after a restart) is not a
// change this proxy programmed, so it is not observed; one after is.
func TestProgrammingLatencySkipsChangesBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := endpointSlice("web", "10.244.1.2")
	old.Annotations = map[string]string{model.TriggerTimeAnnotation: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)}
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, service("web", "10.96.0.10"), old)
	kipvs, link := ipvs.NewFake(), netif.NewFake("kube-ipvs0")
	owned, _ := proxier.LoadOwned("")
	m := &programmingMetrics{}
	go Run(ctx, Config{ //nolint:errcheck // stopped by cancel
		Client: kubeclienttest.Clientset{Interface: client}, NodeName: "node-a",
		Proxier:    proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, kipvs, link, ipset.NewFake(), owned),
		SyncPeriod: time.Minute, MinSyncPeriod: 10 * time.Millisecond,
		Health: &health{}, Metrics: m, Recorder: record.NewFakeRecorder(10), Clock: clock.RealClock{},
	})
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")
	if n := m.count(); n != 0 {
		t.Errorf("a trigger time from before the start was observed (%d observations)", n)
	}

	fresh := endpointSlice("web", "10.244.1.3")
	fresh.Annotations = map[string]string{model.TriggerTimeAnnotation: time.Now().UTC().Format(time.RFC3339Nano)}
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.3:8080              Masq    1\n")
	deadline := time.Now().Add(5 * time.Second)
	for m.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := m.count(); n != 1 {
		t.Errorf("the change after the start: %d observations, want 1", n)
	}
}

// TestNodeDeletedStops: Run returns ErrNodeDeleted when its Node is
// deleted, as kube-proxy exits, and leaves the kernel programmed.
func TestNodeDeletedStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, service("web", "10.96.0.10"), endpointSlice("web", "10.244.1.2"))
	kipvs := ipvs.NewFake()
	done := runFast(ctx, client, kipvs, nil)
	const programmed = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\nTCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n"
	waitFor(t, kipvs, programmed)
	if err := client.CoreV1().Nodes().Delete(ctx, "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, done, ErrNodeDeleted, "its Node was deleted", kipvs, programmed)
}

// TestNodeChangeStops: Run goes on through Node updates for which
// Config.Restart gives no reason, and returns ErrNodeChanged when it gives
// one (here: podCIDRs that changed), as kube-proxy exits, leaving the
// kernel programmed.
func TestNodeChangeStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}}}
	client := fake.NewClientset(node, service("web", "10.96.0.10"), endpointSlice("web", "10.244.1.2"))
	kipvs := ipvs.NewFake()
	done := runFast(ctx, client, kipvs, nil, func(c *Config) {
		c.Restart = func(n *v1.Node) string {
			if !slices.Equal(n.Spec.PodCIDRs, []string{"10.244.1.0/24"}) {
				return "podCIDRs changed"
			}
			return ""
		}
	})
	const programmed = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\nTCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n"
	waitFor(t, kipvs, programmed)
	update := func(mutate func(*v1.Node)) {
		t.Helper()
		n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mutate(n)
		if _, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	update(func(n *v1.Node) { n.Labels = map[string]string{"team": "a"} })
	select {
	case err := <-done:
		t.Fatalf("Run stopped on a Node update that kept its podCIDRs: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	update(func(n *v1.Node) { n.Spec.PodCIDRs = []string{"10.244.7.0/24"} })
	waitStopped(t, done, ErrNodeChanged, "its Node's podCIDRs changed", kipvs, programmed)
}

// TestLastQueuedTimestamp: kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds
// is set when the first sync is queued and again on each change, as
// kube-proxy sets it, so an alert comparing it with the last sync can fire.
func TestLastQueuedTimestamp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, service("web", "10.96.0.10"), endpointSlice("web", "10.244.1.2"))
	kipvs := ipvs.NewFake()
	owned, _ := proxier.LoadOwned("")
	m := &programmingMetrics{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Client: kubeclienttest.Clientset{Interface: client}, NodeName: "node-a",
			Proxier:    proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, kipvs, netif.NewFake("kube-ipvs0"), ipset.NewFake(), owned),
			SyncPeriod: time.Minute, MinSyncPeriod: 10 * time.Millisecond,
			Health: &health{}, Metrics: m, Clock: clock.RealClock{},
		})
	}()
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")
	before := m.queuedCount()
	if before == 0 {
		t.Fatal("the first sync was never queued")
	}
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, endpointSlice("web", "10.244.1.3"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.3:8080              Masq    1\n")
	if m.queuedCount() <= before {
		t.Errorf("an endpoint change queued a sync without setting the timestamp (%d times, as before)", before)
	}
	cancel()
	<-done
}

// failingRules is iptables whose Sync fails.
type failingRules struct{ iptables.Interface }

func (failingRules) Sync(iptables.RuleSet) (int, error) { return 0, errors.New("xtables lock held") }

// ruleMetrics records ObserveRuleSync's calls.
type ruleMetrics struct {
	nopMetrics
	got []string
}

func (m *ruleMetrics) ObserveRuleSync(family string, failed bool) {
	m.got = append(m.got, fmt.Sprintf("%s failed=%t", family, failed))
}

// TestRuleSyncMetrics: each family's rule sync is counted under its
// ip_family, a failure as a failure.
func TestRuleSyncMetrics(t *testing.T) {
	m := &ruleMetrics{}
	d := &daemon{Config: Config{Metrics: m, Clock: clock.RealClock{}, Rules: []RuleSync{
		{IPTables: iptables.NewFake(iptables.IPv4), Rules: iptables.Desired(iptables.Config{}, iptables.IPv4)},
		{IPTables: failingRules{iptables.NewFake(iptables.IPv6)}, Rules: iptables.Desired(iptables.Config{}, iptables.IPv6)},
	}}}
	if errs := d.syncRules(false); len(errs) != 1 {
		t.Errorf("errors %v, want the IPv6 one", errs)
	}
	if got, want := strings.Join(m.got, "; "), "IPv4 failed=false; IPv6 failed=true"; got != want {
		t.Errorf("observed %q, want %q", got, want)
	}
}

// countingConntrack deletes one entry per flow.
type countingConntrack struct{}

func (countingConntrack) DeleteFlows(flows []conntrack.Flow) (int, error) { return len(flows), nil }

// conntrackMetrics sums ObserveConntrack's deletions, and counts the
// syncs ObserveSyncCPU saw that used CPU, by kind.
type conntrackMetrics struct {
	nopMetrics
	deleted                  atomic.Int32
	changeSyncCPU, fullSyncs atomic.Int32
}

func (m *conntrackMetrics) ObserveSyncCPU(cpu time.Duration, change bool, _ time.Duration) {
	switch {
	case cpu <= 0:
	case change:
		m.changeSyncCPU.Add(1)
	default:
		m.fullSyncs.Add(1)
	}
}

func (m *conntrackMetrics) ObserveConntrack(_ string, _ time.Duration, n int) {
	m.deleted.Add(int32(n))
}

// TestConntrackDeletedMetric: the conntrack entries a sync deletes (of a
// removed UDP real server) reach the metrics; so does the sync loop's
// CPU, the first sync's as a full sync and the change's as one the budget
// pays for.
func TestConntrackDeletedMetric(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	udp := func(o runtime.Object) runtime.Object {
		switch o := o.(type) {
		case *v1.Service:
			o.Spec.Ports[0].Protocol = v1.ProtocolUDP
		case *discovery.EndpointSlice:
			o.Ports[0].Protocol = ptr.To(v1.ProtocolUDP)
		}
		return o
	}
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		udp(service("dns", "10.96.0.10")), udp(endpointSlice("dns", "10.244.1.2", "10.244.1.3")))
	kipvs := ipvs.NewFake()
	owned, _ := proxier.LoadOwned("")
	p := proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, kipvs, netif.NewFake("kube-ipvs0"), ipset.NewFake(), owned)
	p.Conntrack = countingConntrack{}
	m := &conntrackMetrics{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Client: kubeclienttest.Clientset{Interface: client}, NodeName: "node-a", Proxier: p,
			SyncPeriod: time.Minute, MinSyncPeriod: 10 * time.Millisecond,
			Health: &health{}, Metrics: m, Clock: clock.RealClock{},
		})
	}()
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	waitFor(t, kipvs, header+"UDP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.1.3:8080              Masq    1\n")
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, udp(endpointSlice("dns", "10.244.1.2")).(*discovery.EndpointSlice), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, kipvs, header+"UDP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")
	cancel()
	<-done
	if got := m.deleted.Load(); got != 1 {
		t.Errorf("ObserveConntrack summed %d, want 1 (the removed real server's flow)", got)
	}
	if full, change := m.fullSyncs.Load(), m.changeSyncCPU.Load(); full < 1 || change < 1 {
		t.Errorf("ObserveSyncCPU saw %d full and %d change-by-change syncs with CPU, want at least one of each", full, change)
	}
}

// slowWrites is an IPVS table whose writes take perOp each once slow is set.
type slowWrites struct {
	*ipvs.Fake
	perOp time.Duration
	slow  atomic.Bool
}

func (s *slowWrites) Write(ops []ipvs.Op) []error {
	if s.slow.Load() {
		time.Sleep(time.Duration(len(ops)) * s.perOp)
	}
	return s.Fake.Write(ops)
}

// until waits up to 10 s for ok.
func until(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// backendOf is the real server of driftedWorld's Service i.
func backendOf(i int) string { return fmt.Sprintf("10.244.%d.%d", i/200, i%200+1) }

// driftedWorld runs the daemon (runFast) on k with n Services, s000 on,
// each with one real server (backendOf), and waits for its first sync;
// then it makes slow's writes slow and takes every real server from the
// kernel, so that a periodic resync has n Services to repair, a few a
// step, and waits until one is repairing. It returns the client, Run's
// outcome, and how many real servers the kernel holds.
func driftedWorld(ctx context.Context, t *testing.T, n int, slow *slowWrites, k ipvs.Interface) (*fake.Clientset, chan error, func() int) {
	t.Helper()
	objs := []runtime.Object{&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}}
	for i := range n {
		name := fmt.Sprintf("s%03d", i)
		objs = append(objs, service(name, fmt.Sprintf("10.96.%d.%d", i/200, i%200+1)), endpointSlice(name, backendOf(i)))
	}
	client := fake.NewClientset(objs...)
	done := runFast(ctx, client, k, nil)
	withBackends := func() int { return strings.Count(slow.Dump(), "Masq") }
	until(t, "the first sync", func() bool { return withBackends() == n })
	slow.slow.Store(true)
	vss, _ := slow.List()
	for i, vs := range vss {
		if err := slow.DeleteDestination(vs.ServiceKey, vs.Destinations[0]); err != nil {
			t.Fatalf("drift %d: %v", i, err)
		}
	}
	until(t, "a resync repairing", func() bool { return withBackends() > 0 })
	return client, done, withBackends
}

// TestChangeDuringResyncLandsBeforeItEnds: a periodic resync that has a lot
// to repair (every Service lost its real server, and each write is slow)
// runs in steps, and an endpoint change that comes meanwhile is synced
// between two steps, long before the resync ends, and stays after it.
func TestChangeDuringResyncLandsBeforeItEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 200
	kipvs := &slowWrites{Fake: ipvs.NewFake(), perOp: 5 * time.Millisecond}
	client, done, withBackends := driftedWorld(ctx, t, n, kipvs, kipvs)
	// The last Service in name order, which the resync reaches last.
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, endpointSlice("s199", "10.244.9.9"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	changed := func() bool { return strings.Contains(kipvs.Dump(), "10.244.9.9:8080") }
	until(t, "the change", changed)
	if left := n - withBackends(); left < n/2 {
		t.Errorf("the change landed when only %d Services were left to repair: it waited for the resync", left)
	}
	until(t, "the resync's end", func() bool { return withBackends() == n })
	if !changed() || strings.Contains(kipvs.Dump(), backendOf(199)+":8080") {
		t.Errorf("the resync undid the change:\n%s", kipvs.Dump())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// loggedWrites records the IPVS writes in the order they are made.
type loggedWrites struct {
	*slowWrites
	mu  sync.Mutex
	ops []string
}

func (l *loggedWrites) Write(ops []ipvs.Op) []error {
	l.mu.Lock()
	for _, o := range ops {
		l.ops = append(l.ops, o.String())
	}
	l.mu.Unlock()
	return l.slowWrites.Write(ops)
}

func (l *loggedWrites) since(i int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops[min(i, len(l.ops)):])
}

// TestChangeReadyBetweenStepsGoesFirst: between two steps of a resync the
// loop rests and lets the goroutines that are ready run (restBetweenSteps), and a
// change they queue then is synced before the next step: the first write
// after it is the change's, while the resync still has Services to repair.
func TestChangeReadyBetweenStepsGoesFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 100
	slow := &slowWrites{Fake: ipvs.NewFake(), perOp: 5 * time.Millisecond}
	kipvs := &loggedWrites{slowWrites: slow}
	var armed atomic.Bool
	var client *fake.Clientset
	fired := make(chan int, 1) // how many writes were made when the change was queued
	orig := restBetweenSteps
	t.Cleanup(func() { restBetweenSteps = orig })
	restBetweenSteps = func(d *daemon, step time.Duration) {
		if !armed.CompareAndSwap(true, false) {
			orig(d, step)
			return
		}
		// As the informer would, had it run now: the change is queued.
		if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, endpointSlice("s099", "10.244.9.9"), metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !d.changes.Waiting() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		fired <- len(kipvs.since(0))
	}
	client, done, withBackends := driftedWorld(ctx, t, n, slow, kipvs)
	armed.Store(true)
	var at int
	select {
	case at = <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("no rest between two steps of the resync")
	}
	until(t, "the resync's end", func() bool { return withBackends() == n })
	after := kipvs.since(at)
	if len(after) == 0 || !strings.Contains(after[0], "10.244.9.9") {
		t.Errorf("the writes after the change was queued, in order:\n%s\nwant the change's first", strings.Join(after, "\n"))
	}
	if len(after) < 2 {
		t.Errorf("no repair was left after the change: the test shows nothing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
