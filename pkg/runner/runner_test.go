package runner

import (
	"context"
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
	h.r = New("test", func() { h.runs <- h.clk.Since(epoch) }, minInterval, maxInterval, h.clk)
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
	if h.r.maxInterval > 0 {
		return 1
	}
	return 0
}

func (h *harness) restingTimers() int {
	if h.r.minInterval > 0 {
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
	h.r = New("test", fn, minI, maxI, clk)
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
