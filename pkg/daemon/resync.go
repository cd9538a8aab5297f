package daemon

import (
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// The periodic resync reads the whole kernel, which takes seconds at
// thousands of Services (in the test VM at 5,000: 2.5 s for IPVS, 2 s for
// the sets). So it reads on its own goroutine while the sync loop goes on
// with endpoint changes (see proxier.BeginRead). Rebuilding and diffing
// every Service then takes seconds too, so it runs in steps of about one
// change-by-change sync (stepBudget, proxier.Resync): a change that comes
// during a step is synced right after that step, before the next, and
// waits for one step at most.
// Between steps the loop rests as long as the step took (restBetweenSteps),
// and a change that comes then is synced at once.
// The first sync, and the one after a failed write, read and sync in one
// go in the loop: nothing else runs then.

// resyncStep is the most time a resync step may take before the loop looks
// for changes, and minResyncStep the least. Within them a step takes what
// the recent change-by-change syncs took (stepBudget), so that a change
// that comes during a resync waits for about one more such sync: the
// goal the bench holds the resync to. A fixed 10 ms had been about one
// such sync at thousands of Services in the test VM, until they got
// cheaper (3.4-4.7 ms in runs at 5,000 and 10,000 Services): then a
// change that came during a step waited for more than one, and the
// changes across a resync missed the goal's median by 0.9 ms in a run
// at 5,000.
const (
	resyncStep    = 10 * time.Millisecond
	minResyncStep = 2 * time.Millisecond
)

// noteChangeSync adds one change-by-change sync's duration to the moving
// average stepBudget follows (an eighth of the way to it).
func (d *daemon) noteChangeSync(took time.Duration) {
	if d.changeSync == 0 {
		d.changeSync = took
		return
	}
	d.changeSync += (took - d.changeSync) / 8
}

// stepBudget is a resync step's budget: what the recent change-by-change
// syncs took, within [minResyncStep, resyncStep]; resyncStep before any.
func (d *daemon) stepBudget() time.Duration {
	if d.changeSync == 0 {
		return resyncStep
	}
	return min(resyncStep, max(minResyncStep, d.changeSync))
}

// startRead starts a periodic resync's read, unless one is under way.
func (d *daemon) startRead() {
	if d.reading != nil || d.resync != nil {
		return
	}
	d.relaxGC()
	d.Proxier.BeginRead()
	d.readStart = d.Clock.Now()
	ch := make(chan resyncRead, 1)
	d.reading = ch
	runInBackground(func() {
		// The Services are read here too, after the kernel: gathering
		// thousands of them with their slices, putting them in name
		// order and indexing them took the sync loop hundreds of
		// milliseconds in the test VM, in one piece, before the first
		// step.
		r := resyncRead{snap: d.Proxier.ReadKernel()}
		if all, err := d.src.All(); err != nil {
			r.err = err
		} else {
			r.inputs = proxier.PrepareInputs(all)
		}
		ch <- r
		d.kick() // the resync begins at the next sync
	})
}

// resyncRead is what a periodic resync's read delivers: the kernel, and
// every Service (err if the cache could not be read).
type resyncRead struct {
	snap   proxier.Snapshot
	inputs proxier.Inputs
	err    error
}

// takeRead returns the read started by startRead, if it is done.
func (d *daemon) takeRead() (resyncRead, bool) {
	if d.reading == nil {
		return resyncRead{}, false
	}
	select {
	case r := <-d.reading:
		d.reading = nil
		return r, true
	default:
		return resyncRead{}, false
	}
}

// resyncRun is a resync in steps with what the daemon keeps about it.
type resyncRun struct {
	*proxier.Resync
	// inputs are the Services it began with, for the Events of its steps.
	inputs proxier.Inputs
	// start is when its kernel read began, begun when the read ended: the
	// resync's log line gives both, so that what it cost the changes
	// meanwhile can be told from its whole span.
	start, begun time.Time
	steps        int
	errors       int
}

// beginResync starts the resync of every Service from a read.
func (d *daemon) beginResync(read resyncRead) {
	if read.err != nil {
		klog.ErrorS(read.err, "Cannot read Services from the cache")
		d.needFull = true
		d.resyncOver()
		return
	}
	run := &resyncRun{inputs: read.inputs, start: d.readStart, begun: d.Clock.Now()}
	run.Resync = d.Proxier.BeginResync(read.inputs, read.snap)
	d.resync = run
}

// stepResync runs resync steps until the resync is done or a change is
// waiting; then the change goes first, and the next run steps again.
func (d *daemon) stepResync() {
	d.stepTurn = false
	run := d.resync
	for {
		start := d.Clock.Now()
		done, res := run.Step(d.stepBudget())
		took := d.Clock.Since(start)
		run.steps++
		run.errors += len(res.Errors)
		inputs := make(map[types.NamespacedName]*model.ServiceInput, len(res.Synced))
		for _, n := range res.Synced {
			inputs[n] = run.inputs.Get(n)
		}
		d.finish(start, nil, inputs, res, true)
		if done {
			if !res.Aborted {
				d.fullDone(run.errors == 0)
			}
			klog.V(2).InfoS("Resync done", "services", run.inputs.Len(), "steps", run.steps, "errors", run.errors,
				"read", run.begun.Sub(run.start), "took", d.Clock.Since(run.start))
			d.resync = nil
			d.resyncOver()
			return
		}
		if d.needFull {
			return // the next run syncs everything, which voids this resync
		}
		restBetweenSteps(d, took)
		if d.changes.Waiting() {
			d.kick()
			return
		}
	}
}

// restBetweenSteps rests the loop after a resync step for as long as the
// step took, at most resyncStep, or until a change is queued, whichever
// comes first: the goroutines that carry a change to the queue (the
// watch's, the informer's, the handler's) and the collector's workers
// then have the loop's processor and vCPU to themselves half the time,
// and a change queued meanwhile is synced at once. The resync then lasts
// longer: at 10,000 Services in the test VM its steps took 2.5-7.6 s
// after the read, against 1.3-2.4 s without the rests.
//
// Stepped back to back with only a yield (runtime.Gosched) between steps,
// they kept a vCPU of the test VM for a second and more at 10,000
// Services, and a change's event came to the queue late while they ran:
// 188 ms against a median of 56, as eight steps ran, none of them over
// 24 ms. Tests stand in for it.
var restBetweenSteps = func(d *daemon, step time.Duration) {
	select {
	case <-d.queuedSignal: // a signal from before this rest: the check below tells
	default:
	}
	if d.changes.Waiting() {
		return
	}
	t := d.Clock.NewTimer(min(step, resyncStep))
	defer t.Stop()
	select {
	case <-d.queuedSignal:
	case <-t.C():
	}
}
