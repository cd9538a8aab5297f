package proxier

import (
	"errors"
	"iter"
	"maps"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"k8s.io/apimachinery/pkg/types"
)

// blame sorts a sync's errors by the Service they belong to, so that one
// Service whose writes keep failing (a scheduler module the kernel lacks,
// say) is retried on its own and does not turn every sync into a full one.
// synced are the Services the sync wrote for, with what they held before
// (their old states) and hold now (the index); nil in a full sync. An error about a key or a
// VIP belongs to the synced Services that had or have it; any other error
// (the ownership record, a kernel set) to all of them when there are few,
// or, in a full sync (all set), to the node.
func (p *Proxier) blame(res *Result, synced map[types.NamespacedName]model.ServiceState, all bool) {
	keys := map[ipvs.ServiceKey][]types.NamespacedName{}
	addrs := map[netip.Addr][]types.NamespacedName{}
	var members map[member][]types.NamespacedName
	if len(res.Errors) > 0 && all {
		synced = maps.Collect(p.idx.allHeld()) // in a full sync, every Service was synced
	}
	if len(res.Errors) > 0 {
		members = membersWanted(res.Errors, maps.Keys(synced), p.idx.heldState)
		for name, old := range synced {
			for _, st := range []model.ServiceState{old, p.idx.heldState(name)} {
				for _, e := range st.Entries {
					keys[e.ServiceKey] = append(keys[e.ServiceKey], name)
				}
				for _, v := range st.VIPs {
					addrs[v] = append(addrs[v], name)
				}
			}
		}
	}
	failed := map[types.NamespacedName]bool{}
	for _, err := range res.Errors {
		var names []types.NamespacedName
		var ke *reconcile.KeyError
		var ae *reconcile.AddrError
		var me *memberError
		switch {
		case errors.As(err, &ke):
			names = keys[ke.Key]
		case errors.As(err, &ae):
			names = addrs[ae.Addr]
		case errors.As(err, &me):
			names = members[me.m]
		}
		if len(names) == 0 && !all {
			for name := range synced {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			res.NodeWide = true
		}
		for _, n := range names {
			failed[n] = true
		}
	}
	if all {
		p.failed = failed
	} else {
		for name := range synced {
			if failed[name] {
				p.failed[name] = true
			} else {
				delete(p.failed, name)
			}
		}
	}
	for n := range failed {
		res.Failed = append(res.Failed, n)
	}
	slices.SortFunc(res.Failed, model.CompareNames)
}

// membersWanted maps each member whose write failed (a memberError in
// errs) to the Services among names whose held state wants it; nil when
// no member write failed, so that a sync without one builds nothing.
func membersWanted(errs []error, names iter.Seq[types.NamespacedName], held func(types.NamespacedName) model.ServiceState) map[member][]types.NamespacedName {
	var failed map[member]bool
	for _, err := range errs {
		var me *memberError
		if errors.As(err, &me) {
			if failed == nil {
				failed = map[member]bool{}
			}
			failed[me.m] = true
		}
	}
	if failed == nil {
		return nil
	}
	out := map[member][]types.NamespacedName{}
	for name := range names {
		for m := range membersOf(held(name)) {
			if failed[m] {
				out[m] = append(out[m], name)
			}
		}
	}
	return out
}

// blameMembers is blame for a resync's adds of the members names want:
// each failed member is retried with the Services that want it, and an
// error of no one's is the node's. It clears no Service's failure, which
// the step that synced it judged.
func (p *Proxier) blameMembers(res *Result, names []types.NamespacedName) {
	if len(res.Errors) == 0 {
		return
	}
	members := membersWanted(res.Errors, slices.Values(names), p.idx.heldState)
	failed := map[types.NamespacedName]bool{}
	for _, err := range res.Errors {
		var me *memberError
		if !errors.As(err, &me) || len(members[me.m]) == 0 {
			res.NodeWide = true
			continue
		}
		for _, n := range members[me.m] {
			if !failed[n] {
				failed[n], p.failed[n] = true, true
				res.Failed = append(res.Failed, n)
			}
		}
	}
	slices.SortFunc(res.Failed, model.CompareNames)
}
