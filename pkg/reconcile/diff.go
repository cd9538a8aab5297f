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
	for _, key := range sortedKeys(desired) {
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

func diffDestinations(key ipvs.ServiceKey, want, have []ipvs.Destination, drain *Drain) Plan {
	var p Plan
	haveBy := map[netip.AddrPort]ipvs.Destination{}
	for _, d := range have {
		haveBy[d.AddrPort()] = d
	}
	wantBy := map[netip.AddrPort]bool{}
	for _, d := range ipvs.SortedDestinations(want) {
		wantBy[d.AddrPort()] = true
		h, ok := haveBy[d.AddrPort()]
		switch {
		case !ok:
			p.AddDestinations = append(p.AddDestinations, DestOp{Key: key, Dest: d})
		case h.Weight != d.Weight:
			p.UpdateDestinations = append(p.UpdateDestinations, DestOp{Key: key, Dest: d})
		}
	}
	for _, d := range ipvs.SortedDestinations(have) {
		if wantBy[d.AddrPort()] {
			continue
		}
		op := DestOp{Key: key, Dest: d}
		switch drain.leave(key, d) {
		case deleteNow:
			p.DeleteDestinations = append(p.DeleteDestinations, op)
		case startDraining:
			op.Dest.Weight = 0
			p.UpdateDestinations = append(p.UpdateDestinations, op)
			p.Draining = append(p.Draining, op)
		case keepDraining:
			p.Draining = append(p.Draining, op)
		}
	}
	return p
}

// DiffAddresses plans the dummy-interface address writes.
func DiffAddresses(desired, current map[netip.Addr]bool) Plan {
	var p Plan
	for _, a := range sortedAddrs(desired) {
		if !current[a] {
			p.AddAddresses = append(p.AddAddresses, a)
		}
	}
	for _, a := range sortedAddrs(current) {
		if !desired[a] {
			p.DeleteAddresses = append(p.DeleteAddresses, a)
		}
	}
	return p
}

func sortedKeys(m map[ipvs.ServiceKey]ipvs.VirtualServer) []ipvs.ServiceKey {
	keys := make([]ipvs.ServiceKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b ipvs.ServiceKey) int {
		switch {
		case a.Less(b):
			return -1
		case b.Less(a):
			return 1
		}
		return 0
	})
	return keys
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a, ok := range m {
		if ok {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
