// Package runner owns the sync loop's timing: one goroutine that calls a
// function when asked (Kick), never more often than a minimum interval and
// at least once per maximum interval, like kube-proxy's
// BoundedFrequencyRunner. The function itself decides what a run does
// (partial sync or full resync); the runner only decides when.
package runner

import (
	"context"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Runner calls fn on one goroutine, so fn never runs concurrently with
// itself. Kicks that arrive before a run starts are all served by that run:
// fn reads the latest state, so one run covers any number of changes.
type Runner struct {
	name        string
	fn          func()
	minInterval time.Duration
	maxInterval time.Duration
	clk         clock.WithTicker

	// kick holds at most one pending request; a full buffer already means
	// "run soon", so Kick can drop its request instead of blocking.
	kick chan struct{}
}

// New makes a Runner for fn. minInterval is measured from the end of one run
// to the start of the next, so a sync slower than minInterval still leaves
// the machine minInterval of rest. maxInterval is the periodic resync,
// measured from the end of the last run; 0 or less turns it off, and a
// value below minInterval is raised to minInterval (kube-proxy panics
// there; a daemon should not).
func New(name string, fn func(), minInterval, maxInterval time.Duration, clk clock.WithTicker) *Runner {
	if minInterval < 0 {
		minInterval = 0
	}
	if maxInterval > 0 && maxInterval < minInterval {
		klog.InfoS("Raising the maximum interval to the minimum", "runner", name, "minInterval", minInterval, "maxInterval", maxInterval)
		maxInterval = minInterval
	}
	return &Runner{
		name:        name,
		fn:          fn,
		minInterval: minInterval,
		maxInterval: maxInterval,
		clk:         clk,
		kick:        make(chan struct{}, 1),
	}
}

// Kick asks for a run as soon as minInterval allows. It never blocks, and
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
// or after maxInterval. The caller knows when its state is complete enough
// to sync (informers synced) and kicks then; a run before that would
// program an empty world.
func (r *Runner) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithValues("runner", r.name)
	logger.V(3).Info("Runner starting", "minInterval", r.minInterval, "maxInterval", r.maxInterval)
	defer logger.V(3).Info("Runner stopped")

	next := r.newPeriodic()
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
		r.fn()

		next = r.newPeriodic()
		if !r.rest(ctx) {
			next.stop()
			return
		}
	}
}

// rest waits minInterval after a run; it reports false when ctx ended first.
func (r *Runner) rest(ctx context.Context) bool {
	if r.minInterval <= 0 {
		return ctx.Err() == nil
	}
	t := r.clk.NewTimer(r.minInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// periodic is the maxInterval timer, or a channel that never fires when
// periodic runs are off.
type periodic struct {
	t clock.Timer
	c <-chan time.Time
}

func (r *Runner) newPeriodic() periodic {
	if r.maxInterval <= 0 {
		return periodic{}
	}
	t := r.clk.NewTimer(r.maxInterval)
	return periodic{t: t, c: t.C()}
}

func (p periodic) stop() {
	if p.t != nil {
		p.t.Stop()
	}
}
