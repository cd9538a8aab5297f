package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// afterSeer sees a change a fixed time after its write.
type afterSeer struct{ d time.Duration }

func (a afterSeer) seen(pd *pending) (time.Time, bool) {
	at := pd.t0.Add(a.d)
	return at, time.Now().After(at)
}

// TestRunCase drives each kind of case against a fake API server: every
// change is written on top of the last one to its slice (no conflicts,
// even from the open loop's goroutines), every one is measured, and the
// table the next proxy must converge to follows the writes.
func TestRunCase(t *testing.T) {
	const n = 4
	client, g, want := fakeGuest(t, n)
	w := g.newWriter(n, want)
	if err := w.prefetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range []churnCase{
		{Name: "chain", Chains: 1, Steps: 5},
		{Name: "open loop", Rate: 200, Seconds: 0.1},
		{Name: "rollout", Chains: 2, Steps: 3},
	} {
		res, err := w.runCase(context.Background(), c, afterSeer{5 * time.Millisecond}, time.Minute, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		wantN := c.Chains * c.Steps
		if c.Rate > 0 {
			wantN = int(c.Rate * c.Seconds)
		}
		if len(res.Latencies) != wantN || res.Capped != 0 || res.Unissued != 0 {
			t.Errorf("%s: %d measured, %d capped, %d unissued; want %d measured", c.Name, len(res.Latencies), res.Capped, res.Unissued, wantN)
		}
		for _, l := range res.Latencies {
			if l < 0.005 {
				t.Errorf("%s: a latency of %v s, below the seer's 5 ms", c.Name, l)
			}
		}
		total += wantN
	}
	// The prefetched slices spared every case's first change its get.
	for _, a := range client.Actions() {
		if a.GetVerb() == "get" {
			t.Errorf("a change got its slice (%v) after the prefetch", a)
		}
	}
	// Every endpoint still has one address per slice, moved or not, and
	// want holds exactly what the API holds.
	api := table{}
	moved := 0
	for i := range n {
		sl, err := client.DiscoveryV1().EndpointSlices(benchNS).Get(context.Background(), svcName(i)+"-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key := g.svcKeys[svcName(i)]
		api[key] = map[netip.AddrPort]int{}
		for _, e := range sl.Endpoints {
			a := netip.MustParseAddr(e.Addresses[0])
			api[key][netip.AddrPortFrom(a, 8080)] = 1
			if netip.MustParsePrefix(changedNet + ".0.0/16").Contains(a) {
				moved++
			}
		}
	}
	if d := want.diff(api, 5); d != "" {
		t.Errorf("the wanted table is not the API's: %s", d)
	}
	if moved == 0 || g.changes != total {
		t.Errorf("%d endpoints moved, %d changes counted; want some moved and %d counted", moved, g.changes, total)
	}
}

// TestTapSeer: a change the tap has shown is timed by its later write even
// when the kernel, read at once, does not show it yet (the tap copies a
// request before the kernel applies it); one the tap never shows is timed
// by the poll that finds it, and counted as such.
func TestTapSeer(t *testing.T) {
	key := vsKey{"TCP", netip.MustParseAddrPort("10.96.0.1:80")}
	moved, old := netip.MustParseAddrPort("10.247.0.1:8080"), netip.MustParseAddrPort("10.244.0.1:8080")
	t0 := time.Now().Add(-50 * time.Millisecond)
	taps := newDestWrites()
	reads := 0
	applied := false
	s := tapSeer{taps: &taps, shows: func(k vsKey, m, o netip.AddrPort) bool {
		if k != key || m != moved || o != old {
			t.Errorf("shows(%v, %v, %v): not the change's", k, m, o)
		}
		reads++
		return applied
	}}
	pd := &pending{key: key, moved: moved, old: old, t0: t0}
	if _, ok := s.seen(pd); ok || reads != 0 {
		t.Fatalf("seen with nothing on the tap (%d reads)", reads)
	}
	added, removed := t0.Add(10*time.Millisecond), t0.Add(20*time.Millisecond)
	taps.m[moved] = destWrite{added: added}
	taps.m[old] = destWrite{removed: removed}
	if _, ok := s.seen(pd); ok {
		t.Fatal("seen before the kernel applied it")
	}
	applied = true
	at, ok := s.seen(pd)
	if !ok || !at.Equal(removed) || pd.byPoll {
		t.Fatalf("seen = %v, %v (by poll %v); want the later write, %v", at, ok, pd.byPoll, removed)
	}
	if reads != 2 {
		t.Errorf("%d kernel reads, want 2", reads)
	}

	// Never on the tap: only a poll after tapGrace sees it.
	late := &pending{key: key, moved: moved, old: old, t0: time.Now().Add(-tapGrace - time.Second)}
	taps.m = map[netip.AddrPort]destWrite{}
	at, ok = s.seen(late)
	if !ok || !late.byPoll || time.Since(at) > time.Second {
		t.Fatalf("a change missing from the tap: seen = %v, %v, by poll %v; want now, by poll", at, ok, late.byPoll)
	}
}

// TestWriteLostByTheTransportIsRetried: an update the transport lost is
// written again and the change measured, counted as retried; an answer
// from the API server (here a conflict) ends the case with its error.
func TestWriteLostByTheTransportIsRetried(t *testing.T) {
	client := fake.NewClientset()
	g := &guest{client: client, svcKeys: map[string]vsKey{}}
	key := vsKey{"TCP", netip.MustParseAddrPort("10.96.0.1:80")}
	g.svcKeys[svcName(0)] = key
	want := table{key: {}}
	sl := &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: svcName(0) + "-1", Namespace: benchNS},
		Ports: []discovery.EndpointPort{{Port: ptr.To[int32](8080)}}}
	for j := range endpoints {
		sl.Endpoints = append(sl.Endpoints, discovery.Endpoint{Addresses: []string{endpointAddr(0, j)}})
		want[key][netip.MustParseAddrPort(endpointAddr(0, j)+":8080")] = 1
	}
	if _, err := client.DiscoveryV1().EndpointSlices(benchNS).Create(context.Background(), sl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var failNext []error
	client.PrependReactor("update", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if len(failNext) == 0 {
			return false, nil, nil
		}
		err := failNext[0]
		failNext = failNext[1:]
		return true, nil, err
	})
	w := g.newWriter(1, want)

	failNext = []error{errors.New("net/http: TLS handshake timeout")}
	res, err := w.runCase(context.Background(), churnCase{Name: "chain", Chains: 1, Steps: 1}, afterSeer{time.Millisecond}, time.Minute, 0)
	if err != nil || len(res.Latencies) != 1 || res.Retried != 1 || len(failNext) != 0 {
		t.Fatalf("after a lost write: err %v, %d measured, %d retried; want it retried once and measured", err, len(res.Latencies), res.Retried)
	}

	failNext = []error{apierrors.NewConflict(discovery.Resource("endpointslices"), sl.Name, errors.New("changed"))}
	res, err = w.runCase(context.Background(), churnCase{Name: "chain", Chains: 1, Steps: 1}, afterSeer{time.Millisecond}, time.Minute, 0)
	if err == nil || !apierrors.IsConflict(err) || res.Retried != 0 {
		t.Fatalf("after a conflict: err %v, %d retried; want the conflict, not retried", err, res.Retried)
	}
}

// TestInformerSeerRead: the floor's process reports each event as a line,
// and its cache's sync once; a line of anything else is not an event.
func TestInformerSeerRead(t *testing.T) {
	s := &informerSeer{at: map[string]time.Time{}}
	synced, ended := make(chan struct{}), make(chan struct{})
	s.read(strings.NewReader("seen a/1 1000\nsynced\nok: not an event\nseen b/7 2000000000\nseen c/2 nope\n"), synced, ended)
	for _, ch := range []chan struct{}{synced, ended} {
		select {
		case <-ch:
		default:
			t.Fatal("synced and ended must be closed")
		}
	}
	var got []string
	for k, v := range s.at {
		got = append(got, fmt.Sprintf("%s@%d", k, v.UnixNano()))
	}
	slices.Sort(got)
	if want := "a/1@1000 b/7@2000000000"; strings.Join(got, " ") != want {
		t.Errorf("seen: got %q, want %q", strings.Join(got, " "), want)
	}
	if at, ok := s.seen(&pending{slice: "b", version: "7"}); !ok || at.Unix() != 2 {
		t.Errorf("seen(b/7) = %v, %v", at, ok)
	}
}

// TestCaseFileNames: every case a full run profiles, the one across a
// resync with them, gets files of its own, so no case's profile or trace
// overwrites another's.
func TestCaseFileNames(t *testing.T) {
	cases := append(churnCases(plan{}, 5000), acrossResync())
	var got []string
	for _, c := range cases {
		got = append(got, caseFileName(c))
	}
	want := []string{"back-to-back", "churn-10", "churn-50", "churn-200", "rollout", "resync"}
	if !slices.Equal(got, want) {
		t.Errorf("file names of %d cases: got %q, want %q", len(cases), got, want)
	}
}

// TestWriterSlots: the writer holds at most maxInFlight writes in flight;
// the next waits, is counted, and goes once one ends, or gives up with
// its context.
func TestWriterSlots(t *testing.T) {
	w := (&guest{}).newWriter(1, table{})
	var releases []func()
	for range maxInFlight {
		release, err := w.slot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, release)
	}
	if w.queued != 0 {
		t.Fatalf("%d queued with slots free, want 0", w.queued)
	}
	got := make(chan error, 1)
	go func() {
		release, err := w.slot(context.Background())
		if err == nil {
			release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a write beyond %d went at once (err %v)", maxInFlight, err)
	case <-time.After(50 * time.Millisecond):
	}
	releases[0]()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting write did not go when a slot was freed")
	}
	if _, err := w.slot(context.Background()); err != nil { // every slot taken again
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.slot(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("with every slot taken and the context done: %v, want context.Canceled", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queued != 2 {
		t.Errorf("%d counted as queued, want 2", w.queued)
	}
}

// neverSeer sees nothing: a seer that is broken (a key format that does
// not match, the floor's lines lost, a tap that reads nothing), or a
// process that never shows a change.
type neverSeer struct{}

func (neverSeer) seen(*pending) (time.Time, bool) { return time.Time{}, false }

// TestUnseenChangesFailTheRun guards the churn cases against passing when
// changes were never seen: runCase's result counts them as capped, and
// its error is errUnseen, which fails the informer floor's run and
// ipvs-proxy's, while kube-proxy, known to fall behind, keeps its capped
// changes as a result (caseError).
func TestUnseenChangesFailTheRun(t *testing.T) {
	_, g, want := fakeGuest(t, 2)
	w := g.newWriter(2, want)
	for _, tc := range []struct {
		name       string
		s          seer
		unseen     bool
		seen, capd int
	}{
		{"every change seen", afterSeer{time.Millisecond}, false, 3, 0},
		{"no change seen", neverSeer{}, true, 0, 3},
	} {
		res, err := w.runCase(context.Background(), churnCase{Name: "back-to-back", Chains: 1, Steps: 3}, tc.s, 20*time.Millisecond, 0)
		if errors.Is(err, errUnseen) != tc.unseen || (!tc.unseen && err != nil) {
			t.Errorf("%s: err %v, want errUnseen %v", tc.name, err, tc.unseen)
		}
		if len(res.Latencies) != tc.seen || res.Capped != tc.capd {
			t.Errorf("%s: %d measured, %d capped; want %d, %d", tc.name, len(res.Latencies), res.Capped, tc.seen, tc.capd)
		}
	}

	unseen := fmt.Errorf("3 of 3 changes %w", errUnseen)
	conflict := apierrors.NewConflict(discovery.Resource("endpointslices"), "s-1", errors.New("changed"))
	for _, tc := range []struct {
		name      string
		err       error
		kubeProxy bool
		fails     bool
	}{
		{"ipvs-proxy or the floor, unseen changes", unseen, false, true},
		{"kube-proxy, unseen changes", unseen, true, false},
		{"kube-proxy, a failed write", conflict, true, true},
		{"no error", nil, false, false},
	} {
		if got := caseError(tc.err, tc.kubeProxy); (got != nil) != tc.fails {
			t.Errorf("%s: caseError = %v, want failing %v", tc.name, got, tc.fails)
		}
	}
}

// TestCPUOfExitedProcess guards a case's CPU against a reading that
// failed: a process that has exited (and been reaped) cannot be read,
// and the case records why instead of the difference to zero, which
// would be minus the CPU it had used.
func TestCPUOfExitedProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	exited := readCPU(&process{cmd: cmd})
	if exited.err == nil {
		t.Fatal("reading the CPU of a reaped process did not fail")
	}
	running := cpuReading{user: 1.5, sys: 0.5}
	for _, tc := range []struct {
		name          string
		before, after cpuReading
		cpu, sys      float64
		unread        bool
	}{
		{"both read", running, cpuReading{user: 2, sys: 0.75}, 0.75, 0.25, false},
		{"exited by the end", running, exited, 0, 0, true},
		{"exited at the start", exited, exited, 0, 0, true},
	} {
		var r CaseResult
		r.setCPU(tc.before, tc.after)
		if r.CPUS != tc.cpu || r.SysS != tc.sys || (r.CPUError != "") != tc.unread {
			t.Errorf("%s: CPU %v s, system %v s, error %q; want %v, %v, not read %v", tc.name, r.CPUS, r.SysS, r.CPUError, tc.cpu, tc.sys, tc.unread)
		}
	}
}

// TestInformerFloorGetsProxyEnv guards the informer floor's process
// against running without the environment the proxies get
// (BENCH_PROXY_ENV): a GOGC or GOMEMLIMIT changes a watcher's CPU and
// latency, and the report states the floor ran with it.
func TestInformerFloorGetsProxyEnv(t *testing.T) {
	for _, env := range [][]string{nil, {"GOGC=400", "GOMEMLIMIT=200MiB"}} {
		cmd := informerCommand(plan{ProxyEnv: env})
		for _, want := range append(slices.Clone(env), envInformerChild+"=1") {
			if !slices.Contains(cmd.Env, want) {
				t.Errorf("with %q, the floor's environment lacks %q", env, want)
			}
		}
	}
}

// fakeGuest is a guest on a fake API server holding n Services' slices,
// and the table a proxy must show for them.
func fakeGuest(t *testing.T, n int) (*fake.Clientset, *guest, table) {
	t.Helper()
	client := fake.NewClientset()
	g := &guest{client: client, svcKeys: map[string]vsKey{}}
	want := table{}
	for i := range n {
		name := svcName(i)
		key := vsKey{"TCP", netip.MustParseAddrPort(fmt.Sprintf("10.96.0.%d:80", i+1))}
		g.svcKeys[name] = key
		want[key] = map[netip.AddrPort]int{}
		sl := &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: benchNS},
			Ports: []discovery.EndpointPort{{Port: ptr.To[int32](8080)}}}
		for j := range endpoints {
			sl.Endpoints = append(sl.Endpoints, discovery.Endpoint{Addresses: []string{endpointAddr(i, j)}})
			want[key][netip.MustParseAddrPort(endpointAddr(i, j)+":8080")] = 1
		}
		if _, err := client.DiscoveryV1().EndpointSlices(benchNS).Create(context.Background(), sl, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return client, g, want
}
