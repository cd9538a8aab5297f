// Package runner owns the sync loop's timing: one goroutine that calls a
// function when asked (Kick) and at least once per maximum interval, like
// kube-proxy's BoundedFrequencyRunner. A Kick while the loop is idle runs
// at once; Kicks during a run are served by one run that starts as soon as
// it ends. Under sustained load a CPU budget spaces the runs (see Limits).
// The function itself decides what a run does (partial sync or full
// resync); the runner only decides when.
package runner

import (
	"context"
	"runtime"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// DefaultBurst is the Burst the daemon uses. At a share of 0.5 a rested
// loop may then run about 4 s back to back (a rollout's burst of changes,
// or a periodic resync of thousands of Services among them) before the
// budget spaces syncs, and one long run leaves at most 4 s of wait.
const DefaultBurst = 2 * time.Second

// Limits are a Runner's timing rules.
type Limits struct {
	// MinInterval is kube-proxy's --ipvs-min-sync-period: the least time
	// from the end of one run to the start of the next, whatever the load.
	// 0 lets a Kick run at once.
	MinInterval time.Duration
	// MaxInterval is the periodic run, measured from the end of the last
	// run; 0 or less turns it off, and a value below MinInterval is raised
	// to MinInterval (kube-proxy panics there; a daemon should not).
	MaxInterval time.Duration
	// MaxShare bounds the share of wall time spent in fn under sustained
	// load: a token bucket that fills at MaxShare seconds per second, up to
	// Burst, and that each run drains by its duration. A run starts only
	// when the bucket is not in debt, so an idle loop runs a Kick at once
	// and a storm is held to MaxShare. 0 or ≥ 1 turns the budget off.
	MaxShare float64
	// Burst is how much run time may go back to back before the budget
	// spaces runs, and also the most debt a run that starts after a quiet
	// spell (full bucket) can leave: a lone long run (the first full sync)
	// delays the next by at most Burst/MaxShare. Runs under load pay in
	// full, so the share holds for long runs too.
	Burst time.Duration
	// Meter, if set, is the CPU time used so far by the calling thread
	// (ThreadCPU); Run then keeps fn on one thread and charges each run
	// the CPU it used there instead of its wall time. A run's wall time
	// also counts the time it waited: for the kernel's IPVS mutex, or
	// for a CPU that other processes held. On a busy node that would
	// throttle the loop for CPU it never used, exactly when changes are
	// slowest already.
	Meter func() time.Duration
	// Report, if set, is told what each run cost and what wait it left,
	// on the loop's goroutine after the run: for the metrics that show an
	// operator the loop's own share of the process's CPU and when the
	// budget holds changes back.
	Report func(RunStats)
}

// RunStats is one run as the runner measured it.
type RunStats struct {
	// CPU is the run's cost: the Meter's CPU time, or its wall time
	// without a Meter.
	CPU time.Duration
	// Charged says the budget paid for it: not the first run, nor one
	// that called Free.
	Charged bool
	// Held is how long the budget makes the next run wait beyond
	// MinInterval (0 while it is not in debt).
	Held time.Duration
}

// Runner calls fn on one goroutine, so fn never runs concurrently with
// itself. Kicks that arrive before a run starts are all served by that run:
// fn reads the latest state, so one run covers any number of changes.
type Runner struct {
	name string
	fn   func()
	lim  Limits
	clk  clock.WithTicker

	// credit is the budget's bucket, as of last.
	credit time.Duration
	last   time.Time
	// free is set by Free during a run.
	free bool

	// kick holds at most one pending request; a full buffer already means
	// "run soon", so Kick can drop its request instead of blocking.
	kick chan struct{}
}

// New makes a Runner for fn.
func New(name string, fn func(), lim Limits, clk clock.WithTicker) *Runner {
	lim.MinInterval = max(lim.MinInterval, 0)
	if lim.MaxInterval > 0 && lim.MaxInterval < lim.MinInterval {
		klog.InfoS("Raising the maximum interval to the minimum", "runner", name, "minInterval", lim.MinInterval, "maxInterval", lim.MaxInterval)
		lim.MaxInterval = lim.MinInterval
	}
	if lim.MaxShare <= 0 || lim.MaxShare >= 1 {
		lim.MaxShare = 0
	}
	lim.Burst = max(lim.Burst, 0)
	return &Runner{
		name:   name,
		fn:     fn,
		lim:    lim,
		clk:    clk,
		credit: lim.Burst,
		last:   clk.Now(),
		kick:   make(chan struct{}, 1),
	}
}

// Kick asks for a run as soon as the limits allow. It never blocks, and
// Kicks before Run starts are kept: the first one makes Run's first run.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run calls fn until ctx is done, and returns then; a run in progress is
// finished first, since fn takes no context.
//
// Run does not call fn when it starts: the first run is on the first Kick
// or after MaxInterval. The caller knows when its state is complete enough
// to sync (informers synced) and kicks then; a run before that would
// program an empty world.
func (r *Runner) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithValues("runner", r.name)
	logger.V(3).Info("Runner starting", "minInterval", r.lim.MinInterval, "maxInterval", r.lim.MaxInterval,
		"maxShare", r.lim.MaxShare, "burst", r.lim.Burst)
	defer logger.V(3).Info("Runner stopped")

	if r.lim.Meter != nil {
		// The thread's CPU time is fn's only while fn cannot move to
		// another thread, and no other goroutine runs on this one.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	next := r.newPeriodic()
	// The first run is not charged: it programs everything once (seconds
	// at thousands of Services), and charging it would hold up the first
	// changes after a start for the same time again.
	first := true
	for {
		select {
		case <-ctx.Done():
			next.stop()
			return
		case <-next.c:
		case <-r.kick:
		}
		next.stop()
		if ctx.Err() != nil {
			// Both were ready and select chose the other; stopping wins.
			return
		}
		// This run serves every Kick made before it starts.
		select {
		case <-r.kick:
		default:
		}
		start, cpu := r.clk.Now(), r.used()
		r.free = false
		r.fn()
		end := r.clk.Now()
		stats := RunStats{CPU: end.Sub(start), Charged: !first && !r.free}
		if r.lim.Meter != nil {
			stats.CPU = r.used() - cpu
		}
		if stats.Charged {
			r.charge(start, end, stats.CPU)
		} else {
			r.refill(end)
			first = false
		}
		wait := r.restFor()
		if r.lim.Report != nil {
			stats.Held = max(0, wait-r.lim.MinInterval)
			r.lim.Report(stats)
		}

		next = r.newPeriodic()
		if !r.rest(ctx, wait) {
			next.stop()
			return
		}
	}
}

// Free, called by fn during a run, leaves that run out of the budget:
// for runs that something else already bounds (the daemon's periodic full
// sync, at most one a sync period), which would otherwise hold up the
// changes behind them by as long again.
func (r *Runner) Free() { r.free = true }

// used is the Meter's reading, or 0 without one.
func (r *Runner) used() time.Duration {
	if r.lim.Meter == nil {
		return 0
	}
	return r.lim.Meter()
}

// charge takes cost, a run's from start to end, out of the budget.
func (r *Runner) charge(start, end time.Time, cost time.Duration) {
	if r.lim.MaxShare == 0 {
		return
	}
	r.refill(start)
	rested := r.credit >= r.lim.Burst
	r.refill(end)
	r.credit -= cost
	if rested {
		r.credit = max(r.credit, -r.lim.Burst)
	}
}

// refill adds what the bucket earned from last to now.
func (r *Runner) refill(now time.Time) {
	if d := now.Sub(r.last); d > 0 {
		r.credit = min(r.lim.Burst, r.credit+time.Duration(float64(d)*r.lim.MaxShare))
	}
	r.last = now
}

// restFor is how long the loop must wait after a run before the next:
// MinInterval, or longer while the budget is in debt.
func (r *Runner) restFor() time.Duration {
	d := r.lim.MinInterval
	if r.lim.MaxShare > 0 && r.credit < 0 {
		d = max(d, time.Duration(float64(-r.credit)/r.lim.MaxShare))
	}
	return d
}

// rest waits d (restFor) after a run; it reports false when ctx ended
// first.
func (r *Runner) rest(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := r.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// periodic is the MaxInterval timer, or a channel that never fires when
// periodic runs are off.
type periodic struct {
	t clock.Timer
	c <-chan time.Time
}

func (r *Runner) newPeriodic() periodic {
	if r.lim.MaxInterval <= 0 {
		return periodic{}
	}
	t := r.clk.NewTimer(r.lim.MaxInterval)
	return periodic{t: t, c: t.C()}
}

func (p periodic) stop() {
	if p.t != nil {
		p.t.Stop()
	}
}
