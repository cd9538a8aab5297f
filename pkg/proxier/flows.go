package proxier

import (
	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
)

// staleFlows are the client flows a plan cuts off: those of UDP and SCTP
// real servers it deletes, and of every real server of the UDP and SCTP
// virtual servers it deletes (current holds what they had). TCP needs
// nothing: its real servers drain, and a TCP flow to a deleted one is
// reset by the kernel rather than kept.
func staleFlows(plan reconcile.Plan, current map[ipvs.ServiceKey]ipvs.VirtualServer) []conntrack.Flow {
	var out []conntrack.Flow
	add := func(k ipvs.ServiceKey, d ipvs.Destination) {
		if k.Proto == ipvs.TCP {
			return
		}
		out = append(out, conntrack.Flow{Proto: string(k.Proto), Dst: k.AddrPort(), Backend: d.AddrPort()})
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
func (p *Proxier) clearFlows(flows []conntrack.Flow, res *Result) {
	if p.Conntrack == nil || len(flows) == 0 {
		return
	}
	n, err := p.Conntrack.DeleteFlows(flows)
	res.ConntrackDeleted += n
	if err != nil {
		res.Warnings = append(res.Warnings, err)
	}
}
