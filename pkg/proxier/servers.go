package proxier

import (
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
)

// serverBatch is how many virtual servers a full sync diffs and writes at
// a time. At a cold start each brings the writes of its real servers, and
// holding all of them at once (55,000 writes at 5,000 Services) would be
// a good part of the proxy's peak memory.
const serverBatch = 512

// applyServers turns current into wanted (every virtual server the
// Services want) batch by batch, in key order. It returns what the caller
// needs once all are written: the deletions (their UDP and SCTP flows are
// cleared), the real servers left draining, and the number of writes.
func (p *Proxier) applyServers(wanted, current map[ipvs.ServiceKey]ipvs.VirtualServer, res *Result) (reconcile.Plan, int) {
	keys := make([]ipvs.ServiceKey, 0, len(wanted)+len(current))
	for k := range wanted {
		keys = append(keys, k)
	}
	for k := range current {
		if _, ok := wanted[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, ipvs.CompareKeys)
	// The ownership record is written twice, not once per batch: every
	// key about to be added before the first write, the final record
	// after the last.
	var kept reconcile.Plan
	adds := make([]ipvs.ServiceKey, 0, len(wanted))
	for k := range wanted {
		if _, ok := current[k]; !ok {
			adds = append(adds, k)
		}
	}
	if !p.recordAhead(adds, res) {
		return kept, 0 // never write what we could not record
	}
	drain := p.drain()
	writes, clean := 0, true
	for batch := range slices.Chunk(keys, serverBatch) {
		want := make(map[ipvs.ServiceKey]ipvs.VirtualServer, len(batch))
		have := make(map[ipvs.ServiceKey]ipvs.VirtualServer, len(batch))
		for _, k := range batch {
			if vs, ok := wanted[k]; ok {
				want[k] = vs
			}
			if vs, ok := current[k]; ok {
				have[k] = vs
			}
		}
		plan := reconcile.DiffServers(want, have, drain)
		writes += plan.Len()
		clean = p.write(plan, res) && clean
		kept.DeleteDestinations = append(kept.DeleteDestinations, plan.DeleteDestinations...)
		kept.DeleteServices = append(kept.DeleteServices, plan.DeleteServices...)
		kept.Draining = append(kept.Draining, plan.Draining...)
	}
	if clean {
		p.recordAfter(wanted, kept.DeleteServices, res)
	}
	return kept, writes
}
