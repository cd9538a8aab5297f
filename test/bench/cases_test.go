package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A churn case is a pattern of endpoint changes as clusters make them,
// measured from each API write until it is seen: in the kernel for a
// proxy, in the event handler for the informer floor (informer_test.go).
//
//   - back-to-back: one change after another, each issued as soon as the
//     previous one is seen (what a user scripting changes meets);
//   - churn R/s: changes issued at a steady R per second for a while, each
//     to the next Service in a stride over all of them, whether or not
//     the earlier ones are seen yet;
//   - rollout: every endpoint of S Services replaced one pod at a time, as
//     a Deployment rollout does, all S at once: each Service's next
//     replacement is issued when its previous one is seen.
type churnCase struct {
	Name string `json:"name"`
	// Chains > 0: that many sequential chains, of Steps changes each (or
	// as many as fit in Seconds, if set), on Services of their own.
	// Rate > 0: open loop for Seconds.
	Chains  int     `json:"chains,omitempty"`
	Steps   int     `json:"steps,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}

// churnCases are the cases at n Services; a smoke run makes each small.
func churnCases(p plan, n int) []churnCase {
	b2b, rateFor, rollout, steps := 20, 10.0, min(50, n/2), endpoints
	rates := []float64{10, 50, 200}
	if p.Smoke {
		b2b, rateFor, rollout, steps, rates = 3, 1, 2, 3, []float64{10}
	}
	cs := []churnCase{{Name: "back-to-back", Chains: 1, Steps: b2b}}
	for _, r := range rates {
		cs = append(cs, churnCase{Name: fmt.Sprintf("churn %.0f/s", r), Rate: r, Seconds: rateFor})
	}
	return append(cs, churnCase{Name: fmt.Sprintf("rollout of %d Services", rollout), Chains: rollout, Steps: steps})
}

// acrossResync is back-to-back changes for longer than the proxies'
// --ipvs-sync-period (30s), so a periodic resync runs among them: the
// largest latency shows what the resync adds to a change.
func acrossResync() churnCase {
	return churnCase{Name: resyncCaseName, Chains: 1, Steps: 1 << 20, Seconds: 40}
}

const resyncCaseName = "back-to-back across a resync"

// CaseResult is one case as one proxy (or the floor) met it.
type CaseResult struct {
	Name string `json:"name"`
	// Latencies of the changes seen, in seconds; Capped were not seen
	// within the cap; Unissued were never made (kube-proxy's budget ran
	// out first).
	Latencies []float64 `json:"latencies"`
	Capped    int       `json:"capped,omitempty"`
	Unissued  int       `json:"unissued,omitempty"`
	// Polled of the measured changes were timed by a read of the kernel,
	// not by the tap (an upper bound: tapSeer).
	Polled int `json:"polled,omitempty"`
	// Retried writes were lost by the transport and tried again (the
	// change is timed from the write that reached the API server).
	Retried int `json:"retried,omitempty"`
	// Queued writes waited for one of the writer's maxInFlight slots.
	Queued int `json:"queued,omitempty"`
	// IssueS is how long the open loop took to write its changes.
	IssueS float64 `json:"issueS,omitempty"`
	// The case's wall time, the proxy's CPU in it (SysS of it in the
	// kernel) and its syncs. CPUError says why the CPU could not be read
	// (a reading failed: the process had exited); CPUS and SysS are then
	// 0, and not measured.
	WallS    float64 `json:"wallS"`
	CPUS     float64 `json:"cpuS"`
	SysS     float64 `json:"sysS,omitempty"`
	CPUError string  `json:"cpuError,omitempty"`
	Syncs    int     `json:"syncs"`
	// LoopS is the CPU of CPUS that ipvs-proxy's sync loop used (its
	// ipvs_proxy_sync_cpu_seconds_total): the rest is the watch's
	// decoding, the collector and the resync's kernel read.
	LoopS float64 `json:"loopS,omitempty"`
	// GuestBusyS is the CPU the whole guest used in the case, across its
	// GuestCPUs vCPUs, GuestWaitS the time its runnable tasks waited for a
	// vCPU, and BenchS the bench process's own CPU (the writer, the tap's
	// reader, the seers): see guestLoad.
	GuestBusyS float64 `json:"guestBusyS,omitempty"`
	GuestWaitS float64 `json:"guestWaitS,omitempty"`
	GuestCPUs  int     `json:"guestCPUs,omitempty"`
	BenchS     float64 `json:"benchS,omitempty"`
	// Starts are the measured changes' API writes (Unix seconds), in the
	// order of Latencies.
	Starts []float64 `json:"starts,omitempty"`
	// Resyncs are the periodic resyncs the proxy logged during the case,
	// each from its kernel read's start to its last step's end (Unix
	// seconds; ipvs-proxy only); PartialSyncS is its mean change-by-change
	// sync in the case, from its own sync-duration metric (resyncCaseName
	// only).
	Resyncs [][2]float64 `json:"resyncs,omitempty"`
	// Memory is the proxy's memory lines at the case's end (process.memory),
	// for the log: which phase sets the peak.
	Memory       string  `json:"memory,omitempty"`
	PartialSyncS float64 `json:"partialSyncS,omitempty"`
	// Answers are the API server's answer times of every change written
	// in the case (seconds from the write to its answer): the first hop,
	// which the informer and the proxies share. ServerS is the API
	// server's own mean time handling them (its request-duration metric),
	// which tells its part of the hop from the way to it and back.
	Answers []float64 `json:"answers,omitempty"`
	ServerS float64   `json:"serverS,omitempty"`
	// AfterAnswer is, for each change seen (Latencies' order), its latency
	// less its write's answer time: what the way from the API server to
	// the kernel (the floor's: to its handler) added to the API server's
	// answer, negative when the change was seen before the writer had
	// the answer. A slow answer slows every watcher's event too, so this
	// tells the proxy's part of a tail from the API server's.
	AfterAnswer []float64 `json:"afterAnswer,omitempty"`
}

// seer tells when a change is seen: the kernel for a proxy, the informer's
// handler for the floor. seen reports the time it was seen.
type seer interface {
	seen(c *pending) (time.Time, bool)
}

// pending is one change on its way.
type pending struct {
	key     vsKey
	moved   netip.AddrPort
	old     netip.AddrPort
	slice   string
	version string // the slice's resourceVersion after the write
	t0      time.Time
	// answered is when the API server answered the write: the first hop
	// of the change's way (the write committed), before any watch.
	answered time.Time
	done     chan struct{}
	latency  float64
	capped   bool
	// checked is the tap's time tapSeer last confirmed in the kernel;
	// polled when it last read the kernel without the tap.
	checked, polled time.Time
	// byPoll: the seer timed it by a read of the kernel, not by its write.
	byPoll bool
}

// writer makes endpoint changes from a cache of the slices it wrote, so
// a change costs one API request, not two.
type writer struct {
	g  *guest
	n  int
	mu sync.Mutex
	// busy serializes the writes to one Service: each writes on top of
	// the slice the last one wrote.
	busy   map[string]*sync.Mutex
	slices map[string]*discovery.EndpointSlice
	next   map[string]int // the next endpoint index to move, per Service
	want   table
	// retries are the writes tried again after the transport lost them.
	retries int
	// slots bounds the writes in flight (maxInFlight); queued counts those
	// that had to wait for one.
	slots  chan struct{}
	queued int
}

// maxInFlight bounds the writer's writes in flight. The API server allows
// 100 streams on one HTTP/2 connection (k8s.io/apiserver's default), and
// past them client-go's transport dials another connection. A TLS
// handshake, its certificate check above all, takes a vCPU of the guest
// for a long moment under TCG: at 200 changes/s, once answers slowed, the
// writer's handshakes filled the guest's vCPUs, answers slowed further,
// and the writer fell far below its rate (`make bench`'s notes in the
// README give the figures). A write waits for a slot instead (before its
// timing starts), and the case reports how many did.
const maxInFlight = 90

func (g *guest) newWriter(n int, want table) *writer {
	return &writer{g: g, n: n, busy: map[string]*sync.Mutex{}, slices: map[string]*discovery.EndpointSlice{}, next: map[string]int{}, want: want,
		slots: make(chan struct{}, maxInFlight)}
}

// prefetch reads every bench slice at once, so that a case's first change
// to a Service does not first get its slice: at 200 changes/s over 5,000
// Services nearly every change was a first, and the gets doubled the
// writer's requests on the guest's busy vCPUs. A slice missing here is
// still got on its first change.
func (w *writer) prefetch(ctx context.Context) error {
	api := w.g.client.DiscoveryV1().EndpointSlices(benchNS)
	opts := metav1.ListOptions{Limit: 1000}
	for {
		list, err := api.List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list the bench's EndpointSlices: %w", err)
		}
		w.mu.Lock()
		for i := range list.Items {
			if name, ok := strings.CutSuffix(list.Items[i].Name, "-1"); ok {
				w.slices[name] = &list.Items[i]
			}
		}
		w.mu.Unlock()
		if opts.Continue = list.Continue; opts.Continue == "" {
			return nil
		}
	}
}

// slot takes one of the writer's slots, waiting if they are all taken;
// the returned func gives it back.
func (w *writer) slot(ctx context.Context) (func(), error) {
	select {
	case w.slots <- struct{}{}:
	default:
		w.mu.Lock()
		w.queued++
		w.mu.Unlock()
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return func() { <-w.slots }, nil
}

// issue moves the next endpoint of Service i to a fresh address.
func (w *writer) issue(ctx context.Context, i int) (*pending, error) {
	name := svcName(i % w.n)
	api := w.g.client.DiscoveryV1().EndpointSlices(benchNS)
	release, err := w.slot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	w.mu.Lock()
	busy := w.busy[name]
	if busy == nil {
		busy = &sync.Mutex{}
		w.busy[name] = busy
	}
	w.mu.Unlock()
	busy.Lock()
	defer busy.Unlock()
	w.mu.Lock()
	key, ok := w.g.svcKeys[name]
	sl := w.slices[name]
	w.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("service %s was not listed", name)
	}
	if sl == nil {
		if sl, err = api.Get(ctx, name+"-1", metav1.GetOptions{}); err != nil {
			return nil, err
		}
	}
	sl = sl.DeepCopy()
	w.mu.Lock()
	j := w.next[name] % len(sl.Endpoints)
	w.next[name]++
	c := w.g.changes
	w.g.changes++
	w.mu.Unlock()
	port := uint16(*sl.Ports[0].Port)
	pd := &pending{key: key, slice: sl.Name, done: make(chan struct{}),
		old:   netip.AddrPortFrom(netip.MustParseAddr(sl.Endpoints[j].Addresses[0]), port),
		moved: netip.AddrPortFrom(netip.MustParseAddr(changedAddr(c)), port)}
	sl.Endpoints[j].Addresses = []string{pd.moved.Addr().String()}
	out, err := w.update(ctx, sl, pd)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		delete(w.slices, name)
		return nil, fmt.Errorf("update EndpointSlice %s: %w", sl.Name, err)
	}
	w.slices[name], pd.version = out, out.ResourceVersion
	delete(w.want[key], pd.old) // the API's truth from here on
	w.want[key][pd.moved] = 1
	return pd, nil
}

// writeAttempts bounds update's tries of one write.
const writeAttempts = 3

// update writes the slice, timing the change from the start of the last
// try. A write that got no answer from the API server (a TLS handshake or
// a connection that timed out while the host's two cores ran the VM flat
// out) is tried again, up to writeAttempts times; if the lost one did take
// effect, the retry's stale resourceVersion gets a conflict, which ends the
// case as any answer from the API server (a conflict, a validation error)
// does.
func (w *writer) update(ctx context.Context, sl *discovery.EndpointSlice, pd *pending) (*discovery.EndpointSlice, error) {
	api := w.g.client.DiscoveryV1().EndpointSlices(benchNS)
	for attempt := 1; ; attempt++ {
		pd.t0 = time.Now()
		out, err := api.Update(ctx, sl, metav1.UpdateOptions{})
		pd.answered = time.Now()
		var status apierrors.APIStatus
		if err == nil || errors.As(err, &status) || attempt == writeAttempts || ctx.Err() != nil {
			return out, err
		}
		w.mu.Lock()
		w.retries++
		w.mu.Unlock()
	}
}

// errUnseen is runCase's error when some of a case's changes were not
// seen within the cap; the result is complete all the same (Capped).
// Either the process under test never showed them or the seer is broken
// (a key that does not match, the floor's lost lines, a tap that reads
// nothing): for the informer floor and ipvs-proxy it fails the run;
// kube-proxy is known to fall behind, and its cells say so (caseError).
var errUnseen = errors.New("not seen within the cap")

// caseError is runCase's error as a run takes it: kube-proxy's unseen
// changes are a result, every other error fails the run.
func caseError(err error, kubeProxy bool) error {
	if kubeProxy && errors.Is(err, errUnseen) {
		return nil
	}
	return err
}

// runCase makes one case's changes and waits for each to be seen or
// capped; budget > 0 stops issuing new changes once it has passed. A
// change not seen within the cap makes its error errUnseen, unless
// issuing failed.
func (w *writer) runCase(ctx context.Context, c churnCase, s seer, capAfter, budget time.Duration) (CaseResult, error) {
	res := CaseResult{Name: c.Name}
	w.mu.Lock()
	retriedBefore, queuedBefore := w.retries, w.queued
	w.mu.Unlock()
	tr := newTracker(s, capAfter)
	defer tr.stop()
	start := time.Now()
	over := func() bool { return budget > 0 && time.Since(start) > budget }
	var issueErr error
	var resMu sync.Mutex
	fail := func(err error) {
		resMu.Lock()
		if issueErr == nil {
			issueErr = err
		}
		resMu.Unlock()
	}
	unissued := func(k int) {
		resMu.Lock()
		res.Unissued += k
		resMu.Unlock()
	}
	var all []*pending
	var allMu sync.Mutex
	keep := func(pd *pending) {
		allMu.Lock()
		all = append(all, pd)
		allMu.Unlock()
	}
	switch {
	case c.Chains > 0:
		// Chain k owns Service k·stride, so chains never share a slice.
		stride := max(1, w.n/c.Chains)
		var wg sync.WaitGroup
		for k := range c.Chains {
			wg.Go(func() {
				for step := range c.Steps {
					if c.Seconds > 0 && time.Since(start).Seconds() > c.Seconds {
						return // a timed chain: Steps is only its upper bound
					}
					if over() {
						unissued(c.Steps - step)
						return
					}
					pd, err := w.issue(ctx, k*stride)
					if err != nil {
						fail(err)
						return
					}
					keep(pd)
					tr.add(pd)
					<-pd.done
				}
			})
		}
		wg.Wait()
	case c.Rate > 0:
		// Each change is written on its own goroutine at its time, so a
		// slow API round trip under TCG does not lower the rate; IssueS
		// says how long issuing took, and so the rate reached.
		total := int(c.Rate * c.Seconds)
		gap := time.Duration(float64(time.Second) / c.Rate)
		var wg sync.WaitGroup
		for k := range total {
			if over() {
				unissued(total - k)
				break
			}
			if d := time.Until(start.Add(time.Duration(k) * gap)); d > 0 {
				time.Sleep(d)
			}
			wg.Go(func() {
				pd, err := w.issue(ctx, k*7919)
				if err != nil {
					fail(err)
					return
				}
				keep(pd)
				tr.add(pd)
			})
		}
		wg.Wait()
		res.IssueS = time.Since(start).Seconds()
		for _, pd := range all {
			<-pd.done
		}
	}
	res.WallS = time.Since(start).Seconds()
	w.mu.Lock()
	res.Retried, res.Queued = w.retries-retriedBefore, w.queued-queuedBefore
	w.mu.Unlock()
	for _, pd := range all {
		res.Answers = append(res.Answers, pd.answered.Sub(pd.t0).Seconds())
		if pd.capped {
			res.Capped++
		} else {
			res.Latencies = append(res.Latencies, pd.latency)
			res.AfterAnswer = append(res.AfterAnswer, pd.latency-pd.answered.Sub(pd.t0).Seconds())
			if pd.byPoll {
				res.Polled++
			}
			res.Starts = append(res.Starts, unixSeconds(pd.t0))
		}
	}
	if issueErr == nil && res.Capped > 0 {
		issueErr = fmt.Errorf("%d of %d changes %w (%s)", res.Capped, res.Capped+len(res.Latencies), errUnseen, capAfter)
	}
	return res, issueErr
}

// tracker polls the changes on their way until each is seen or capped.
type tracker struct {
	s        seer
	capAfter time.Duration
	mu       sync.Mutex
	open     []*pending
	quit     chan struct{}
	wg       sync.WaitGroup
}

func newTracker(s seer, capAfter time.Duration) *tracker {
	t := &tracker{s: s, capAfter: capAfter, quit: make(chan struct{})}
	t.wg.Go(t.loop)
	return t
}

func (t *tracker) add(pd *pending) {
	t.mu.Lock()
	t.open = append(t.open, pd)
	t.mu.Unlock()
}

func (t *tracker) stop() {
	close(t.quit)
	t.wg.Wait()
}

func (t *tracker) loop() {
	for {
		select {
		case <-t.quit:
			return
		default:
		}
		t.mu.Lock()
		open := t.open
		t.open = nil
		t.mu.Unlock()
		var still []*pending
		for _, pd := range open {
			if at, ok := t.s.seen(pd); ok {
				pd.latency = at.Sub(pd.t0).Seconds()
				close(pd.done)
				continue
			}
			if time.Since(pd.t0) > t.capAfter {
				pd.capped = true
				close(pd.done)
				continue
			}
			still = append(still, pd)
		}
		t.mu.Lock()
		t.open = append(still, t.open...)
		t.mu.Unlock()
		time.Sleep(pollInterval)
	}
}

// goalCase is the churn case a goal compares kube-proxy's CPU share in.
const goalCase = "churn 50/s"

// runCases runs every case against a running proxy, with its CPU and sync
// count per case; kube-proxy's cases each stop issuing after its budget.
// A kube-proxy that showed none of its spaced changes within the cap
// (behind) meets only goalCase: each other case would cost its budget and
// a cap more and show only capped changes.
func (g *guest) runCases(proc *process, n int, want table, kubeProxy, behind bool) ([]CaseResult, error) {
	w := g.newWriter(n, want)
	if err := w.prefetch(context.Background()); err != nil {
		return nil, err
	}
	budget := time.Duration(0)
	if kubeProxy {
		budget = g.p.KubeProxyBudget
	}
	cases := churnCases(g.p, n)
	switch {
	case kubeProxy && behind:
		cases = slices.DeleteFunc(cases, func(c churnCase) bool { return c.Name != goalCase })
	case kubeProxy && g.p.Smoke:
		// kube-proxy takes 10-30 s a sync at 20 Services under TCG: the
		// smoke gives it the open-loop case alone, which its
		// coalescing serves in one or two syncs.
		cases = slices.DeleteFunc(cases, func(c churnCase) bool { return c.Rate == 0 })
	case !kubeProxy && !g.p.Smoke:
		cases = append(cases, acrossResync())
	}
	var out []CaseResult
	for _, c := range cases {
		// Outside the proxy's CPU window: reading the API server's
		// metrics takes the guest a moment.
		api0, apiOK := apiSliceUpdates(g.client)
		cpu0 := readCPU(proc)
		syncs0 := syncCount()
		partial0 := partialSyncs()
		loop0 := loopCPU()
		load0, load0Err := readGuestLoad()
		profiled := func() {}
		if g.p.Profile && !kubeProxy {
			profiled = profileCase(g.work, n, c, g.p.ProfileSeconds)
		}
		begin := time.Now()
		res, err := w.runCase(context.Background(), c, newTapSeer(g), g.p.ChangeCap, budget)
		err = caseError(err, kubeProxy)
		res.setCPU(cpu0, readCPU(proc))
		res.noteGuest(load0, load0Err)
		res.Syncs = syncCount() - syncs0
		if !kubeProxy {
			res.LoopS = loopCPU() - loop0
		}
		// After the case's CPU is read: the last heap profile forces a
		// collection, which is the profile's cost, not the case's.
		profiled()
		res.ServerS = serverMean(g.client, api0, apiOK)
		if c.Name == resyncCaseName {
			res.PartialSyncS = partialSyncs().meanSince(partial0)
		}
		if !kubeProxy {
			// Every case: a periodic resync (every 30 s) falls in a
			// ten-second case about a third of the time, and the report
			// says so where it did.
			var rerr error
			if res.Resyncs, rerr = resyncsIn(proc.log, begin, time.Now()); rerr != nil && err == nil {
				err = rerr
			}
		}
		res.Memory = proc.memory()
		out = append(out, res)
		if err != nil {
			return out, fmt.Errorf("%s: %w", c.Name, err)
		}
		if proc.exited() {
			return out, fmt.Errorf("%s: the proxy exited", c.Name)
		}
		time.Sleep(changeGap) // the next case starts on a quiet proxy
	}
	return out, nil
}

// cpuReading is a process's user and system CPU at one moment, or why it
// could not be read.
type cpuReading struct {
	user, sys float64
	err       error
}

func readCPU(p *process) cpuReading {
	user, sys, err := p.cpuTimes()
	return cpuReading{user: user, sys: sys, err: err}
}

// setCPU records the CPU used between two readings. A reading that failed
// (the process exited, and its /proc entry went with it) leaves CPUS and
// SysS at 0 and says why in CPUError, which the report prints as not
// measured: taken as zero, it would make the case's CPU minus the CPU
// used until then, a share every goal meets.
func (r *CaseResult) setCPU(before, after cpuReading) {
	if err := errors.Join(before.err, after.err); err != nil {
		r.CPUS, r.SysS, r.CPUError = 0, 0, err.Error()
		return
	}
	r.CPUS, r.SysS = after.user+after.sys-before.user-before.sys, after.sys-before.sys
}

// noteGuest records the guest's load since before (read with err); a
// reading that failed leaves it out of the cell, and says why on stderr.
func (r *CaseResult) noteGuest(before guestLoad, err error) {
	now, nowErr := readGuestLoad()
	r.setGuest(before, now, errors.Join(err, nowErr))
}

// setGuest is noteGuest with both readings made; err is either's failure.
func (r *CaseResult) setGuest(before, now guestLoad, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: the guest's load is left out: %v\n", r.Name, err)
		return
	}
	d := now.since(before)
	r.GuestBusyS, r.GuestWaitS, r.GuestCPUs, r.BenchS = d.busyS, d.waitS, d.cpus, d.benchS
}

// loopCPU is ipvs-proxy's sync loop's CPU so far, in seconds; 0 when it
// cannot be read.
func loopCPU() float64 {
	m, err := scrape()
	if err != nil {
		return 0
	}
	v, _ := m.sum(loopCPUMetric)
	return v
}

// syncCount is the proxy's count of syncs so far; 0 when it cannot be read.
func syncCount() int {
	m, err := scrape()
	if err != nil {
		return 0
	}
	v, _ := m.ipv4(syncCountMetric)
	return int(v)
}
