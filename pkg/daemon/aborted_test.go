package daemon

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient/kubeclienttest"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
)

// unreadable is an IPVS table that refuses one virtual server (failingKey)
// and whose listing fails while listErr is set: a full sync then aborts.
type unreadable struct {
	*failingKey
	listErr atomic.Bool
}

func (u *unreadable) List() ([]ipvs.VirtualServer, error) {
	if u.listErr.Load() {
		return nil, errors.New("injected: netlink dump interrupted")
	}
	return u.failingKey.List()
}

// syncMetrics records the services-failing gauge, each sync's error count
// and the network-programming latencies.
type syncMetrics struct {
	nopMetrics
	mu        sync.Mutex
	failing   int
	syncErrs  []int
	latencies []time.Duration
}

func (m *syncMetrics) SetServicesFailing(n int) { m.mu.Lock(); m.failing = n; m.mu.Unlock() }

func (m *syncMetrics) ObserveSync(_ time.Duration, _ bool, _ reconcile.Counts, errors int) {
	m.mu.Lock()
	m.syncErrs = append(m.syncErrs, errors)
	m.mu.Unlock()
}

func (m *syncMetrics) ObserveNetworkProgramming(d time.Duration) {
	m.mu.Lock()
	m.latencies = append(m.latencies, d)
	m.mu.Unlock()
}

// syncWorld is a daemon for calling the sync loop's functions directly:
// Services straight in the cache (no informer runs), fake kernel, fake
// clock (a retry's timer never fires unless the test steps it).
type syncWorld struct {
	d        *daemon
	clk      *clocktesting.FakeClock
	kipvs    *unreadable
	m        *syncMetrics
	h        *health
	recorder *record.FakeRecorder
	// notified counts what reached the queue's notify, which kicks the
	// runner in Run.
	notified atomic.Int32
}

func newSyncWorld(t *testing.T) *syncWorld {
	t.Helper()
	w := &syncWorld{clk: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), m: &syncMetrics{}, h: &health{},
		recorder: record.NewFakeRecorder(10)}
	w.kipvs = &unreadable{failingKey: &failingKey{Fake: ipvs.NewFake(), key: key("10.96.0.30", 80)}}
	w.kipvs.fail.Store(true)
	changes := watch.NewChanges(func(watch.Change) { w.notified.Add(1) })
	client := kubeclienttest.Clientset{Interface: fake.NewClientset()}
	src, err := watch.NewSource(client.ListWatch("services", watch.SelectServices), client.ListWatch("endpointslices", watch.SelectSlices), changes)
	if err != nil {
		t.Fatal(err)
	}
	// Added after the start: its trigger time is a change this proxy
	// programs.
	triggered := endpointSlice("web", "10.244.1.2")
	triggered.Annotations = map[string]string{model.TriggerTimeAnnotation: w.clk.Now().Add(10 * time.Millisecond).Format(time.RFC3339Nano)}
	services, slices := src.Informers()[0].GetStore(), src.Informers()[1].GetStore()
	for _, err := range []error{
		services.Add(watch.CompactService(service("web", "10.96.0.10"))),
		slices.Add(watch.CompactSlice(triggered)),
		services.Add(watch.CompactService(service("bad", "10.96.0.20"))),
		slices.Add(watch.CompactSlice(endpointSlice("bad", "10.244.1.20", "not-an-ip"))),
		services.Add(watch.CompactService(service("fail", "10.96.0.30"))),
		slices.Add(watch.CompactSlice(endpointSlice("fail", "10.244.1.30"))),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	owned, _ := proxier.LoadOwned("")
	w.d = &daemon{Config: Config{Clock: w.clk, Health: w.h, Metrics: w.m, Recorder: w.recorder, SyncPeriod: time.Hour,
		Proxier: proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, w.kipvs, netif.NewFake("kube-ipvs0"), ipset.NewFake(), owned)},
		started: w.clk.Now(), src: src, changes: changes, kick: func() {},
		reported: map[types.NamespacedName]string{}, failing: map[types.NamespacedName]int{}, drainPending: map[types.NamespacedName]bool{}}
	return w
}

// events takes the Events recorded so far.
func (w *syncWorld) events() []string {
	var got []string
	for {
		select {
		case ev := <-w.recorder.Events:
			got = append(got, ev)
		default:
			return got
		}
	}
}

// TestAbortedFullSyncChangesNothing: a full sync that cannot read the
// kernel writes nothing, so it must not count as having synced every
// Service. A failing Service still fails (gauge, and its backoff goes on
// rather than starting over), a broken Service's problem stays reported
// (no second Warning once the kernel can be read again), and a change it
// took from the queue is not observed as programmed until the full sync
// that programs it. The attempt itself is still measured, /healthz is not
// told of a sync, and nothing is queued (which would kick the runner at
// once, again and again while the kernel stays unreadable).
func TestAbortedFullSyncChangesNothing(t *testing.T) {
	w := newSyncWorld(t)
	d, m := w.d, w.m
	web := types.NamespacedName{Namespace: "ns", Name: "web"}
	bad := types.NamespacedName{Namespace: "ns", Name: "bad"}
	fail := types.NamespacedName{Namespace: "ns", Name: "fail"}
	check := func(when string, wantFailing int, wantEvents, wantLatencies int) {
		t.Helper()
		m.mu.Lock()
		gauge, latencies := m.failing, len(m.latencies)
		m.mu.Unlock()
		if got := d.failing[fail]; got != wantFailing || len(d.failing) != 1 || gauge != 1 {
			t.Errorf("%s: failing %v (gauge %d), want %v at attempt %d (gauge 1)", when, d.failing, gauge, fail, wantFailing)
		}
		if _, ok := d.reported[bad]; !ok || len(d.reported) != 1 {
			t.Errorf("%s: reported %v, want %v's problem", when, d.reported, bad)
		}
		if evs := w.events(); len(evs) != wantEvents {
			t.Errorf("%s: Events %q, want %d", when, evs, wantEvents)
		}
		if latencies != wantLatencies {
			t.Errorf("%s: %d programming latencies observed, want %d", when, latencies, wantLatencies)
		}
	}

	// The clock moves on by less than a retry's wait (retryBase): no
	// retry is queued during the test.
	w.clk.Step(20 * time.Millisecond)
	d.needFull = true
	d.syncAll(w.clk.Now())
	check("after the first full sync", 1, 1, 0)

	// web's slice changes; then the kernel cannot be read.
	d.changes.Mark(web)
	notified := w.notified.Load()
	w.kipvs.listErr.Store(true)
	w.clk.Step(10 * time.Millisecond)
	d.needFull = true
	updated := w.h.updated
	d.syncAll(w.clk.Now())
	check("after the aborted full sync", 1, 0, 0)
	if !d.needFull {
		t.Error("after the aborted full sync: no full sync is wanted")
	}
	if w.h.updated != updated {
		t.Error("the aborted full sync told /healthz of a sync")
	}
	if n := w.notified.Load(); n != notified {
		t.Errorf("the aborted full sync queued %d changes: each kicks the runner, which would retry at once", n-notified)
	}
	m.mu.Lock()
	if len(m.syncErrs) != 2 || m.syncErrs[1] == 0 {
		t.Errorf("errors by sync %v: want the aborted attempt measured, with its error", m.syncErrs)
	}
	m.mu.Unlock()

	// The kernel can be read again.
	w.kipvs.listErr.Store(false)
	w.clk.Step(10 * time.Millisecond)
	d.syncAll(w.clk.Now())
	check("after the full sync that recovered", 2, 0, 1)
	m.mu.Lock()
	if len(m.latencies) == 1 && m.latencies[0] != 30*time.Millisecond {
		t.Errorf("web's change observed %v after its trigger, want 30ms (at the sync that programmed it)", m.latencies[0])
	}
	m.mu.Unlock()
	if w.h.updated == updated {
		t.Error("the full sync that recovered did not tell /healthz")
	}
}

// TestFullSyncEndsStepTurn: a full sync voids a resync under way, and the
// turn that resync's next step had (stepTurn) with it; left set, the next
// periodic resync's first run would step before a change that waits.
func TestFullSyncEndsStepTurn(t *testing.T) {
	w := newSyncWorld(t)
	d := w.d
	// A change-by-change sync during a resync gave the resync the next
	// turn; then a full sync was wanted.
	d.stepTurn, d.needFull = true, true
	d.syncAll(w.clk.Now())

	// The next periodic resync's read is in, and a change waits.
	all, err := d.src.All()
	if err != nil {
		t.Fatal(err)
	}
	d.Proxier.BeginRead()
	d.reading = make(chan resyncRead, 1)
	d.reading <- resyncRead{snap: d.Proxier.ReadKernel(), inputs: proxier.PrepareInputs(all)}
	d.changes.Mark(types.NamespacedName{Namespace: "ns", Name: "web"})
	d.sync()
	if d.changes.Waiting() {
		t.Error("the resync's first run stepped while a change waited")
	} else if d.resync == nil {
		t.Error("the read began no resync: the test shows nothing")
	}
}
