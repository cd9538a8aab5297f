package proxier

import (
	"errors"
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
	if len(res.Errors) > 0 && all {
		synced = maps.Collect(p.idx.allHeld()) // in a full sync, every Service was synced
	}
	if len(res.Errors) > 0 {
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
		switch {
		case errors.As(err, &ke):
			names = keys[ke.Key]
		case errors.As(err, &ae):
			names = addrs[ae.Addr]
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
