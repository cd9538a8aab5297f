package proxier

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
)

// resyncChunk is the most Services a resync step rebuilds, diffs and
// writes at a time; a Step looks at its budget after each chunk, and
// sizes the next chunk from the time per Service of the last to fit its
// budget (one Service at first: a slow node, or a VM under emulation,
// may take milliseconds each).
const resyncChunk = 16

// resyncScan is how many kernel set members, or virtual servers, a resync
// step looks at at a time for being stale.
const resyncScan = 1024

// Resync is the periodic full sync cut into steps. Rebuilding and diffing
// every Service takes seconds at thousands of them, and a change that
// came meanwhile would wait for all of it; between steps the caller syncs
// changes with SyncServices, so a change waits for one step at most. The
// steps go through the Services in name order, a chunk at a time, with
// the same code as SyncServices (the index is updated chunk by chunk), and
// then do what concerns the whole node: virtual servers no Service wants,
// kernel set members no Service wants, the VIPs and the ownership record.
// Each chunk also adds the set members its Services want that the
// snapshot lacks.
//
// A resync never undoes a change synced between its steps, nor one synced
// since its snapshot was read (BeginRead): it skips the Services
// SyncServices was given (their input is newer than the resync's), and it
// reads from the kernel itself, not from the snapshot, every virtual
// server that was written since the read, by either path.
type Resync struct {
	p      *Proxier
	err    error
	inputs Inputs
	next   int // the first Service not yet synced
	chunk  int // resyncChunk, but in tests
	size   int // the next chunk's size, up to chunk; 0: not yet timed
	scan   int // resyncScan, but in tests
	// kernel and byKey are the snapshot's virtual servers; swept is how
	// many of kernel the sweep has been through.
	kernel []ipvs.VirtualServer
	byKey  vsIndex
	swept  int
	// members are the snapshot's set members; setAt and memberAt are where
	// the look for stale members is (members[setAt][memberAt]).
	members         setMembers
	setAt, memberAt int
	// global are the whole-node parts still to do after the Services; a
	// part says whether it has more to do in another unit of work.
	global []func() (Result, bool)
	// ensured are the errors of making the kernel sets exist.
	ensured []error
	// clean says no step had an error: only then is the ownership record
	// rebuilt from what the Services hold.
	clean bool
}

// BeginResync starts a resync of inputs (every Service) from snap, a
// snapshot read since BeginRead (or just now). Until the resync is done,
// the caller runs its Steps and SyncServices as changes come, and no other
// full sync: SyncAll voids a resync under way.
func (p *Proxier) BeginResync(inputs Inputs, snap Snapshot) *Resync {
	if p.since == nil {
		p.BeginRead() // read just now: nothing written since
	}
	r := &Resync{p: p, err: snap.err, chunk: resyncChunk, scan: resyncScan, clean: true}
	p.resync = r
	if r.err == nil {
		r.err = p.link.EnsureLink()
	}
	if r.err != nil {
		return r
	}
	p.useSnapshot(snap, p.since)
	p.foreignAddrs = p.foreignAddrsMoved(snap.kernel)
	// After foreignAddrsMoved, which looks at every key: until then the
	// keys written are a small map, quicker to look in than the index.
	p.since.useSnapshotKeys(snap)
	r.inputs = inputs
	r.kernel, r.byKey = snap.kernel, snap.byKey
	r.members = snap.members
	for _, s := range ownedSets {
		if !snap.present[s.Name] {
			// Gone from the kernel: the chunks add members to it.
			if err := p.sets.Ensure(s); err != nil {
				r.ensured = append(r.ensured, err)
			}
		}
	}
	r.global = []func() (Result, bool){r.dropGone, r.sweep, r.dropStaleMembers, r.finish}
	return r
}

// Inputs are every Service, in name order, and indexed by name: what a
// resync goes through. PrepareInputs makes them, and its caller may call
// it off the sync loop: at 10,000 Services, putting them in order and
// indexing them took the test VM tens of milliseconds, which a change
// coming meanwhile would have waited for.
type Inputs struct {
	list   []model.ServiceInput
	byName map[types.NamespacedName]*model.ServiceInput
}

// PrepareInputs puts all in name order, in place, and indexes them.
func PrepareInputs(all []model.ServiceInput) Inputs {
	slices.SortFunc(all, func(a, b model.ServiceInput) int { return model.CompareNames(nameOf(a), nameOf(b)) })
	in := Inputs{list: all, byName: make(map[types.NamespacedName]*model.ServiceInput, len(all))}
	for i := range all {
		in.byName[nameOf(all[i])] = &all[i]
	}
	return in
}

// Len is how many Services there are.
func (in Inputs) Len() int { return len(in.list) }

// Get is the named Service's input, nil if it is not among them.
func (in Inputs) Get(n types.NamespacedName) *model.ServiceInput { return in.byName[n] }

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
	if len(r.ensured) > 0 {
		res.Errors, res.NodeWide, r.ensured, r.clean = r.ensured, true, nil, false
	}
	start := p.Clock.Now()
	for {
		var unit Result
		if r.next < r.inputs.Len() {
			unit = r.syncChunk(budget)
		} else {
			var more bool
			if unit, more = r.global[0](); !more {
				r.global = r.global[1:]
			}
		}
		res.merge(unit)
		r.clean = r.clean && len(unit.Errors) == 0
		if done = r.next == r.inputs.Len() && len(r.global) == 0; done {
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
// a virtual server written since the read or missing from it. Missing
// from a snapshot seconds old is not missing now: another tool may have
// made one there since, and taken as absent it was claimed as ours (its
// add's "exists" is success) and given our real servers. A key the
// snapshot lacks is rare (a Service's new key, or one someone deleted),
// so the kernel is read little more than before.
func (r *Resync) read(k ipvs.ServiceKey) (ipvs.VirtualServer, bool, error) {
	if i, inSnap := r.byKey[k]; inSnap && !r.p.since.hasAt(i, k) {
		return r.kernel[i], true, nil
	}
	return r.p.ipvs.Get(k)
}

// syncChunk syncs the next chunk of Services, but those SyncServices
// synced since the read, and sizes the next chunk to fit budget (with a
// budget of 0, every chunk is r.chunk).
func (r *Resync) syncChunk(budget time.Duration) Result {
	size := r.chunk
	if budget > 0 {
		size = max(r.size, 1)
	}
	start := r.p.Clock.Now()
	end := min(r.next+size, r.inputs.Len())
	defer func() {
		if per := r.p.Clock.Since(start) / time.Duration(size); per > 0 {
			r.size = int(min(max(budget/per, 1), time.Duration(r.chunk)))
		} else {
			r.size = r.chunk
		}
	}()
	chunk := make(map[types.NamespacedName]*model.ServiceInput, end-r.next)
	for i := r.next; i < end; i++ {
		if n := nameOf(r.inputs.list[i]); !r.p.since.names[n] {
			chunk[n] = &r.inputs.list[i]
		}
	}
	r.next = end
	res := r.p.syncServices(chunk, r.read, true)
	res.Synced = slices.AppendSeq(make([]types.NamespacedName, 0, len(chunk)), maps.Keys(chunk))
	res.merge(r.addMissingMembers(append(slices.Clone(res.Synced), res.Changed...)))
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

// foreignAddrsMoved returns the addresses that became, or stopped being,
// another tool's (index.foreignAddrs) by a snapshot's virtual servers.
// A Service's own clusterIP off the link (deleted by someone) is not
// another tool's: a sync puts it back (see allocatedVIP). Nor is a key
// written since the read (p.since): the snapshot's virtual server there
// may be ours, deleted with its address by a change during the read.
func (p *Proxier) foreignAddrsMoved(kernel []ipvs.VirtualServer) map[netip.Addr]bool {
	now := p.foreignAddrsOf(func(yield func(ipvs.ServiceKey) bool) {
		for _, vs := range kernel {
			k := vs.ServiceKey
			if cs := p.idx.wants[k]; p.since.hasKey(k) || !p.foreign(k) || len(cs) > 0 && !cs[0].chosen {
				continue
			}
			if !yield(k) {
				return
			}
		}
	})
	moved := map[netip.Addr]bool{}
	for a := range now {
		if !p.idx.foreignAddrs[a] {
			moved[a] = true
		}
	}
	for a := range p.idx.foreignAddrs {
		// One a live read found another tool's since the snapshot was
		// read stays so: its virtual server may be newer than the
		// snapshot, and freed, the address would go on kube-ipvs0 and
		// the next resync delete the other tool's virtual server on it.
		if !now[a] && !p.since.foreign[a] {
			moved[a] = false
		}
	}
	return moved
}
