package reconcile

import (
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// DiffServers plans the writes that turn current into desired for the keys
// present in either map. current must hold only virtual servers ipvs-proxy
// owns: what is absent from both maps is never touched. drain says how
// real servers that are no longer wanted leave; nil deletes them at once.
func DiffServers(desired, current map[ipvs.ServiceKey]ipvs.VirtualServer, drain *Drain) Plan {
	var p Plan
	keys := sortedKeys(desired)
	// At a cold start every real server is an add: one exact allocation
	// instead of a doubling slice tens of thousands long.
	adds := 0
	for _, key := range keys {
		if _, ok := current[key]; !ok {
			adds += len(desired[key].Destinations)
		}
	}
	p.AddDestinations = make([]DestOp, 0, adds)
	for _, key := range keys {
		want := desired[key]
		have, ok := current[key]
		if !ok {
			p.AddServices = append(p.AddServices, want.Service)
			for _, d := range want.Destinations {
				p.AddDestinations = append(p.AddDestinations, DestOp{Key: key, Dest: d})
			}
			continue
		}
		if !want.SameSettings(have.Service) {
			p.UpdateServices = append(p.UpdateServices, want.Service)
		}
		p.Merge(diffDestinations(key, want.Destinations, have.Destinations, drain))
	}
	for _, key := range sortedKeys(current) {
		if _, ok := desired[key]; !ok {
			// Deleting a virtual server takes its real servers with it.
			p.DeleteServices = append(p.DeleteServices, key)
		}
	}
	return p
}

// diffDestinations walks want and have in address order side by side: a
// periodic resync runs it for every virtual server, so it builds no maps.
func diffDestinations(key ipvs.ServiceKey, want, have []ipvs.Destination, drain *Drain) Plan {
	var p Plan
	want, have = sortedView(want), sortedView(have)
	for i, j := 0, 0; i < len(want) || j < len(have); {
		c := 0
		switch {
		case j == len(have):
			c = -1
		case i == len(want):
			c = 1
		default:
			c = want[i].AddrPort().Compare(have[j].AddrPort())
		}
		switch {
		case c < 0: // wanted, not there
			p.AddDestinations = append(p.AddDestinations, DestOp{Key: key, Dest: want[i]})
			i++
		case c == 0:
			if want[i].Weight != have[j].Weight {
				p.UpdateDestinations = append(p.UpdateDestinations, DestOp{Key: key, Dest: want[i]})
			}
			i++
			j++
		default: // there, no longer wanted
			op := DestOp{Key: key, Dest: have[j]}
			switch drain.leave(key, have[j]) {
			case deleteNow:
				p.DeleteDestinations = append(p.DeleteDestinations, op)
			case startDraining:
				op.Dest.Weight = 0
				p.UpdateDestinations = append(p.UpdateDestinations, op)
				p.Draining = append(p.Draining, op)
			case keepDraining:
				p.Draining = append(p.Draining, op)
			}
			j++
		}
	}
	return p
}

// sortedView is ds in address order: ds itself when it already is (the
// model builds them sorted, and pkg/ipvs reads them so), else a sorted
// copy.
func sortedView(ds []ipvs.Destination) []ipvs.Destination {
	if slices.IsSortedFunc(ds, ipvs.CompareDestinations) {
		return ds
	}
	return ipvs.SortedDestinations(ds)
}

// DiffAddresses plans the dummy-interface address writes: the addresses
// desired holds with a true value (or, for reference counts, a nonzero
// one) against those current holds with a true value. Only the
// differences are sorted: both maps hold every VIP of the node, and
// sorting them whole was most of a periodic resync's last step (4 ms of
// 5 at 10,000 Services).
func DiffAddresses[V bool | int](desired map[netip.Addr]V, current map[netip.Addr]bool) Plan {
	var p Plan
	var none V
	for a, v := range desired {
		if v != none && !current[a] {
			p.AddAddresses = append(p.AddAddresses, a)
		}
	}
	for a, ok := range current {
		if ok && desired[a] == none {
			p.DeleteAddresses = append(p.DeleteAddresses, a)
		}
	}
	slices.SortFunc(p.AddAddresses, netip.Addr.Compare)
	slices.SortFunc(p.DeleteAddresses, netip.Addr.Compare)
	return p
}

func sortedKeys(m map[ipvs.ServiceKey]ipvs.VirtualServer) []ipvs.ServiceKey {
	keys := make([]ipvs.ServiceKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ipvs.CompareKeys)
	return keys
}
