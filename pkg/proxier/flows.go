package proxier

import (
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
)

// staleFlows are the client flows a plan cuts off: those of UDP real
// servers it deletes, and of every real server of the UDP virtual servers
// it deletes (current holds what they had). TCP needs nothing: its real
// servers drain, and a TCP flow to a deleted one is reset by the kernel
// rather than kept. SCTP is left alone, as kube-proxy leaves it: netlink
// reads no SCTP ports, so its flows could be matched by address only, and
// that took other Services' flows to the same pod and, with a
// host-network endpoint, every SCTP association ending on the node; an
// SCTP association finds a dead peer on its own (heartbeats).
//
// A firewall-mark virtual server has no address of its own: its clients'
// flows are to the addresses via names (the short-circuit set's members
// with its mark).
func staleFlows(plan reconcile.Plan, current map[ipvs.ServiceKey]ipvs.VirtualServer, via func(ipvs.ServiceKey) []ipvs.ServiceKey) []conntrack.Flow {
	var out []conntrack.Flow
	seen := map[conntrack.Flow]bool{} // an address's flow via its own virtual server and via a mark
	var add func(k ipvs.ServiceKey, d ipvs.Destination)
	add = func(k ipvs.ServiceKey, d ipvs.Destination) {
		if k.Proto != ipvs.UDP { // a mark's key has its protocol too
			return
		}
		if k.FWMark != 0 {
			for _, a := range via(k) {
				add(a, d)
			}
			return
		}
		f := conntrack.Flow{Proto: string(k.Proto), Dst: k.AddrPort(), Backend: d.AddrPort()}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, op := range plan.DeleteDestinations {
		add(op.Key, op.Dest)
	}
	for _, k := range plan.DeleteServices {
		for _, d := range current[k].Destinations {
			add(k, d)
		}
	}
	return out
}

// clearFlows deletes the conntrack entries of flows after the kernel
// writes: deleted first, a real server could still be chosen again for
// the next datagram before it is gone. A failure is a warning, not a sync
// error: IPVS is right, and the entries time out on their own.
//
// One call per family, as the kernel keeps one table per family to dump,
// so that each family's time and count are its own (kube-proxy's conntrack
// reconciler metrics are per family).
func (p *Proxier) clearFlows(flows []conntrack.Flow, res *Result) {
	if p.Conntrack == nil || len(flows) == 0 {
		return
	}
	for _, fam := range []struct {
		name string
		v6   bool
	}{{"IPv4", false}, {"IPv6", true}} {
		var these []conntrack.Flow
		for _, f := range flows {
			if f.Dst.Addr().Unmap().Is6() == fam.v6 {
				these = append(these, f)
			}
		}
		if len(these) == 0 {
			continue
		}
		start := p.Clock.Now()
		n, err := p.Conntrack.DeleteFlows(these)
		res.ConntrackDeleted += n
		res.Conntrack = append(res.Conntrack, ConntrackRound{Family: fam.name, Took: p.Clock.Since(start), Deleted: n})
		if err != nil {
			res.Warnings = append(res.Warnings, err)
		}
	}
}

// ConntrackRound is one family's conntrack clean-up after a sync.
type ConntrackRound struct {
	Family  string // "IPv4" or "IPv6"
	Took    time.Duration
	Deleted int
}

// shortCircuitVia returns the addresses whose in-cluster traffic the
// firewall-mark virtual server k serves: the short-circuit members of the
// Service that holds k (none once that Service is gone).
func (p *Proxier) shortCircuitVia(k ipvs.ServiceKey) []ipvs.ServiceKey {
	name, ok := p.idx.holder(k)
	if !ok {
		return nil
	}
	return markMembers(p.idx.heldState(name), k)
}

// shortCircuitViaOr is shortCircuitVia, and also what before gives for k:
// the addresses its mark led to before this sync. A mark whose Service was
// just deleted (or gave up externalTrafficPolicy Local) has no holder when
// its virtual server's flows are looked up, yet its clients' flows are to
// the addresses its Service had.
func (p *Proxier) shortCircuitViaOr(before func(ipvs.ServiceKey) []ipvs.ServiceKey) func(ipvs.ServiceKey) []ipvs.ServiceKey {
	return func(k ipvs.ServiceKey) []ipvs.ServiceKey {
		return append(p.shortCircuitVia(k), before(k)...)
	}
}

// markedBefore are the addresses each mark led to in the changed Services'
// old states: before for a change-by-change sync.
func markedBefore(changes []heldChange) func(ipvs.ServiceKey) []ipvs.ServiceKey {
	return func(k ipvs.ServiceKey) []ipvs.ServiceKey {
		var out []ipvs.ServiceKey
		for _, c := range changes {
			out = append(out, markMembers(c.old, k)...)
		}
		return out
	}
}

// marked maps each firewall-mark key of x's held states to the addresses
// it leads to: what a full sync needs of the index it replaces (a Service
// deleted since the last sync is there alone), without holding on to that
// index. After a start it is empty, and the mark of a Service deleted
// while ipvs-proxy was down leads nowhere.
func (x *index) marked() map[ipvs.ServiceKey][]ipvs.ServiceKey {
	out := map[ipvs.ServiceKey][]ipvs.ServiceKey{}
	for _, st := range x.allHeld() {
		for _, m := range st.ShortCircuit {
			k := ipvs.FWMarkKey(m.Mark, m.Addr.Is6())
			out[k] = append(out[k], m.Key())
		}
	}
	return out
}

// markMembers are st's short-circuit addresses marked for k.
func markMembers(st model.ServiceState, k ipvs.ServiceKey) []ipvs.ServiceKey {
	var out []ipvs.ServiceKey
	for _, m := range st.ShortCircuit {
		if ipvs.FWMarkKey(m.Mark, m.Addr.Is6()) == k {
			out = append(out, m.Key())
		}
	}
	return out
}
