package runner

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

const (
	minI = time.Second
	maxI = 30 * time.Second
	// bound is how long a test waits for the runner's goroutine to reach
	// a state it must reach; only a broken runner ever waits this long.
	bound = 5 * time.Second
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// harness drives a Runner on a fake clock. fn records the fake time of
// each run, so the runs a test saw read as a list of offsets from epoch.
type harness struct {
	t      *testing.T
	clk    *testingclock.FakeClock
	r      *Runner
	runs   chan time.Duration
	seen   []string
	cancel context.CancelFunc
	done   chan struct{}
}

func newHarness(t *testing.T, minInterval, maxInterval time.Duration) *harness {
	h := &harness{
		t:    t,
		clk:  testingclock.NewFakeClock(epoch),
		runs: make(chan time.Duration, 1000),
		done: make(chan struct{}),
	}
	h.r = New("test", func() { h.runs <- h.clk.Since(epoch) }, Limits{MinInterval: minInterval, MaxInterval: maxInterval}, h.clk)
	return h
}

// start runs the Runner; unless runs are already queued, it waits until the
// runner has armed its periodic timer, so that Steps count from epoch.
func (h *harness) start() {
	queued := len(h.r.kick) > 0
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		h.r.Run(ctx)
	}()
	if !queued {
		h.waitTimers(h.idleTimers())
	}
}

// idleTimers and restingTimers are how many fake timers the runner holds
// while it waits for work and while it rests after a run. Waiting for
// those counts is how a test knows the runner has armed the timers that
// the next Step is meant to fire.
func (h *harness) idleTimers() int {
	if h.r.lim.MaxInterval > 0 {
		return 1
	}
	return 0
}

func (h *harness) restingTimers() int {
	if h.r.lim.MinInterval > 0 {
		return h.idleTimers() + 1
	}
	return h.idleTimers()
}

func (h *harness) waitTimers(n int) {
	h.t.Helper()
	deadline := time.Now().Add(bound)
	for h.clk.Waiters() != n {
		if time.Now().After(deadline) {
			h.t.Fatalf("runner holds %d timers, want %d", h.clk.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// stop cancels Run, waits for it to return and records any run the script
// did not await, so an unexpected run shows in the result.
func (h *harness) stop() string {
	h.t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(bound):
		h.t.Fatal("Run did not return after its context was cancelled")
	}
	for {
		select {
		case d := <-h.runs:
			h.seen = append(h.seen, "unexpected:"+d.String())
		default:
			return strings.Join(h.seen, " ")
		}
	}
}

// op is one step of a script.
type op func(h *harness)

func kick(n int) op {
	return func(h *harness) {
		for range n {
			h.r.Kick()
		}
	}
}

func step(d time.Duration) op {
	return func(h *harness) { h.clk.Step(d) }
}

// await waits for one run and then for the runner to arm its timers
// after it. A kick still queued then (the scripts make none during a run)
// would cause a run nobody asked for; it shows as "+kick" after the run.
func await() op {
	return func(h *harness) {
		h.t.Helper()
		var d time.Duration
		select {
		case d = <-h.runs:
		case <-time.After(bound):
			h.t.Fatalf("no run within %v; runs so far: %v", bound, h.seen)
		}
		h.waitTimers(h.restingTimers())
		s := d.String()
		if len(h.r.kick) > 0 {
			s += "+kick"
		}
		h.seen = append(h.seen, s)
	}
}

func TestSchedule(t *testing.T) {
	cases := []struct {
		name          string
		minInterval   time.Duration
		maxInterval   time.Duration
		kickBeforeRun int
		script        []op
		// want is the fake time of each run, from the start.
		want string
	}{{
		name:        "no run at start, nor without kicks before maxInterval",
		minInterval: minI, maxInterval: maxI,
		script: []op{step(maxI - time.Millisecond)},
		want:   "",
	}, {
		name:        "periodic runs every maxInterval without kicks",
		minInterval: minI, maxInterval: maxI,
		script: []op{step(maxI), await(), step(maxI), await(), step(maxI), await()},
		want:   "30s 1m0s 1m30s",
	}, {
		name:        "first kick runs at once",
		minInterval: minI, maxInterval: maxI,
		script: []op{step(5 * time.Second), kick(1), await()},
		want:   "5s",
	}, {
		name:        "kicks before Run are kept and coalesced",
		minInterval: minI, maxInterval: maxI,
		kickBeforeRun: 100,
		script:        []op{await(), step(maxI), await()},
		want:          "0s 30s",
	}, {
		name:        "a burst of 100 kicks while resting makes one run, when the rest ends",
		minInterval: minI, maxInterval: maxI,
		script: []op{
			kick(1), await(),
			kick(100), step(minI - time.Millisecond), step(time.Millisecond), await(),
			// Nothing pending now: the next run is the periodic one,
			// maxInterval after the last run.
			step(minI), step(maxI - minI), await(),
		},
		want: "0s 1s 31s",
	}, {
		name:        "a kick right after a run waits for minInterval",
		minInterval: minI, maxInterval: maxI,
		script: []op{
			kick(1), await(),
			kick(1), step(minI / 2), step(minI / 2), await(),
		},
		want: "0s 1s",
	}, {
		name:        "a kick after the rest runs at once; the period restarts after each run",
		minInterval: minI, maxInterval: maxI,
		script: []op{
			kick(1), await(),
			step(5 * time.Second), kick(1), await(),
			step(maxI - time.Second), step(time.Second), await(),
		},
		want: "0s 5s 35s",
	}, {
		name:        "a kick pending when the rest and the period end together is served by that run",
		minInterval: minI, maxInterval: maxI,
		script: []op{
			kick(1), await(),
			kick(1), step(maxI), await(),
			// The kick is served; the next run is periodic.
			step(minI), step(maxI - minI), await(),
		},
		want: "0s 30s 1m0s",
	}, {
		name:        "maxInterval below minInterval is raised to it",
		minInterval: 2 * time.Second, maxInterval: time.Second,
		script: []op{step(time.Second), step(time.Second), await()},
		want:   "2s",
	}, {
		name:        "maxInterval 0 turns periodic runs off",
		minInterval: minI, maxInterval: 0,
		script: []op{step(24 * time.Hour), kick(1), await(), step(24 * time.Hour), kick(1), await()},
		want:   "24h0m0s 48h0m0s",
	}, {
		name:        "minInterval 0 runs every kick",
		minInterval: 0, maxInterval: maxI,
		script: []op{kick(1), await(), kick(1), await(), step(maxI), await()},
		want:   "0s 0s 30s",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.minInterval, tc.maxInterval)
			kick(tc.kickBeforeRun)(h)
			h.start()
			for _, o := range tc.script {
				o(h)
			}
			if got := h.stop(); got != tc.want {
				t.Errorf("runs at\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

// TestKickDuringRun holds fn inside a run while kicks arrive: they make one
// more run, after minInterval, and never a second fn at the same time.
func TestKickDuringRun(t *testing.T) {
	clk := testingclock.NewFakeClock(epoch)
	started := make(chan time.Duration, 10)
	release := make(chan struct{})
	var inFlight, overlaps atomic.Int32
	fn := func() {
		if inFlight.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inFlight.Add(-1)
		started <- clk.Since(epoch)
		<-release
	}
	h := &harness{t: t, clk: clk, done: make(chan struct{})}
	h.r = New("test", fn, Limits{MinInterval: minI, MaxInterval: maxI}, clk)
	h.runs = make(chan time.Duration) // unused: fn reports on started
	h.start()

	h.r.Kick()
	if d := <-started; d != 0 {
		t.Fatalf("first run at %v, want 0s", d)
	}
	// fn holds the loop and no timer is armed: kicks only fill the queue.
	h.waitTimers(0)
	for range 50 {
		h.r.Kick()
	}
	release <- struct{}{}
	h.waitTimers(h.restingTimers())
	clk.Step(minI)
	select {
	case d := <-started:
		if d != minI {
			t.Errorf("second run at %v, want %v", d, minI)
		}
	case <-time.After(bound):
		t.Fatal("kicks made during a run did not cause another run")
	}
	release <- struct{}{}
	h.waitTimers(h.restingTimers())
	h.stop()
	if n := len(started); n != 0 {
		t.Errorf("%d runs more than expected", n)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("fn ran concurrently with itself %d times", n)
	}
}

// TestStop cancels Run in each state it can wait in.
func TestStop(t *testing.T) {
	cases := []struct {
		name   string
		script []op
	}{
		{"idle", nil},
		{"resting after a run", []op{kick(1), await()}},
		{"resting with a kick pending", []op{kick(1), await(), kick(1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, minI, maxI)
			h.start()
			for _, o := range tc.script {
				o(h)
			}
			before := len(h.seen)
			got := h.stop() // fails the test if Run does not return
			if strings.Contains(got, "unexpected") {
				t.Errorf("runs %q, of which %d were expected", got, before)
			}
			if n := h.clk.Waiters(); n != 0 {
				t.Errorf("Run left %d timers armed", n)
			}
		})
	}
}

// The daemon's defaults: no minimum gap, half a CPU under load.
var defaults = Limits{MaxInterval: maxI, MaxShare: 0.5, Burst: DefaultBurst}

// busyRunner runs fn on a fake clock; each run takes runTime of fake time
// (fn steps the clock), reports its start, and then blocks until the test
// releases it unless free.
type busyRunner struct {
	clk     *testingclock.FakeClock
	r       *Runner
	started chan time.Duration
	release chan struct{}
	done    chan struct{}
}

func startBusy(t *testing.T, lim Limits, runTime time.Duration, block bool, onRun func(*Runner)) *busyRunner {
	t.Helper()
	b := &busyRunner{clk: testingclock.NewFakeClock(epoch), started: make(chan time.Duration, 10000),
		release: make(chan struct{}), done: make(chan struct{})}
	stopping := make(chan struct{})
	b.r = New("test", func() {
		select {
		case b.started <- b.clk.Since(epoch):
		case <-stopping:
			return
		}
		b.clk.Step(runTime)
		if onRun != nil {
			onRun(b.r)
		}
		if block {
			<-b.release
		}
	}, lim, b.clk)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(b.done)
		b.r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		close(stopping)
		close(b.release)
		<-b.done
	})
	return b
}

// kickFirst makes the first run, which starts at once.
func (b *busyRunner) kickFirst(t *testing.T) {
	t.Helper()
	b.r.Kick()
	if got := b.next(t); got != 0 {
		t.Fatalf("first run at %v, want 0s", got)
	}
}

func (b *busyRunner) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-b.started:
		return d
	case <-time.After(bound):
		t.Fatal("no run")
		return 0
	}
}

// TestIdleChangeRunsAtOnce: with the defaults, a change that finds the
// loop idle starts a run at that instant, however soon after the last run
// it comes, as long as the loop is not under sustained load.
func TestIdleChangeRunsAtOnce(t *testing.T) {
	const runTime = 5 * time.Millisecond
	b := startBusy(t, defaults, runTime, false, nil)
	at := time.Duration(0)
	for i, gap := range []time.Duration{0, time.Millisecond, 20 * time.Millisecond, time.Second, 0} {
		b.clk.Step(gap)
		at += gap
		b.r.Kick()
		if got := b.next(t); got != at {
			t.Fatalf("change %d, made at %v: run started at %v", i, at, got)
		}
		at += runTime
		// The run has returned once the periodic timer is armed again;
		// a rest timer would be a second waiter.
		waitWaiters(t, b.clk, 1)
	}
}

// TestStormIsCoalesced: changes that arrive during a run make exactly one
// more run, which starts the moment the first ends, with no timer between.
func TestStormIsCoalesced(t *testing.T) {
	const runTime = 50 * time.Millisecond
	b := startBusy(t, defaults, runTime, true, nil)
	b.kickFirst(t)
	for range 1000 {
		b.r.Kick()
	}
	b.release <- struct{}{}
	if got := b.next(t); got != runTime {
		t.Errorf("the storm's run started at %v, want %v (right after the first)", got, runTime)
	}
	b.release <- struct{}{}
	waitWaiters(t, b.clk, 1)
	b.clk.Step(maxI - time.Nanosecond)
	select {
	case d := <-b.started:
		t.Errorf("a third run at %v: the storm was not coalesced into one", d)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestCPUBoundHolds keeps the loop under load (every run is followed by
// another change) for 40 s of fake time: the share of time spent in runs
// stays within MaxShare plus the one Burst a rested loop may spend, and
// the bound does not throttle far below MaxShare either.
func TestCPUBoundHolds(t *testing.T) {
	for _, runTime := range []time.Duration{10 * time.Millisecond, 200 * time.Millisecond, 3 * time.Second} {
		t.Run(runTime.String(), func(t *testing.T) {
			b := startBusy(t, defaults, runTime, false, func(r *Runner) { r.Kick() })
			const span = 40 * time.Second
			const quantum = 5 * time.Millisecond
			b.r.Kick()
			runs := 0
			var first, last time.Duration
			for now := time.Duration(0); now < span; {
				// Drain the runs made so far, then wait until the loop
				// rests (a periodic and a rest timer) and step.
				waitWaiters(t, b.clk, 2)
				b.drain(&runs, &first, &last)
				b.clk.Step(quantum)
				now = b.clk.Since(epoch)
			}
			busy := time.Duration(runs) * runTime
			wall := last + runTime - first
			share := float64(busy) / float64(wall)
			// Stepping in quanta only lengthens rests, so the slack is
			// the first run, which is free, and the one Burst a rested
			// loop may spend at once.
			limit := defaults.MaxShare + float64(defaults.Burst+runTime)/float64(wall) + 0.01
			t.Logf("%d runs of %v in %v: share %.3f (limit %.3f)", runs, runTime, wall, share, limit)
			if share > limit {
				t.Errorf("runs took %.3f of the time, over the bound of %.3f", share, limit)
			}
			if share < defaults.MaxShare*0.8 {
				t.Errorf("runs took %.3f of the time: the budget throttles far below its share of %.2f", share, defaults.MaxShare)
			}
		})
	}
}

func waitWaiters(t *testing.T, clk *testingclock.FakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for clk.Waiters() != n {
		if time.Now().After(deadline) {
			t.Fatalf("runner holds %d timers, want %d", clk.Waiters(), n)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// TestFirstRunIsFree: the first run (the cold start's full sync) is not
// charged, so a change right behind it runs at once however long it took.
func TestFirstRunIsFree(t *testing.T) {
	const runTime = 10 * time.Second
	b := startBusy(t, defaults, runTime, false, nil)
	b.kickFirst(t)
	waitWaiters(t, b.clk, 1)
	b.r.Kick()
	if got := b.next(t); got != runTime {
		t.Errorf("the change after the first run started at %v, want %v", got, runTime)
	}
}

// TestFreeRunIsNotCharged: a run that calls Free (the daemon's periodic
// resync) leaves no debt, so a change right behind it runs at once; the
// same run charged makes it wait.
func TestFreeRunIsNotCharged(t *testing.T) {
	const runTime = 5 * time.Second
	for _, free := range []bool{true, false} {
		t.Run(fmt.Sprint("free=", free), func(t *testing.T) {
			var runs atomic.Int32
			b := startBusy(t, defaults, runTime, false, func(r *Runner) {
				if runs.Add(1) == 2 && free {
					r.Free()
				}
			})
			b.kickFirst(t)
			waitWaiters(t, b.clk, 1)
			b.r.Kick() // the long second run
			if got := b.next(t); got != runTime {
				t.Fatalf("second run at %v, want %v", got, runTime)
			}
			if free {
				waitWaiters(t, b.clk, 1)
				b.r.Kick()
				if got := b.next(t); got != 2*runTime {
					t.Errorf("the change after a free run started at %v, want %v", got, 2*runTime)
				}
				return
			}
			waitWaiters(t, b.clk, 2) // resting: the run was charged
		})
	}
}

// TestMeterChargesCPU: with a Meter, a run is charged the CPU it used,
// not its wall time. Runs that wait most of their time (a contended
// kernel mutex, a busy node) run back to back under sustained load,
// while runs that use their whole time are still held to MaxShare.
func TestMeterChargesCPU(t *testing.T) {
	const runTime = 200 * time.Millisecond
	for _, c := range []struct {
		cpu          time.Duration // of each run's runTime
		minWallShare float64
	}{
		{cpu: runTime / 10, minWallShare: 0.95},
		{cpu: runTime, minWallShare: 0.4},
	} {
		t.Run(c.cpu.String(), func(t *testing.T) {
			var used atomic.Int64
			lim := defaults
			lim.Meter = func() time.Duration { return time.Duration(used.Load()) }
			b := startBusy(t, lim, runTime, false, func(r *Runner) {
				used.Add(int64(c.cpu))
				r.Kick()
			})
			const span = 20 * time.Second
			b.r.Kick()
			runs := 0
			var first, last time.Duration
			for now := time.Duration(0); now < span; {
				// Drain the runs so far; step once the loop waits for a
				// timer (the periodic one, and a rest if it is in debt).
				deadline := time.Now().Add(bound)
				for b.clk.Waiters() == 0 || len(b.started) == 0 && b.clk.Waiters() < 2 && time.Now().Before(deadline) {
					if len(b.started) > 0 {
						break
					}
					time.Sleep(50 * time.Microsecond)
				}
				b.drain(&runs, &first, &last)
				if b.clk.Waiters() >= 2 {
					b.clk.Step(5 * time.Millisecond)
				}
				now = b.clk.Since(epoch)
			}
			wall := last + runTime - first
			wallShare := float64(time.Duration(runs)*runTime) / float64(wall)
			chargeShare := float64(time.Duration(runs)*c.cpu) / float64(wall)
			t.Logf("%d runs: %.2f of the wall time in runs, %.2f charged", runs, wallShare, chargeShare)
			if wallShare < c.minWallShare {
				t.Errorf("runs took %.2f of the wall time, want at least %.2f", wallShare, c.minWallShare)
			}
			// As in TestCPUBoundHolds: the first run is free, and a
			// rested loop may spend one Burst at once.
			if limit := lim.MaxShare + float64(lim.Burst+runTime)/float64(wall) + 0.01; chargeShare > limit {
				t.Errorf("runs used %.2f of a CPU, want at most %.2f", chargeShare, limit)
			}
		})
	}
}

// drain counts the runs started so far, keeping the first's and the
// last's start.
func (b *busyRunner) drain(runs *int, first, last *time.Duration) {
	for len(b.started) > 0 {
		d := <-b.started
		if *runs == 0 {
			*first = d
		}
		*last = d
		*runs++
	}
}

// TestReport: each run's cost, whether the budget paid for it, and the
// wait the budget then adds, as the daemon's metrics get them. Runs of 1 s
// of CPU back to back at a share of 0.5 with a 2 s burst: the first is
// free, the rested bucket pays the next three, and from the fifth on each
// leaves a debt that holds the loop for the time the bucket needs to
// refill (debt / share).
func TestReport(t *testing.T) {
	const runTime = time.Second
	var used atomic.Int64
	reports := make(chan RunStats, 100)
	lim := defaults
	lim.Meter = func() time.Duration { return time.Duration(used.Load()) }
	lim.Report = func(s RunStats) { reports <- s }
	b := startBusy(t, lim, runTime, false, func(r *Runner) {
		used.Add(int64(runTime))
		r.Kick()
	})
	b.r.Kick()
	var got []string
	for len(got) < 6 {
		select {
		case s := <-reports:
			got = append(got, fmt.Sprintf("cpu=%v charged=%v held=%v", s.CPU, s.Charged, s.Held))
		case <-time.After(bound):
			t.Fatalf("no report within %v; so far:\n%s", bound, strings.Join(got, "\n"))
		}
		if len(got) >= 5 {
			// Resting on the budget: the next run needs the clock.
			waitWaiters(t, b.clk, 2)
			b.clk.Step(10 * time.Second)
		}
	}
	want := strings.Join([]string{
		"cpu=1s charged=false held=0s",
		"cpu=1s charged=true held=0s",
		"cpu=1s charged=true held=0s",
		"cpu=1s charged=true held=0s",
		"cpu=1s charged=true held=1s",
		"cpu=1s charged=true held=0s",
	}, "\n")
	if g := strings.Join(got, "\n"); g != want {
		t.Errorf("reports:\n%s\nwant:\n%s", g, want)
	}
}
