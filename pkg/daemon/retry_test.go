package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient/kubeclienttest"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
)

// failingKey is an IPVS table that refuses one virtual server while fail
// is set, and counts full listings and attempts at that virtual server.
type failingKey struct {
	*ipvs.Fake
	key             ipvs.ServiceKey
	fail            atomic.Bool
	lists, attempts atomic.Int32
}

func (f *failingKey) List() ([]ipvs.VirtualServer, error) {
	f.lists.Add(1)
	return f.Fake.List()
}

func (f *failingKey) AddService(s ipvs.Service) error {
	if s.ServiceKey == f.key {
		f.attempts.Add(1)
		if f.fail.Load() {
			return errors.New("injected: no such scheduler module")
		}
	}
	return f.Fake.AddService(s)
}

func (f *failingKey) Write(ops []ipvs.Op) []error { return ipvs.WriteEach(f, ops) }

type failingMetrics struct {
	nopMetrics
	failing atomic.Int32
}

func (m *failingMetrics) SetServicesFailing(n int) { m.failing.Store(int32(n)) }

// TestFailingServiceIsRetriedAlone: a Service whose virtual server cannot
// be written is retried on its own, with backoff, while other Services'
// changes go on without a full listing of the kernel; once the kernel
// accepts it, it is programmed.
func TestFailingServiceIsRetriedAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		service("web", "10.96.0.10"), endpointSlice("web", "10.244.1.2"),
		service("bad", "10.96.0.30"), endpointSlice("bad", "10.244.1.30"))
	k := &failingKey{Fake: ipvs.NewFake(), key: key("10.96.0.30", 80)}
	k.fail.Store(true)
	m := &failingMetrics{}
	owned, _ := proxier.LoadOwned("")
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Client: kubeclienttest.Clientset{Interface: client}, NodeName: "node-a",
			Proxier:    proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k, netif.NewFake("kube-ipvs0"), ipset.NewFake(), owned),
			SyncPeriod: time.Hour, MinSyncPeriod: 10 * time.Millisecond,
			Health: &health{}, Metrics: m, Clock: clock.RealClock{},
		})
	}()
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	waitFor(t, k.Fake, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")
	for _, ep := range []string{"10.244.1.3", "10.244.1.4"} {
		if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, endpointSlice("web", ep), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, k.Fake, header+"TCP  10.96.0.10:80 rr\n  -> "+ep+":8080              Masq    1\n")
	}
	waitCount(t, &k.attempts, 3, "third attempt at the failing Service (retries after 1 s and 2 s)")
	if n := k.lists.Load(); n != 1 {
		t.Errorf("the kernel was listed whole %d times, want once (the first sync): a failing Service forced full syncs", n)
	}
	if n := m.failing.Load(); n != 1 {
		t.Errorf("services failing = %d, want 1", n)
	}
	k.fail.Store(false)
	waitFor(t, k.Fake, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.4:8080              Masq    1\n"+
		"TCP  10.96.0.30:80 rr\n  -> 10.244.1.30:8080             Masq    1\n")
	deadline := time.Now().Add(5 * time.Second)
	for m.failing.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := m.failing.Load(); n != 0 {
		t.Errorf("services failing = %d after the write succeeded, want 0", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func key(addr string, port uint16) ipvs.ServiceKey {
	return ipvs.ServiceKey{Addr: netip.MustParseAddr(addr), Proto: ipvs.TCP, Port: port}
}

// TestRetryBackoff: each failure in a row of a Service's writes doubles
// the wait before its next attempt, up to retryMax, and a sync that
// succeeds starts it over. The Service is among the synced ones of each
// failing sync, as it is in the daemon.
func TestRetryBackoff(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d := &daemon{Config: Config{Clock: clk, Metrics: nopMetrics{}}, failing: map[types.NamespacedName]int{},
		changes: watch.NewChanges(func(watch.Change) {})}
	bad := types.NamespacedName{Namespace: "ns", Name: "bad"}
	synced := map[types.NamespacedName]bool{bad: true}
	var got []string
	fail := func() {
		d.retryFailed(synced, []types.NamespacedName{bad})
		got = append(got, fmt.Sprintf("attempt %d, next after %v", d.failing[bad], retryDelay(d.failing[bad])))
	}
	for range 10 {
		fail()
	}
	d.retryFailed(synced, nil)
	got = append(got, fmt.Sprintf("succeeded: %d failing", len(d.failing)))
	fail()
	want := strings.Join([]string{
		"attempt 1, next after 1s", "attempt 2, next after 2s", "attempt 3, next after 4s", "attempt 4, next after 8s",
		"attempt 5, next after 16s", "attempt 6, next after 32s", "attempt 7, next after 1m4s", "attempt 8, next after 2m8s",
		"attempt 9, next after 4m16s", "attempt 10, next after 5m0s",
		"succeeded: 0 failing",
		"attempt 1, next after 1s",
	}, "\n")
	if g := strings.Join(got, "\n"); g != want {
		t.Errorf("retries:\n%s\nwant:\n%s", g, want)
	}
	// The attempt is queued when its wait is over: the last failure's
	// second.
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	clk.Step(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for !d.changes.Waiting() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if names := d.changes.Take(); len(names) != 1 || names[0] != bad {
		t.Errorf("after the retry's wait, queued %v, want %v", names, bad)
	}
}

// countingClock counts the timers started on it.
type countingClock struct {
	*testingclock.FakeClock
	timers atomic.Int32
}

func (c *countingClock) After(d time.Duration) <-chan time.Time {
	c.timers.Add(1)
	return c.FakeClock.After(d)
}

// TestRetriesDoNotPileUp: a Service that fails again while its retry is
// pending (in every resync step, in every change) starts no second timer;
// only a retry due sooner (after a success reset the backoff) does. Each
// pending retry queues the Service once.
func TestRetriesDoNotPileUp(t *testing.T) {
	clk := &countingClock{FakeClock: testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	d := &daemon{Config: Config{Clock: clk, Metrics: nopMetrics{}}, failing: map[types.NamespacedName]int{},
		changes: watch.NewChanges(func(watch.Change) {})}
	bad := types.NamespacedName{Namespace: "ns", Name: "bad"}
	synced := map[types.NamespacedName]bool{bad: true}
	for range 100 {
		d.retryFailed(synced, []types.NamespacedName{bad})
	}
	// Timers started off the caller's goroutine would be counted late.
	for deadline := time.Now().Add(time.Second); clk.timers.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := clk.timers.Load(); n != 1 {
		t.Fatalf("100 failures in a row started %d timers, want 1 (the first retry's, due in 1 s)", n)
	}
	d.retryFailed(synced, nil) // a success resets the backoff
	d.retryFailed(synced, []types.NamespacedName{bad})
	if n := clk.timers.Load(); n != 1 {
		t.Fatalf("a failure due no sooner than the pending retry started a timer (%d)", n)
	}
	clk.Step(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for !d.changes.Waiting() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if names := d.changes.Take(); len(names) != 1 || names[0] != bad {
		t.Fatalf("after the retry's wait, queued %v, want %v", names, bad)
	}
	// The retry ran: the next failure gets a timer of its own.
	d.retryFailed(synced, []types.NamespacedName{bad})
	if n := clk.timers.Load(); n != 2 {
		t.Errorf("a failure after the retry ran started %d timers in all, want 2", n)
	}
}
