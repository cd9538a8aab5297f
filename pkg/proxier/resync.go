package proxier

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"k8s.io/apimachinery/pkg/types"
)

// resyncChunk is how many Services a resync step rebuilds, diffs and
// writes at a time; a Step looks at its budget after each chunk.
const resyncChunk = 16

// Resync is the periodic full sync cut into steps. Rebuilding and diffing
// every Service takes seconds at thousands of them, and a change that
// came meanwhile would wait for all of it; between steps the caller syncs
// changes with SyncServices, so a change waits for one step at most. The
// steps go through the Services in name order, a chunk at a time, with
// the same code as SyncServices (the index is updated chunk by chunk), and
// then do what concerns the whole node: virtual servers no Service wants,
// the kernel sets, the VIPs and the ownership record.
//
// A resync never undoes a change synced between its steps, nor one synced
// since its snapshot was read (BeginRead): it skips the Services
// SyncServices was given (their input is newer than the resync's), and it
// reads from the kernel itself, not from the snapshot, every virtual
// server that was written since the read, by either path.
type Resync struct {
	p      *Proxier
	err    error
	inputs []model.ServiceInput // in name order
	names  map[types.NamespacedName]bool
	next   int // the first Service not yet synced
	chunk  int // resyncChunk, but in tests
	kernel map[ipvs.ServiceKey]ipvs.VirtualServer
	sets   map[string][]ipset.Entry
	// global are the whole-node parts still to do after the Services,
	// one per unit of work.
	global []func() Result
	// clean says no step had an error: only then is the ownership record
	// rebuilt from what the Services hold.
	clean bool
}

// BeginResync starts a resync of inputs (every Service) from snap, a
// snapshot read since BeginRead (or just now). Until the resync is done,
// the caller runs its Steps and SyncServices as changes come, and no other
// full sync: SyncAll voids a resync under way.
func (p *Proxier) BeginResync(inputs []model.ServiceInput, snap Snapshot) *Resync {
	if p.since == nil {
		p.BeginRead() // read just now: nothing written since
	}
	r := &Resync{p: p, err: snap.err, chunk: resyncChunk, clean: true}
	p.resync = r
	if r.err == nil {
		r.err = p.link.EnsureLink()
	}
	if r.err != nil {
		return r
	}
	p.useSnapshot(snap, p.since)
	r.inputs = slices.SortedFunc(slices.Values(inputs), func(a, b model.ServiceInput) int {
		return model.CompareNames(nameOf(a), nameOf(b))
	})
	r.names = make(map[types.NamespacedName]bool, len(inputs))
	for _, in := range inputs {
		r.names[nameOf(in)] = true
	}
	r.kernel = make(map[ipvs.ServiceKey]ipvs.VirtualServer, len(snap.kernel))
	for _, vs := range snap.kernel {
		r.kernel[vs.ServiceKey] = vs
	}
	r.sets = snap.sets
	r.global = []func() Result{r.sweep, r.syncSets, r.syncAddresses}
	return r
}

// Step does the resync's next units of work until budget has passed (at
// least one unit: a chunk of Services, or one whole-node part) and says
// whether the resync is done. Its Result is that of those units alone.
func (r *Resync) Step(budget time.Duration) (done bool, res Result) {
	p := r.p
	res = Result{Problems: map[types.NamespacedName][]string{}}
	if p.resync != r {
		return true, res // voided by a SyncAll
	}
	if r.err != nil {
		res.Errors, res.Aborted = append(res.Errors, r.err), true
		p.since, p.resync = nil, nil
		return true, res
	}
	start := p.Clock.Now()
	for {
		var unit Result
		if r.next < len(r.inputs) {
			unit = r.syncChunk()
		} else {
			unit = r.global[0]()
			r.global = r.global[1:]
		}
		res.merge(unit)
		r.clean = r.clean && len(unit.Errors) == 0
		if done = r.next == len(r.inputs) && len(r.global) == 0; done {
			p.since, p.resync = nil, nil
			break
		}
		if p.Clock.Since(start) >= budget {
			break
		}
	}
	for _, names := range []*[]types.NamespacedName{&res.Changed, &res.Draining, &res.Failed, &res.Synced} {
		slices.SortFunc(*names, model.CompareNames)
		*names = slices.Compact(*names)
	}
	return done, res
}

// read is the resync's kernelRead: the snapshot, or the kernel itself for
// a virtual server written since the read.
func (r *Resync) read(k ipvs.ServiceKey) (ipvs.VirtualServer, bool, error) {
	if r.p.since.keys[k] {
		return r.p.ipvs.Get(k)
	}
	vs, ok := r.kernel[k]
	return vs, ok, nil
}

// syncChunk syncs the next chunk of Services, but those SyncServices
// synced since the read.
func (r *Resync) syncChunk() Result {
	end := min(r.next+r.chunk, len(r.inputs))
	chunk := make(map[types.NamespacedName]*model.ServiceInput, end-r.next)
	for i := r.next; i < end; i++ {
		if n := nameOf(r.inputs[i]); !r.p.since.names[n] {
			chunk[n] = &r.inputs[i]
		}
	}
	r.next = end
	res := r.p.syncServices(chunk, r.read, true)
	res.Synced = slices.AppendSeq(make([]types.NamespacedName, 0, len(chunk)), maps.Keys(chunk))
	return res
}

// sweep drops the Services the index holds that are neither among the
// inputs nor synced since the read (gone without an event), then diffs
// every virtual server nothing has looked at since the read: those the
// snapshot holds that no Service wants, and those of Services the steps
// skipped whose writes did not touch them.
func (r *Resync) sweep() Result {
	p := r.p
	res := Result{Problems: map[types.NamespacedName][]string{}}
	gone := map[types.NamespacedName]*model.ServiceInput{}
	for n := range p.idx.built {
		if !r.names[n] && !p.since.names[n] {
			gone[n] = nil
		}
	}
	if len(gone) > 0 {
		res.merge(p.syncServices(gone, r.read, true))
	}
	scope := map[ipvs.ServiceKey]bool{}
	for k := range r.kernel {
		scope[k] = true
	}
	for k := range p.idx.wants {
		scope[k] = true
	}
	for k := range p.drainSince {
		scope[k.vs] = true
	}
	maps.DeleteFunc(scope, func(k ipvs.ServiceKey, _ bool) bool { return p.since.keys[k] })
	desired, current := map[ipvs.ServiceKey]ipvs.VirtualServer{}, map[ipvs.ServiceKey]ipvs.VirtualServer{}
	holders := map[types.NamespacedName]model.ServiceState{}
	for k := range scope {
		if n, ok := p.idx.holder(k); ok {
			held := p.idx.held[n]
			holders[n] = held
			for _, e := range held.Entries {
				if e.ServiceKey == k {
					desired[k] = e.VirtualServer
				}
			}
		}
		if _, want := desired[k]; !want && !p.owns(k) {
			continue
		}
		if vs, ok := r.kernel[k]; ok {
			current[k] = vs
		}
	}
	part := Result{Problems: map[types.NamespacedName][]string{}}
	plan := reconcile.DiffServers(desired, current, p.drain())
	p.apply(plan, nil, &part)
	p.clearFlows(staleFlows(plan, current), &part)
	part.Draining = p.trackDrains(plan, scope)
	for k := range scope {
		p.since.touchKey(k)
	}
	p.blame(&part, holders, false)
	res.merge(part)
	return res
}

// syncSets makes the kernel sets hold what the index says, but for the
// members written since the read.
func (r *Resync) syncSets() Result {
	res := Result{Problems: map[types.NamespacedName][]string{}}
	r.p.syncAllSets(&res, r.sets, r.p.since)
	r.p.blame(&res, nil, false) // a set's error is the node's
	return res
}

// syncAddresses makes the dummy link hold the VIPs the Services hold (the
// link's addresses are the snapshot's, with our writes since), and, after
// a resync without errors, makes the ownership record what the Services
// hold off the link, keeping what was written since the read: a record
// no Service needs, of a virtual server no longer there, goes.
func (r *Resync) syncAddresses() Result {
	p := r.p
	res := Result{Problems: map[types.NamespacedName][]string{}}
	want := make(map[netip.Addr]bool, len(p.idx.vipRefs))
	for a := range p.idx.vipRefs {
		want[a] = true
	}
	plan := reconcile.DiffAddresses(want, p.linkAddrs)
	p.apply(plan, nil, &res)
	var holders map[types.NamespacedName]model.ServiceState
	if len(res.Errors) > 0 {
		holders = map[types.NamespacedName]model.ServiceState{}
		for n, st := range p.idx.held {
			if slices.ContainsFunc(st.VIPs, func(a netip.Addr) bool {
				return slices.Contains(plan.AddAddresses, a) || slices.Contains(plan.DeleteAddresses, a)
			}) {
				holders[n] = st
			}
		}
	}
	p.blame(&res, holders, false)
	if !r.clean || len(res.Errors) > 0 {
		return res
	}
	record := map[ipvs.ServiceKey]bool{}
	for k := range p.idx.wants {
		if _, held := p.idx.holder(k); held && !p.onLink(k.Addr) {
			record[k] = true
		}
	}
	for k := range p.owned.keys {
		if p.since.keys[k] {
			record[k] = true
		}
	}
	if err := p.owned.Set(record); err != nil {
		res.Errors = append(res.Errors, err)
	}
	return res
}

// merge adds another part's result to r.
func (r *Result) merge(o Result) {
	r.Changed = append(r.Changed, o.Changed...)
	r.Draining = append(r.Draining, o.Draining...)
	r.Aborted = r.Aborted || o.Aborted
	r.Failed = append(r.Failed, o.Failed...)
	r.NodeWide = r.NodeWide || o.NodeWide
	r.Counts = r.Counts.Add(o.Counts)
	r.Errors = append(r.Errors, o.Errors...)
	maps.Copy(r.Problems, o.Problems)
	r.Warnings = append(r.Warnings, o.Warnings...)
	r.ConntrackDeleted += o.ConntrackDeleted
	r.HealthChecksChanged = r.HealthChecksChanged || o.HealthChecksChanged
	r.Synced = append(r.Synced, o.Synced...)
}
