package proxier

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"k8s.io/apimachinery/pkg/types"
)

// The parts of a Resync besides its chunks of Services: the set members
// its chunks add, and what concerns the whole node, each part small
// enough for a step.

// addMissingMembers adds the set members the named Services hold that
// the snapshot lacks, but those written since the read.
func (r *Resync) addMissingMembers(names []types.NamespacedName) Result {
	p := r.p
	res := Result{Problems: map[types.NamespacedName][]string{}}
	missing := map[string][]ipset.Entry{}
	for _, n := range names {
		for m := range membersOf(p.idx.heldState(n)) {
			if !r.members.has(m) && !p.since.members[m] {
				missing[m.setName()] = append(missing[m.setName()], m.entry())
				p.since.touchMember(m) // written now: once, if two Services want it
			}
		}
	}
	for _, set := range slices.Sorted(maps.Keys(missing)) {
		for j, err := range p.sets.AddAll(set, missing[set]) {
			p.setWrite(&res, set, missing[set][j], err, &res.Counts.SetMembersAdded)
		}
	}
	p.blameMembers(&res, names)
	return res
}

// dropStaleMembers deletes up to r.scan of the snapshot's set members
// that no Service wants and nothing wrote since the read.
func (r *Resync) dropStaleMembers() (Result, bool) {
	p := r.p
	res := Result{Problems: map[types.NamespacedName][]string{}}
	stale := map[string][]ipset.Entry{}
	var denials []member
	for left := r.scan; left > 0 && r.setAt < len(r.members); {
		l := r.members[r.setAt]
		end := min(r.memberAt+left, len(l))
		for _, m := range l[r.memberAt:end] {
			switch {
			case p.idx.memberRefs[m] > 0 || p.since.members[m]:
			case denySets[m.set]:
				denials = append(denials, m) // after what it guards: see delDenials
			default:
				stale[m.setName()] = append(stale[m.setName()], m.entry())
			}
		}
		left -= end - r.memberAt
		if r.memberAt = end; end == len(l) {
			r.setAt, r.memberAt = r.setAt+1, 0
		}
	}
	for _, set := range slices.Sorted(maps.Keys(stale)) {
		for j, err := range p.sets.DelAll(set, stale[set]) {
			p.setWrite(&res, set, stale[set][j], err, &res.Counts.SetMembersDeleted)
		}
	}
	p.delDenials(denials, nil, true, false, &res)
	p.blame(&res, nil, false) // a set's error is the node's
	return res, r.setAt < len(r.members)
}

// dropGone syncs away the Services the index holds that are neither
// among the inputs nor synced since the read: gone without an event.
func (r *Resync) dropGone() (Result, bool) {
	p := r.p
	gone := map[types.NamespacedName]*model.ServiceInput{}
	for n := range p.idx.built {
		if r.inputs.Get(n) == nil && !p.since.names[n] {
			gone[n] = nil
		}
	}
	return p.syncServices(gone, r.read, true), false
}

// sweep diffs up to r.scan of the virtual servers nothing has looked at
// since the read: those the snapshot holds that no Service wants, and,
// with the last of them, those of the Services the steps skipped that
// SyncServices did not touch, and those left draining. Every other key a
// Service holds, its chunk has diffed.
func (r *Resync) sweep() (Result, bool) {
	p := r.p
	res := Result{Problems: map[types.NamespacedName][]string{}}
	scope := map[ipvs.ServiceKey]bool{}
	end := min(r.swept+r.scan, len(r.kernel))
	for i := r.swept; i < end; i++ {
		if k := r.kernel[i].ServiceKey; !p.since.hasAt(int32(i), k) { // most are: the chunks wrote them
			scope[k] = true
		}
	}
	r.swept = end
	last := end == len(r.kernel)
	if last {
		for n := range p.since.names {
			for _, e := range p.idx.heldState(n).Entries {
				scope[e.ServiceKey] = true
			}
		}
		for k := range p.drainSince {
			scope[k.vs] = true
		}
	}
	maps.DeleteFunc(scope, func(k ipvs.ServiceKey, _ bool) bool { return p.since.hasKey(k) })
	desired, current := map[ipvs.ServiceKey]ipvs.VirtualServer{}, map[ipvs.ServiceKey]ipvs.VirtualServer{}
	holders := map[types.NamespacedName]model.ServiceState{}
	for k := range scope {
		if n, ok := p.idx.holder(k); ok {
			held := p.idx.heldState(n)
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
		if vs, ok := r.byKey.lookup(r.kernel, k); ok {
			current[k] = vs
		}
	}
	plan := reconcile.DiffServers(desired, current, p.drain())
	p.apply(plan, nil, &res)
	p.clearFlows(staleFlows(plan, current, p.shortCircuitVia), &res)
	res.Draining = p.trackDrains(plan, scope)
	for k := range scope {
		p.since.touchKey(k)
	}
	p.blame(&res, holders, false)
	return res, !last
}

// finish adds the set members that the Services the steps skipped hold
// and the snapshot lacks, then syncs the VIPs and the record.
func (r *Resync) finish() (Result, bool) {
	res := r.addMissingMembers(slices.Collect(maps.Keys(r.p.since.names)))
	res.merge(r.syncAddresses())
	// The deny-list members kept (by dropStaleMembers, or by changes for
	// a virtual server whose delete failed) go once what they guarded is
	// gone: the sweep deleted the virtual servers, syncAddresses the VIPs.
	r.p.delDenials(nil, nil, true, true, &res)
	return res, false
}

// syncAddresses makes the dummy link hold the VIPs the Services hold (the
// link's addresses are the snapshot's, with our writes since), and, after
// a resync without errors, makes the ownership record what the Services
// hold off the link, keeping what was written since the read: a record
// no Service needs, of a virtual server no longer there, goes.
func (r *Resync) syncAddresses() Result {
	p := r.p
	res := Result{Problems: map[types.NamespacedName][]string{}}
	plan := reconcile.DiffAddresses(p.idx.vipRefs, p.linkAddrs)
	p.apply(plan, nil, &res)
	var holders map[types.NamespacedName]model.ServiceState
	if len(res.Errors) > 0 {
		holders = map[types.NamespacedName]model.ServiceState{}
		for n, st := range p.idx.allHeld() {
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
	// What a Service holds off the link is in the record already: it was
	// recorded before it was added.
	record := map[ipvs.ServiceKey]bool{}
	for k := range p.owned.keys {
		if _, held := p.idx.holder(k); held && !p.onLink(k.Addr) || p.since.hasKey(k) {
			record[k] = true
		}
	}
	if err := p.owned.Set(record); err != nil {
		res.Errors = append(res.Errors, err)
	}
	return res
}
