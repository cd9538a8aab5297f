// Package proxier keeps the kernel equal to what the Services want. It is
// the one stateful step of the data flow: it remembers what each Service was
// last built to, so a change to one Service reads and writes only that
// Service's virtual servers (O(1) kernel work per endpoint change), and it
// lists the whole kernel only at start (SyncAll) and on the periodic
// resync (ReadKernel, then a Resync in steps), which also repairs drift.
package proxier

import (
	"iter"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Proxier is not safe for concurrent use: one sync loop drives it.
type Proxier struct {
	// Exclude are kube-proxy's --ipvs-exclude-cidrs: virtual servers on
	// these addresses are never deleted, even on our own dummy link.
	Exclude []netip.Prefix
	// DrainTimeout is --graceful-termination-timeout: how long a TCP real
	// server that left may keep its connections (0: deleted at once).
	DrainTimeout time.Duration
	Clock        clock.PassiveClock
	// Conntrack, if set, deletes the conntrack entries of UDP and SCTP
	// flows whose real server was deleted.
	Conntrack conntrack.Interface

	opts  model.Options // NodeIPs is refreshed on every SyncAll
	ipvs  ipvs.Interface
	link  netif.Interface
	sets  ipset.Interface
	owned *Owned

	builder *model.Builder
	// builderZone is the zone builder was made with (SetZone changes
	// opts, and the next snapshot the builder).
	builderZone string
	// idx is what each Service was built to and holds (see index).
	idx *index
	// linkAddrs is what the dummy interface holds: listed by SyncAll and
	// kept up to date with our own writes in between.
	linkAddrs map[netip.Addr]bool
	// drainSince is when each draining real server got weight 0.
	drainSince map[drainKey]time.Time
	// since records what SyncServices writes while a snapshot is read,
	// and, with a resync in steps, what the resync wrote so far.
	since *since
	// resync is the resync in steps under way, if any (see BeginResync).
	resync *Resync
	// scratch is syncServices' own, kept between calls.
	scratch scratch
	// AdoptNodePorts, set while a node moves from kube-proxy's IPVS mode
	// (its NodePort sets are still there), lets a full sync take over a
	// virtual server on a node address that a Service wants as its node
	// port: kube-proxy's, which records nothing ipvs-proxy could check.
	// Once taken over it is in the ownership record.
	AdoptNodePorts bool
	// failed are the Services whose last sync had a failed write: they are
	// synced again even when their input did not change.
	failed map[types.NamespacedName]bool
	// foreignAddrs are the changes to the index's foreign addresses that a
	// resync's snapshot found, for the next syncServices to apply.
	foreignAddrs map[netip.Addr]bool
	// undeleted are the VIPs and set members no Service wants whose
	// delete failed: every change-by-change sync deletes them again until
	// one succeeds or a Service wants them back. The Service that let one
	// go is retried, but its retry no longer holds it, and the next
	// resync's would be up to a sync period later: a source-range member
	// left behind admits a range the Service no longer does until then.
	undeleted undeleted
}

// undeleted are deletes that failed, to write again (see Proxier), and
// deny-list members kept while what they guard is still there (see
// delDenials).
type undeleted struct {
	addrs   map[netip.Addr]bool
	members map[member]bool
	denials map[member]bool
}

// Result is what one sync did.
type Result struct {
	// Changed are the Services whose kernel state changed, including those
	// that gained or lost an address:port through another's change.
	Changed []types.NamespacedName
	// Draining are Services with real servers at weight 0 waiting for
	// their connections to end: sync them again after DrainCheckInterval.
	Draining []types.NamespacedName
	// Aborted is set when the kernel could not be read: nothing was written.
	Aborted bool
	// Failed are the Services some of whose writes failed: retry them.
	// NodeWide says some error belongs to no one Service: list the kernel
	// whole on the next sync.
	Failed   []types.NamespacedName
	NodeWide bool
	Counts   reconcile.Counts
	Errors   []error
	Problems map[types.NamespacedName][]string
	// Warnings are failures that need no resync (conntrack clean-up).
	Warnings         []error
	ConntrackDeleted int
	// Conntrack is each family's conntrack clean-up, for its metrics.
	Conntrack []ConntrackRound
	// HealthChecksChanged says HealthChecks() differs from before the sync.
	HealthChecksChanged bool
	// Synced are the Services a resync step rebuilt (SyncServices leaves
	// it empty: its caller knows what it gave).
	Synced []types.NamespacedName
}

func New(opts model.Options, ipvsIf ipvs.Interface, link netif.Interface, sets ipset.Interface, owned *Owned) *Proxier {
	return &Proxier{
		opts: opts, ipvs: ipvsIf, link: link, sets: sets, owned: owned,
		builder:    model.NewBuilder(opts),
		idx:        newIndex(0),
		linkAddrs:  map[netip.Addr]bool{},
		drainSince: map[drainKey]time.Time{},
		failed:     map[types.NamespacedName]bool{},
		undeleted:  undeleted{addrs: map[netip.Addr]bool{}, members: map[member]bool{}, denials: map[member]bool{}},
		Clock:      clock.RealClock{},
	}
}

// SetZone sets this node's zone, for topology hints; the next SyncAll
// rebuilds every Service with it.
func (p *Proxier) SetZone(zone string) { p.opts.Zone = zone }

// owns reports whether a virtual server in the kernel is ipvs-proxy's.
func (p *Proxier) owns(k ipvs.ServiceKey) bool {
	if k.FWMark != 0 {
		return true // the kernel's list holds only ipvs-proxy's marks (ipvs.OwnedMark)
	}
	for _, x := range p.Exclude {
		if x.Contains(k.Addr) {
			return false
		}
	}
	return p.linkAddrs[k.Addr] || p.owned.Has(k)
}

// foreign reports whether a virtual server the kernel holds at k was made
// by someone else: it is neither on the dummy interface (where kube-proxy's
// are, which a migration takes over) nor recorded as ours. No Service gets
// such a key, so ipvs-proxy never rewrites or deletes another tool's
// virtual server, even one on an address a Service names.
func (p *Proxier) foreign(k ipvs.ServiceKey) bool {
	return k.FWMark == 0 && !p.linkAddrs[k.Addr] && !p.owned.Has(k)
}

// SyncAll lists everything the kernel holds, rebuilds every Service and
// applies the difference in one go: at start, where it writes everything
// in batches, and after a write that belongs to no one Service failed. It
// voids a resync in steps under way (BeginResync).
func (p *Proxier) SyncAll(inputs []model.ServiceInput) Result {
	res := Result{Problems: map[types.NamespacedName][]string{}}
	t0 := p.Clock.Now()
	p.since, p.resync, p.foreignAddrs = nil, nil, nil
	snap := p.ReadKernel()
	// It lists the link and the sets and writes every difference.
	clear(p.undeleted.addrs)
	clear(p.undeleted.members)
	clear(p.undeleted.denials)
	if snap.err != nil {
		res.Errors, res.Aborted = append(res.Errors, snap.err), true
		return res
	}
	if err := p.link.EnsureLink(); err != nil {
		res.Errors, res.Aborted = append(res.Errors, err), true
		return res
	}
	t1 := p.Clock.Now()
	p.useSnapshot(snap, nil)
	oldChecks := p.idx.healthChecks
	oldMarks := p.idx.marked()
	p.idx = newIndex(len(inputs))
	built := make(map[types.NamespacedName]*model.ServiceState, len(inputs))
	for _, in := range inputs {
		st := p.builder.Service(in)
		built[nameOf(in)] = &st
		p.idx.from[nameOf(in)] = in
	}
	foreign := p.foreignIn(snap.kernel, built)
	changes := p.idx.update(built, foreign, p.foreignAddrsOf(maps.Keys(foreign)))
	desired := make(map[ipvs.ServiceKey]ipvs.VirtualServer, len(inputs))
	for _, c := range changes {
		res.note(c)
		for _, e := range c.new.Entries {
			desired[e.ServiceKey] = e.VirtualServer
		}
	}
	res.HealthChecksChanged = !maps.Equal(oldChecks, p.idx.healthChecks)
	t2 := p.Clock.Now()
	current := map[ipvs.ServiceKey]ipvs.VirtualServer{}
	for _, vs := range snap.kernel {
		if _, want := desired[vs.ServiceKey]; want || p.owns(vs.ServiceKey) {
			current[vs.ServiceKey] = vs
		}
	}
	// Virtual servers, then the kernel sets, then the VIPs: the sets say
	// which VIP ports the filter lets through, and a VIP takes traffic
	// only once it is on the link. At a cold start the virtual servers
	// are so ready sooner.
	plan, writes := p.applyServers(desired, current, &res)
	t3 := p.Clock.Now()
	denials := p.syncAllSets(&res, snap.members)
	t4 := p.Clock.Now()
	vips := reconcile.DiffAddresses(p.idx.vipRefs, p.linkAddrs)
	// applyServers wrote the record, and only if its writes were clean: a
	// virtual server whose delete failed stays recorded, or it would be
	// no one's (off the link, unrecorded) and stay forever.
	vipErrs := len(res.Errors)
	p.apply(vips, nil, &res)
	if failed := reconcile.FailedAddresses(res.Errors[vipErrs:]); len(failed) > 0 {
		// applyServers added the virtual servers on these addresses
		// unrecorded, as about to be on the link (see recordStranded).
		var on reconcile.Plan
		for k, vs := range desired {
			if failed[k.Addr] {
				on.AddServices = append(on.AddServices, vs.Service)
			}
		}
		p.recordStranded(on, res.Errors, failed, &res)
	}
	p.delDenials(denials, stillOld(plan, true, res.Errors), true, false, &res)
	t5 := p.Clock.Now()
	p.clearFlows(staleFlows(plan, current, p.shortCircuitViaOr(func(k ipvs.ServiceKey) []ipvs.ServiceKey { return oldMarks[k] })), &res)
	res.Draining = p.trackDrains(plan, nil)
	p.blame(&res, nil, true)
	klog.V(2).InfoS("Full sync", "readKernel", t1.Sub(t0), "build", t2.Sub(t1), "virtualServers", t3.Sub(t2),
		"sets", t4.Sub(t3), "addresses", t5.Sub(t4), "writes", writes+vips.Len())
	return res
}

// useSnapshot takes from a snapshot what a full sync needs before it
// builds a Service: the node's addresses (node ports listen on them) and
// the dummy link's, where our own writes since the read (written, or nil)
// are known better than the read.
func (p *Proxier) useSnapshot(snap Snapshot, written *since) {
	ips := make([]netip.Addr, 0, len(snap.hostAddrs))
	for _, h := range snap.hostAddrs {
		ips = append(ips, h.Addr)
	}
	if !slices.Equal(ips, p.opts.NodeIPs) || p.opts.Zone != p.builderZone {
		// What every Service is built from changed: none may keep its
		// built state for an unchanged input (sameInput).
		p.opts.NodeIPs, p.builderZone = ips, p.opts.Zone
		p.builder = model.NewBuilder(p.opts)
		clear(p.idx.from)
	}
	before := p.linkAddrs
	p.linkAddrs = snap.addrs
	if written != nil {
		for a := range written.addrs {
			if before[a] {
				p.linkAddrs[a] = true
			} else {
				delete(p.linkAddrs, a)
			}
		}
	}
}

// foreignIn returns the keys of the kernel's virtual servers that are
// another tool's, leaving out, with AdoptNodePorts, kube-proxy's node
// ports that a Service wants.
func (p *Proxier) foreignIn(kernel []ipvs.VirtualServer, built map[types.NamespacedName]*model.ServiceState) map[ipvs.ServiceKey]bool {
	nodePorts := map[ipvs.ServiceKey]bool{}
	if p.AdoptNodePorts {
		for _, st := range built {
			for _, e := range st.Entries {
				if p.adopts(e) {
					nodePorts[e.ServiceKey] = true
				}
			}
		}
	}
	allocated := map[ipvs.ServiceKey]bool{}
	for _, st := range built {
		for _, e := range st.Entries {
			if allocatedVIP(e, st) {
				allocated[e.ServiceKey] = true
			}
		}
	}
	foreign := map[ipvs.ServiceKey]bool{}
	for _, vs := range kernel {
		k := vs.ServiceKey
		if p.foreign(k) && !nodePorts[k] && !allocated[k] {
			foreign[k] = true
		}
	}
	return foreign
}

// foreignAddrsOf returns the addresses of another tool's virtual servers
// (keys, from foreignIn) that are not the node's: no Service gets one as
// an externalIP or LoadBalancer IP (see index.foreignAddrs). A virtual
// server on a node address is ours or not by its key alone (the record),
// since the node's addresses never go on the dummy link.
func (p *Proxier) foreignAddrsOf(keys iter.Seq[ipvs.ServiceKey]) map[netip.Addr]bool {
	addrs := map[netip.Addr]bool{}
	for k := range keys {
		if k.FWMark == 0 && !slices.Contains(p.opts.NodeIPs, k.Addr) {
			addrs[k.Addr] = true
		}
	}
	return addrs
}

// checkNewAddrs marks as another tool's (foreignAddrs) each externalIP or
// LoadBalancer IP that the built states would put on the dummy link for
// the first time while the kernel holds a virtual server there that is
// not ipvs-proxy's. The reads by key above see only the ports Services
// name, and the last full listing only what was there then: another
// tool's virtual server made since, on another port, would otherwise end
// up on an address of ours, and be swept by the next resync. One dump of
// the virtual servers' settings, only in a sync that brings a new address.
func (p *Proxier) checkNewAddrs(built map[types.NamespacedName]*model.ServiceState, foreignAddrs map[netip.Addr]bool, res *Result) {
	var fresh map[netip.Addr]ipvs.ServiceKey // each new address, and a key of it for errors
	for _, st := range built {
		for _, e := range st.Entries {
			a := e.Addr
			if !e.Chosen || e.FWMark != 0 || p.linkAddrs[a] || p.idx.foreignAddrs[a] || foreignAddrs[a] || p.foreignAddrs[a] ||
				slices.Contains(p.opts.NodeIPs, a) {
				continue
			}
			if fresh == nil {
				fresh = map[netip.Addr]ipvs.ServiceKey{}
			}
			if _, ok := fresh[a]; !ok {
				fresh[a] = e.ServiceKey
			}
		}
	}
	if len(fresh) == 0 {
		return
	}
	svcs, err := p.ipvs.Services()
	if err != nil {
		// Unknown counts as another tool's, as for a key: the address
		// stays off the link until a read says otherwise (the next
		// resync's), and its Service is retried.
		for a, k := range fresh {
			foreignAddrs[a] = true
			p.since.foundForeign(a)
			res.Errors = append(res.Errors, &reconcile.KeyError{Key: k, Err: err})
		}
		return
	}
	for _, s := range svcs {
		if _, ok := fresh[s.Addr]; ok && s.FWMark == 0 && p.foreign(s.ServiceKey) {
			foreignAddrs[s.Addr] = true
			p.since.foundForeign(s.Addr)
		}
	}
}

// allocatedVIP reports whether e is a Service's own clusterIP (an address
// the API server allocated to it, not a node's): its virtual server is
// ipvs-proxy's even when the address has gone from the dummy link (someone
// deleted it), so a sync puts the address back instead of leaving the
// Service without it.
// A clusterIP is the one address that is both allocated (not Chosen) and
// a VIP of st: node ports are never VIPs.
func allocatedVIP(e model.Entry, st *model.ServiceState) bool {
	return !e.Chosen && e.FWMark == 0 && slices.Contains(st.VIPs, e.Addr)
}

// adopts reports whether a full sync takes over the virtual server at e's
// key when another tool's is there: kube-proxy's node port, during a
// migration (AdoptNodePorts).
func (p *Proxier) adopts(e model.Entry) bool {
	return p.AdoptNodePorts && !e.Chosen && slices.Contains(p.opts.NodeIPs, e.Addr)
}

// SyncServices rebuilds only the given Services (a nil input means the
// Service is gone) and reads from the kernel only their virtual servers,
// and those of Services that gained or lost an address:port through them.
func (p *Proxier) SyncServices(changed map[types.NamespacedName]*model.ServiceInput) Result {
	for name := range changed {
		p.since.touchName(name)
	}
	return p.syncServices(changed, p.ipvs.Get, false)
}

// kernelRead reads one virtual server: the kernel itself, or, in a resync
// step, the snapshot wherever nothing was written since it was read.
type kernelRead func(ipvs.ServiceKey) (ipvs.VirtualServer, bool, error)

// syncServices is SyncServices reading through get. With full (a resync
// step), each Service given is synced even when it was built to the same
// state, since the kernel may have drifted, and each of its keys that is
// neither on the link nor recorded is looked up again: another tool's
// virtual server may have come or gone there.
func (p *Proxier) syncServices(changed map[types.NamespacedName]*model.ServiceInput, get kernelRead, full bool) Result {
	res := Result{Problems: map[types.NamespacedName][]string{}}
	sc := &p.scratch
	sc.take(len(changed))
	defer sc.release()
	built, read, foreign, foreignAddrs := sc.built, sc.read, sc.foreign, sc.foreignAddrs
	for name, in := range changed {
		var st model.ServiceState
		switch {
		case in == nil:
			delete(p.idx.from, name)
		case full && p.idx.sameInput(name, *in):
			// A resync's Service whose input has not changed since it
			// was built: its built state is what building gives. At
			// 5,000 Services building every one was most of the garbage
			// of a resync, which checks the kernel against what the
			// Services hold, not the builder.
			st = p.idx.built[name]
		default:
			st = p.builder.Service(*in)
			p.idx.from[name] = *in
		}
		if !full && p.unchanged(name, st) {
			// A late or spurious event (an informer's initial adds after
			// a full sync, an update of a field we do not use): the kernel
			// was already written for this state, so it is not read.
			if held := p.idx.heldState(name); len(held.Problems) > 0 {
				res.Problems[name] = held.Problems
			}
			continue
		}
		sc.states = append(sc.states, st)
		built[name] = &sc.states[len(sc.states)-1]
		// A key no Service had yet may hold another tool's virtual server,
		// and one that did may have gone: look before claiming it.
		for _, e := range st.Entries {
			k := e.ServiceKey
			if _, seen := read[k]; seen || !full && p.idx.wanted(k) && !p.idx.foreign[k] {
				continue
			}
			if !p.foreign(k) || allocatedVIP(e, &st) {
				if full && p.idx.foreign[k] {
					foreign[k] = false // its address is ours now
				}
				continue
			}
			vs, ok, err := get(k)
			if err != nil {
				res.Errors = append(res.Errors, &reconcile.KeyError{Key: k, Err: err})
			}
			// Unknown (an error) counts as foreign: not ours to write, and
			// the Service is retried.
			foreign[k] = ok && !(full && p.adopts(e)) || err != nil
			if ok && foreign[k] && e.Chosen && !slices.Contains(p.opts.NodeIPs, k.Addr) {
				// Another tool's address, not only its key.
				foreignAddrs[k.Addr] = true
			}
			read[k] = nil
			if ok {
				read[k] = &vs
			}
		}
	}
	p.checkNewAddrs(built, foreignAddrs, &res)
	for a, f := range p.foreignAddrs {
		if _, found := foreignAddrs[a]; !found {
			foreignAddrs[a] = f // what a resync's snapshot found, unless read since
		}
	}
	p.foreignAddrs = nil
	p.idx.trackMembers()
	changes := p.idx.update(built, foreign, foreignAddrs)
	if full {
		// Unchanged Services keep their problems, which the caller reports
		// from this result.
		for name := range built {
			if held := p.idx.heldState(name); len(held.Problems) > 0 {
				res.Problems[name] = held.Problems
			}
		}
	}
	desired, touched, touchedAddrs := sc.desired, sc.touched, sc.addrs
	for _, c := range changes {
		res.note(c)
		if !equalChecks(c.old.HealthCheck, c.new.HealthCheck) {
			res.HealthChecksChanged = true
		}
		for _, st := range []model.ServiceState{c.old, c.new} {
			for _, e := range st.Entries {
				touched[e.ServiceKey] = true
			}
			for _, v := range st.VIPs {
				touchedAddrs[v] = true
			}
			for m := range membersOf(st) {
				p.since.touchMember(m)
			}
		}
	}
	var retryUnguarded []ipvs.ServiceKey
	// Every Service synced, changed or not (a draining one is synced for
	// its connection counts), and every one that gained or lost a key.
	synced := slices.Collect(maps.Keys(built))
	for _, c := range changes {
		synced = append(synced, c.name)
	}
	for _, name := range synced {
		held := p.idx.heldState(name)
		for _, e := range held.Entries {
			touched[e.ServiceKey] = true
			desired[e.ServiceKey] = e.VirtualServer
		}
		for _, v := range held.VIPs {
			touchedAddrs[v] = true
		}
		if p.failed[name] {
			// A retry: what the failed sync meant to write may be missing.
			for m := range membersOf(held) {
				if k, ok := p.addMember(m, &res); !ok {
					retryUnguarded = append(retryUnguarded, k)
				}
			}
		}
	}
	for a := range p.undeleted.addrs {
		if p.idx.vipRefs[a] > 0 || !p.linkAddrs[a] {
			delete(p.undeleted.addrs, a) // wanted again, or gone (a resync deleted it)
			continue
		}
		touchedAddrs[a] = true
	}
	marked, denyAfter, unguarded := p.writeMembers(&res)
	for _, k := range append(unguarded, retryUnguarded...) {
		// Fail closed: an LB IP:port whose ranges cannot be enforced
		// admits no one until the Service's retry writes its member.
		delete(desired, k)
	}
	current := sc.current
	for key := range touched {
		_, want := desired[key]
		if !want && !p.owns(key) {
			continue
		}
		if vs, seen := read[key]; seen {
			if vs != nil {
				current[key] = *vs
			}
			continue
		}
		vs, ok, err := get(key)
		if err != nil {
			res.Errors = append(res.Errors, &reconcile.KeyError{Key: key, Err: err})
			delete(desired, key) // unknown state: retry on the next sync
			continue
		}
		if ok {
			current[key] = vs
		}
	}
	// After the reads: a resync's get reads the kernel, not its snapshot,
	// for what is marked written.
	for key := range touched {
		p.since.touchKey(key)
	}
	for a := range touchedAddrs {
		p.since.touchAddr(a)
	}
	wantAddrs, haveAddrs := sc.want, sc.have
	for a := range touchedAddrs {
		wantAddrs[a] = p.idx.vipRefs[a] > 0
		haveAddrs[a] = p.linkAddrs[a]
		if !wantAddrs[a] {
			delete(wantAddrs, a)
		}
	}
	plan := reconcile.DiffServers(desired, current, p.drain())
	plan.Merge(reconcile.DiffAddresses(wantAddrs, haveAddrs))
	errsBefore := len(res.Errors)
	written := p.apply(plan, nil, &res)
	p.delDenials(denyAfter, stillOld(plan, written, res.Errors[errsBefore:]), false, false, &res)
	p.addMembers(marked, &res)
	p.clearFlows(staleFlows(plan, current, p.shortCircuitViaOr(markedBefore(changes))), &res)
	res.Draining = p.trackDrains(plan, touched)
	if len(res.Errors) == 0 {
		// Nothing to blame: every Service synced is clear of past
		// failures. (blame would find that too, from copies of every
		// synced Service's states: a resync's chunks made MBs of them.)
		for _, name := range synced {
			delete(p.failed, name)
		}
		return res
	}
	oldStates := sc.oldStates
	for _, name := range synced {
		oldStates[name] = p.idx.heldState(name)
	}
	for _, c := range changes {
		oldStates[c.name] = c.old
	}
	p.blame(&res, oldStates, false)
	return res
}

// note records one Service's change in the result.
func (r *Result) note(c heldChange) {
	r.Changed = append(r.Changed, c.name)
	if len(c.new.Problems) > 0 {
		r.Problems[c.name] = c.new.Problems
	}
}

func equalChecks(a, b *model.HealthCheck) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// unchanged reports whether a Service built to st needs no sync: it was
// last built to the same state and none of its real servers is draining,
// which needs the kernel's connection counts. What it holds depends only
// on its build and on other Services' builds, which are synced on their
// own changes.
func (p *Proxier) unchanged(name types.NamespacedName, st model.ServiceState) bool {
	old, ok := p.idx.built[name]
	if !ok || p.failed[name] || !old.Equal(&st) {
		return false
	}
	for k := range p.drainSince {
		for _, e := range old.Entries {
			if e.ServiceKey == k.vs {
				return false
			}
		}
	}
	return true
}

// apply writes the plan, keeping the ownership record ahead of the kernel:
// keys are recorded before they are added and forgotten after they are
// deleted. With all set (a full sync), the record is rebuilt from desired.
// It reports whether it wrote the plan (false: the record could not be
// saved, and nothing was written).
func (p *Proxier) apply(plan reconcile.Plan, all map[ipvs.ServiceKey]ipvs.VirtualServer, res *Result) (written bool) {
	adds := make([]ipvs.ServiceKey, 0, len(plan.AddServices))
	for _, s := range plan.AddServices {
		adds = append(adds, s.ServiceKey)
	}
	if !p.recordAhead(adds, res) {
		return false // never write what we could not record
	}
	if p.write(plan, res) {
		p.recordAfter(all, plan.DeleteServices, res)
	}
	// Else every key stays recorded until a clean sync confirms it gone.
	return true
}

// recordAhead adds the keys about to be added (those not on the link,
// which are the node's own) to the ownership record; false if it could not
// be saved.
func (p *Proxier) recordAhead(adds []ipvs.ServiceKey, res *Result) bool {
	adds = slices.DeleteFunc(slices.Clone(adds), func(k ipvs.ServiceKey) bool { return p.selfEvident(k) || p.owned.Has(k) })
	if len(adds) == 0 {
		return true // the usual case: ClusterIPs, or keys recorded before
	}
	record := p.owned.Map()
	for _, k := range adds {
		record[k] = true
	}
	if err := p.owned.Set(record); err != nil {
		res.Errors = append(res.Errors, err)
		return false
	}
	return true
}

// write applies the plan to the kernel; false if any write failed.
func (p *Proxier) write(plan reconcile.Plan, res *Result) bool {
	counts, errs := reconcile.Apply(p.ipvs, p.link, plan)
	res.Counts = res.Counts.Add(counts)
	res.Errors = append(res.Errors, errs...)
	// The link's addresses as they now are: an address whose add failed
	// is not on it, and one whose delete failed (or that Apply kept) still
	// is, so the Service's retry writes it again. Counted as written, a
	// failed add left the retry nothing to do, and the Service's own
	// virtual server then read as another tool's (neither on the link nor
	// recorded) and stayed after the Service was gone.
	failed := reconcile.FailedAddresses(errs)
	for _, a := range plan.AddAddresses {
		if !failed[a] {
			p.linkAddrs[a] = true
		}
	}
	p.recordStranded(plan, errs, failed, res)
	kept := reconcile.KeptAddresses(plan, errs)
	for _, a := range plan.DeleteAddresses {
		switch {
		case failed[a]:
			p.undeleted.addrs[a] = true
		case !kept[a]:
			delete(p.linkAddrs, a)
			delete(p.undeleted.addrs, a)
		}
	}
	return len(errs) == 0
}

// recordStranded records the virtual servers the plan added on addresses
// whose add failed: recordAhead left them out as about to be on the link,
// and off it and unrecorded they would read as another tool's, to the
// retry that puts the address on (which looks for other tools' virtual
// servers on a new address) and to the resync. A change's write calls it
// with its plan; a full sync with the virtual servers it wants on such an
// address (applyServers wrote them before the addresses). The record
// keeps them until a sync that rebuilds it finds the address on the link.
func (p *Proxier) recordStranded(plan reconcile.Plan, errs []error, failedAddrs map[netip.Addr]bool, res *Result) {
	if len(failedAddrs) == 0 {
		return
	}
	notAdded := reconcile.FailedKeys(errs)
	var record map[ipvs.ServiceKey]bool
	for _, s := range plan.AddServices {
		k := s.ServiceKey
		if k.FWMark != 0 || !failedAddrs[k.Addr] || notAdded[k] || p.owned.Has(k) {
			continue
		}
		if record == nil {
			record = p.owned.Map()
		}
		record[k] = true
	}
	if record == nil {
		return
	}
	if err := p.owned.Set(record); err != nil {
		res.Errors = append(res.Errors, err)
	}
}

// recordAfter forgets deleted keys after a clean write; with all set (a
// full sync) the record becomes exactly all's keys that are not on the link.
func (p *Proxier) recordAfter(all map[ipvs.ServiceKey]ipvs.VirtualServer, deleted []ipvs.ServiceKey, res *Result) {
	after := map[ipvs.ServiceKey]bool{}
	if all != nil {
		for k := range all {
			if !p.selfEvident(k) {
				after[k] = true
			}
		}
	} else {
		if !slices.ContainsFunc(deleted, p.owned.Has) {
			return
		}
		after = p.owned.Map()
		for _, k := range deleted {
			delete(after, k)
		}
	}
	if err := p.owned.Set(after); err != nil {
		res.Errors = append(res.Errors, err)
	}
}

// selfEvident reports whether a virtual server is ipvs-proxy's without the
// ownership record: its address is on the dummy interface, or its mark is
// one of ipvs-proxy's.
func (p *Proxier) selfEvident(k ipvs.ServiceKey) bool { return k.FWMark != 0 || p.onLink(k.Addr) }

// onLink reports whether an address is one the dummy interface holds or
// is about to hold.
func (p *Proxier) onLink(a netip.Addr) bool { return p.linkAddrs[a] || p.idx.vipRefs[a] > 0 }

func nameOf(in model.ServiceInput) types.NamespacedName {
	return types.NamespacedName{Namespace: in.Service.Namespace, Name: in.Service.Name}
}
