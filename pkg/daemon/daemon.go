// Package daemon is `ipvs-proxy run`: informers feed watch.Changes, a
// bounded-frequency runner coalesces them, and each run hands the changed
// Services to the proxier (or every Service, at start and on the periodic
// resync), then reports to health, metrics, logs and Events.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/healthcheck"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/runner"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Health is what the daemon tells the /healthz server.
type Health interface {
	QueuedUpdate()
	Updated()
	SetNodeEligible(ok bool, reason string)
}

// Metrics is what the daemon records.
type Metrics interface {
	ObserveSync(d time.Duration, full bool, counts reconcile.Counts, errors int)
	ObserveNetworkProgramming(d time.Duration)
	ServiceChanged()
	EndpointsChanged()
	SetPending(services, endpoints int)
	ServiceSkipped(reason string)
	SetServicesFailing(n int)
	SetNoLocalEndpoints(internal, external [2]int)
	SetLastQueuedTimestamp(t time.Time)
	ObserveRuleSync(family string, failed bool)
	ObserveConntrack(family string, d time.Duration, deleted int)
	ObserveSyncCPU(cpu time.Duration, change bool, held time.Duration)
}

// HealthChecks serves the health-check node ports (pkg/healthcheck).
type HealthChecks interface {
	SyncServices(map[uint16]healthcheck.Port) error               // ports, their Services and families
	SyncEndpoints(map[types.NamespacedName]healthcheck.Endpoints) // local ready endpoints

}

// RuleSync is one address family's iptables rules.
type RuleSync struct {
	IPTables iptables.Interface
	Rules    iptables.RuleSet
}

// Client opens the list-watches the informers run on: a
// pkg/kubeclient.Client in production; tests adapt a clientset with
// pkg/kubeclient/kubeclienttest.
type Client interface {
	// ListWatch lists and watches resource ("services", "endpointslices"
	// or "nodes") in every namespace, with tweak applied to the options of
	// every request.
	ListWatch(resource string, tweak func(*metav1.ListOptions)) cache.ListerWatcher
}

// Config holds everything Run needs; main builds the Linux parts, tests
// build fakes.
type Config struct {
	Client        Client
	NodeName      string
	Proxier       *proxier.Proxier
	Rules         []RuleSync
	SyncPeriod    time.Duration
	MinSyncPeriod time.Duration
	// MaxSyncShare bounds the sync loop's share of one CPU under
	// sustained load (runner.Limits.MaxShare); 0 turns the bound off.
	MaxSyncShare float64
	Health       Health
	Metrics      Metrics
	Recorder     record.EventRecorder
	Clock        clock.WithTicker
	// HealthChecks, if set, is kept in step with the Services' health-check
	// node ports.
	HealthChecks HealthChecks
	// Restart, if set, is asked about each version of the Node: a reason
	// stops Run with ErrNodeChanged, as kube-proxy exits when its Node's
	// podCIDRs or IPs change, so that a restart builds on the new ones.
	Restart func(*v1.Node) string
	// AfterFirstSync, if set, runs once, on its own goroutine, after the
	// first full sync that wrote everything it wanted.
	AfterFirstSync func()
}

type daemon struct {
	Config
	// started is when Run began: trigger times before it are changes this
	// proxy had no part in (every slice's, after a restart).
	started  time.Time
	src      *watch.Source
	changes  *watch.Changes
	lastFull time.Time
	needFull bool
	// reported is the last set of problems logged for each Service, so a
	// broken Service is reported when it changes, not on every resync.
	reported map[types.NamespacedName]string
	// held are the changes a full sync took from the queue but did not
	// program (it aborted, or could not read the cache), for the next full
	// sync to serve (see holdChanges).
	held map[types.NamespacedName]bool

	// firstRules delivers the first rule sync's errors; nil once taken.
	firstRules chan []error
	// reading delivers a periodic resync's kernel read (see resync.go);
	// nil when none is under way.
	reading   chan resyncRead
	readStart time.Time
	// resync is the periodic resync under way in steps, if any (see
	// resync.go); stepTurn says the next run steps it even if changes are
	// waiting, so that it ends under a storm of changes too.
	resync *resyncRun
	// gcRelaxed says the collector's target is raised for a resync,
	// gcPending that it is lowered but not yet to gcPrev, what to put
	// back, which waits for a collection after gcEndCycles (see gc.go).
	// gcRelaxedAt is when the target was last raised.
	gcRelaxed, gcPending bool
	gcPrev               int
	gcEndCycles          uint64
	gcRelaxedAt          time.Time
	stepTurn             bool
	// changeSync is the recent change-by-change syncs' duration (a moving
	// average), which a resync step's budget follows (stepBudget).
	changeSync time.Duration
	kick       func()
	// queuedSignal gets a value when a change is queued, for a rest
	// between resync steps to end at (restBetweenSteps).
	queuedSignal chan struct{}

	// zone is the Node's zone label; syncedZone what the proxier builds
	// with (sync goroutine only).
	zoneMu           sync.Mutex
	zone, syncedZone string

	// failing counts the failed attempts of each Service whose writes
	// fail, for its retry backoff (see retry.go).
	failing map[types.NamespacedName]int
	// retryAt is when each failing Service's pending retry is due; the
	// timers that run them hold retryMu (see retry.go).
	retryMu sync.Mutex
	retryAt map[types.NamespacedName]time.Time
	// hcFailed says the last hand-over of health-check node ports failed
	// (a port another process holds); hcRetryArmed that a sync is set to
	// try again (see healthchecks.go).
	hcFailed     bool
	hcRetryArmed atomic.Bool

	drainMu      sync.Mutex
	drainArmed   bool
	drainPending map[types.NamespacedName]bool
}

// ErrNodeDeleted is Run's error when its Node is deleted: the proxy exits,
// as kube-proxy does, so the pod restarts and waits for a Node again.
var ErrNodeDeleted = errors.New("this node's Node object was deleted")

// Run watches until ctx ends, or until the Node is deleted
// (ErrNodeDeleted). It programs nothing before every informer has synced,
// so a restart never writes a partial state. On return the kernel is left
// as it is: a restarting proxy must not drop traffic.
func Run(ctx context.Context, cfg Config) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	d := &daemon{Config: cfg, started: cfg.Clock.Now(), needFull: true, reported: map[types.NamespacedName]string{}, drainPending: map[types.NamespacedName]bool{},
		failing: map[types.NamespacedName]int{}, queuedSignal: make(chan struct{}, 1)}
	var r *runner.Runner
	d.changes = watch.NewChanges(func(c watch.Change) {
		switch c {
		case watch.ServiceEvent:
			d.Metrics.ServiceChanged()
		case watch.SliceEvent:
			d.Metrics.EndpointsChanged()
		}
		d.queued()
		r.Kick()
		select {
		case d.queuedSignal <- struct{}{}:
		default: // one is pending already
		}
	})
	r = runner.New("sync", func() {
		if d.sync() {
			// A full sync runs at start, and a resync once a sync period,
			// which bounds their CPU; charged to the budget, they would
			// hold up the changes behind them by as long again.
			r.Free()
		}
	}, runner.Limits{MinInterval: cfg.MinSyncPeriod, MaxInterval: cfg.SyncPeriod, MaxShare: cfg.MaxSyncShare, Burst: runner.DefaultBurst,
		Meter: runner.ThreadCPU, Report: func(s runner.RunStats) { d.Metrics.ObserveSyncCPU(s.CPU, s.Charged, s.Held) }}, cfg.Clock)
	d.kick = r.Kick

	src, err := watch.NewSource(cfg.Client.ListWatch("services", watch.SelectServices),
		cfg.Client.ListWatch("endpointslices", watch.SelectSlices), d.changes)
	if err != nil {
		return err
	}
	d.src = src
	nodeInf := cache.NewSharedIndexInformerWithOptions(cfg.Client.ListWatch("nodes", func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
	}), &v1.Node{}, cache.SharedIndexInformerOptions{})
	if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			d.nodeChanged(obj)
			d.checkRestart(obj, stop)
		},
		UpdateFunc: func(_, obj any) {
			d.nodeChanged(obj)
			d.checkRestart(obj, stop)
		},
		DeleteFunc: func(any) {
			klog.InfoS("Node is deleted; stopping, as kube-proxy does", "node", cfg.NodeName)
			stop(ErrNodeDeleted)
		},
	}); err != nil {
		return fmt.Errorf("watch Node %s: %w", cfg.NodeName, err)
	}
	// Each informer runs until ctx ends; after the sync loop, Run waits for
	// them to stop, so none outlives its return.
	var informers sync.WaitGroup
	for _, inf := range append([]cache.SharedIndexInformer{nodeInf}, src.Informers()...) {
		informers.Go(func() { inf.RunWithContext(ctx) })
	}
	d.startRules(ctx)
	klog.InfoS("Waiting for informer caches to sync")
	if !src.WaitSynced(ctx, nodeInf.HasSyncedChecker()) {
		informers.Wait()
		if err := stopCause(ctx); err != nil {
			return err
		}
		return fmt.Errorf("informer caches did not sync before shutdown")
	}
	klog.InfoS("Informer caches synced; starting the sync loop", "syncPeriod", cfg.SyncPeriod, "minSyncPeriod", cfg.MinSyncPeriod)
	// As kube-proxy does: the loop counts as started, and the first sync is
	// queued, so a first sync that never finishes turns /healthz to 503.
	d.Health.Updated()
	d.queued()
	r.Kick()
	r.Run(ctx)
	informers.Wait()
	klog.InfoS("Stopped; the kernel state is left programmed")
	return stopCause(ctx)
}

// ErrNodeChanged is Run's error when Config.Restart gives a reason: the
// proxy exits, as kube-proxy does, and its restart builds on the new Node.
var ErrNodeChanged = errors.New("this node's Node changed what ipvs-proxy started with")

// stopCause is the error Run stopped itself with, nil when its caller's
// context ended.
func stopCause(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, ErrNodeDeleted) || errors.Is(cause, ErrNodeChanged) {
		return cause
	}
	return nil
}

// checkRestart stops Run when Config.Restart says this Node needs a restart.
func (d *daemon) checkRestart(obj any, stop context.CancelCauseFunc) {
	node, ok := obj.(*v1.Node)
	if !ok || d.Restart == nil {
		return
	}
	if why := d.Restart(node); why != "" {
		klog.InfoS("The Node changed what ipvs-proxy started with; stopping, as kube-proxy does, to start again", "node", d.NodeName, "why", why)
		stop(fmt.Errorf("%w: %s", ErrNodeChanged, why))
	}
}

// queued tells /healthz and the metrics that a sync is wanted, as
// kube-proxy's proxier does each time it asks its runner for one.
func (d *daemon) queued() {
	d.Health.QueuedUpdate()
	d.Metrics.SetLastQueuedTimestamp(d.Clock.Now())
}

// nodeChanged tracks whether this node should still receive traffic from
// load balancers: not while it is being deleted or drained by the cluster
// autoscaler (kube-proxy's /healthz does the same).
func (d *daemon) nodeChanged(obj any) {
	node, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	switch {
	case node.DeletionTimestamp != nil:
		d.Health.SetNodeEligible(false, "node is being deleted")
	case hasTaint(node, "ToBeDeletedByClusterAutoscaler"):
		d.Health.SetNodeEligible(false, "node is tainted ToBeDeletedByClusterAutoscaler")
	default:
		d.Health.SetNodeEligible(true, "")
	}
	// The zone decides which endpoints zone hints leave to this node: a
	// change rebuilds every Service (it is rare; a relabelled node).
	zone := node.Labels[v1.LabelTopologyZone]
	d.zoneMu.Lock()
	changed := zone != d.zone
	d.zone = zone
	d.zoneMu.Unlock()
	if changed {
		klog.InfoS("Node's zone is now", "zone", zone)
		if d.kick != nil {
			d.kick()
		}
	}
}

// takeZone returns the node's zone and whether it changed since the last call.
func (d *daemon) takeZone() (string, bool) {
	d.zoneMu.Lock()
	defer d.zoneMu.Unlock()
	changed := d.zone != d.syncedZone
	d.syncedZone = d.zone
	return d.zone, changed
}

func hasTaint(n *v1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}
