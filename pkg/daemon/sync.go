package daemon

import (
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// EventReason is the reason of the Events ipvs-proxy puts on a Service
// whose input it had to skip in part.
const EventReason = "IPVSProxySkipped"

// sync runs on the runner's goroutine only. A run is a full sync, a
// change-by-change sync, or steps of a periodic resync (see resync.go);
// it reports whether it was other than change by change, which the runner
// then does not charge to its budget.
func (d *daemon) sync() (free bool) {
	start := d.Clock.Now()
	d.restoreGC()
	if zone, changed := d.takeZone(); changed {
		d.Proxier.SetZone(zone)
		d.needFull = true
	}
	if d.needFull {
		d.syncAll(start)
		return true
	}
	if r, read := d.takeRead(); read {
		d.beginResync(r)
	}
	if d.resync != nil && (d.stepTurn || !d.changes.Waiting()) {
		d.stepResync()
		return true
	}
	if start.Sub(d.lastFull) >= d.SyncPeriod {
		d.startRead()
	}
	d.syncChanges(start)
	if d.resync != nil {
		// The resync goes on in the next run, whatever comes meanwhile.
		d.stepTurn = true
		d.kick()
	}
	return false
}

// syncAll lists the kernel and syncs every Service, in the loop: at start,
// after a write that belongs to no one Service failed, and when the node's
// zone changed. A resync or a read under way is void: it would miss what
// this sync writes.
func (d *daemon) syncAll(start time.Time) {
	names := d.takeHeld(d.changes.Take())
	all, err := d.src.All()
	if err != nil {
		klog.ErrorS(err, "Cannot read Services from the cache")
		d.holdChanges(names)
		return
	}
	inputs := make(map[types.NamespacedName]*model.ServiceInput, len(all))
	for i := range all {
		inputs[types.NamespacedName{Namespace: all[i].Service.Namespace, Name: all[i].Service.Name}] = &all[i]
	}
	// The first full sync waits for the rules (see startRules).
	ruleErrs := d.waitFirstRules()
	// stepTurn too: left set by the voided resync, it would make the next
	// resync's first run step although a change was waiting.
	d.reading, d.resync, d.needFull, d.stepTurn = nil, nil, false, false
	d.resyncOver()
	res := d.Proxier.SyncAll(all)
	res.Errors = append(res.Errors, ruleErrs...)
	d.finish(start, names, inputs, res, true)
	if res.Aborted {
		// It synced no Service: one missing from it is not gone.
		return
	}
	// A Service missing from a full sync is gone.
	for n := range d.reported {
		if _, ok := inputs[n]; !ok {
			delete(d.reported, n)
		}
	}
	d.fullDone(len(res.Errors) == 0)
}

// holdChanges keeps the changes a full sync took from the queue but did
// not program for the next full sync (takeHeld), which comes next: the
// sync that failed left needFull set. That sync then observes their
// programming latency. Put back on the queue (Changes.Mark), they would
// kick the runner: with the default minimum sync period of 0, and full
// syncs free of the CPU budget, a kernel that cannot be read would have
// the loop retry at once, again and again.
func (d *daemon) holdChanges(names []types.NamespacedName) {
	if len(names) == 0 {
		return
	}
	if d.held == nil {
		d.held = make(map[types.NamespacedName]bool, len(names))
	}
	for _, n := range names {
		d.held[n] = true
	}
}

// takeHeld adds the held changes (holdChanges) to names, the changes
// taken from the queue, each Service once, and forgets them.
func (d *daemon) takeHeld(names []types.NamespacedName) []types.NamespacedName {
	if len(d.held) == 0 {
		return names
	}
	for _, n := range names {
		delete(d.held, n)
	}
	for n := range d.held {
		names = append(names, n)
	}
	d.held = nil
	return names
}

// syncChanges syncs the Services changed since the last run.
func (d *daemon) syncChanges(start time.Time) {
	names := d.changes.Take()
	inputs := make(map[types.NamespacedName]*model.ServiceInput, len(names))
	for _, n := range names {
		in, err := d.src.Input(n)
		if err != nil {
			klog.ErrorS(err, "Cannot read Service from the cache", "service", n)
			d.changes.Mark(n)
			continue
		}
		inputs[n] = in
	}
	d.finish(start, names, inputs, d.Proxier.SyncServices(inputs), false)
	if len(names) > 0 {
		d.noteChangeSync(d.Clock.Since(start))
	}
}

// fullDone is the end of a full sync or a resync that did not abort.
func (d *daemon) fullDone(clean bool) {
	// The period runs from the end of the full sync: one slower than the
	// period (iptables on a loaded node) must not make every following
	// sync a full one, holding up endpoint changes.
	d.lastFull = d.Clock.Now()
	if !clean {
		return
	}
	// What it took over from kube-proxy is in the record now.
	d.Proxier.AdoptNodePorts = false
	if d.AfterFirstSync != nil {
		// On its own goroutine: kube-proxy's leftovers are removed with
		// iptables and ipset execs, seconds on a loaded node, and the
		// changes queued meanwhile must not wait for them.
		go d.AfterFirstSync()
		d.AfterFirstSync = nil
	}
}

// finish handles what a sync did: drains, health checks, retries, metrics,
// health, Events. names are the changes it served (for the programming
// latency), inputs the Services it synced; full says it was a full sync
// or a resync step.
//
// An aborted sync (res.Aborted: the kernel could not be read, or the dummy
// link made) wrote nothing and synced none of inputs: it must not clear
// their failures (the failing set, the metric, the retry backoff) nor
// their reported problems (report would forget them, and the next good
// sync would log and Event them again), and names are not programmed, so
// it holds them (holdChanges) instead of observing their latency. What
// does not depend on Services having been synced still runs: the health
// checks (a port that could not be opened is retried at every sync, and
// the proxier's are unchanged), the attempt's metrics (its duration and
// its error count; a sync with errors does not set the last-sync time),
// the pending and no-local-endpoint gauges. /healthz is not told of a
// sync (Health.Updated), so a kernel that stays unreadable turns it to
// 503.
func (d *daemon) finish(start time.Time, names []types.NamespacedName, inputs map[types.NamespacedName]*model.ServiceInput, res proxier.Result, full bool) {
	d.recheckDrains(res.Draining)
	if res.HealthChecksChanged || d.hcFailed {
		d.syncHealthChecks()
	}
	for _, w := range res.Warnings {
		klog.InfoS("Conntrack clean-up failed; stale UDP flows expire on their own", "err", w)
	}
	elapsed := d.Clock.Since(start)
	for _, err := range res.Errors {
		if res.Aborted {
			klog.ErrorS(err, "Sync aborted: nothing was written; the next sync lists the kernel whole", "full", full, "heldChanges", len(names))
		} else {
			klog.ErrorS(err, "Kernel write failed; retrying")
		}
	}
	// A failed write that belongs to no one Service leaves the kernel in a
	// state we no longer know: the next sync lists it whole. One that
	// belongs to a Service is retried for that Service alone.
	if res.NodeWide || res.Aborted {
		d.needFull = true
	}
	if res.Aborted {
		d.holdChanges(names)
	} else {
		synced := make(map[types.NamespacedName]bool, len(inputs)+len(res.Changed))
		for n := range inputs {
			synced[n] = true
		}
		for _, n := range res.Changed {
			synced[n] = true
		}
		d.retryFailed(synced, res.Failed)
	}
	noLocal := d.Proxier.NoLocalEndpoints()
	d.Metrics.SetNoLocalEndpoints(noLocal.Internal, noLocal.External)
	if !res.Aborted {
		d.report(inputs, res)
	}
	d.Metrics.ObserveSync(elapsed, full, res.Counts, len(res.Errors))
	for _, r := range res.Conntrack {
		d.Metrics.ObserveConntrack(r.Family, r.Took, r.Deleted)
	}
	pendingSvc, pendingEp := d.changes.Pending()
	d.Metrics.SetPending(pendingSvc, pendingEp)
	if !res.Aborted {
		d.Health.Updated()
		now := d.Clock.Now()
		for _, n := range names {
			if in := inputs[n]; in != nil {
				// As kube-proxy does, only changes made since this proxy
				// started count.
				if t, ok := watch.TriggerTime(in); ok && !t.Before(d.started) {
					d.Metrics.ObserveNetworkProgramming(now.Sub(t))
				}
			}
		}
	}
	// A change-by-change sync logs at 4, as kube-proxy's per-sync line
	// does: at 50 changes/s, this line at 2 was 7 % of the proxy's CPU
	// samples in the bench's profile.
	v := klog.Level(4)
	if full {
		v = 2
	}
	klog.V(v).InfoS("Synced", "full", full, "aborted", res.Aborted, "services", len(inputs), "writes", res.Counts.Writes(), "errors", len(res.Errors),
		"draining", len(res.Draining), "conntrackDeleted", res.ConntrackDeleted, "took", elapsed)
}

// report logs and records an Event for each Service whose problems changed
// since they were last reported.
func (d *daemon) report(inputs map[types.NamespacedName]*model.ServiceInput, res proxier.Result) {
	for _, n := range res.Changed {
		// It gained or lost an address:port through another Service's
		// change: its own input did not change.
		if _, ok := inputs[n]; !ok {
			inputs[n], _ = d.src.Input(n)
		}
	}
	for n, in := range inputs {
		problems := strings.Join(res.Problems[n], "; ")
		if problems == d.reported[n] {
			continue
		}
		if problems == "" {
			delete(d.reported, n)
			continue
		}
		d.reported[n] = problems
		klog.InfoS("Service input skipped in part", "service", n, "problems", problems)
		d.Metrics.ServiceSkipped("invalid-input")
		if in != nil && in.Service != nil && d.Recorder != nil {
			d.Recorder.Event(serviceRef(in.Service), v1.EventTypeWarning, EventReason, problems)
		}
	}
}

// serviceRef names the Service an Event is about: the cache keeps the
// model's compact form, not an API object the recorder could name itself.
func serviceRef(s *model.Service) *v1.ObjectReference {
	return &v1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: s.Namespace, Name: s.Name, UID: s.UID}
}
