package model

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"k8s.io/apimachinery/pkg/types"
)

// Wins reports whether entry a of the Service with precedence pa takes
// an address:port that entry b of the Service with precedence pb wants too.
// The rule, the same on every node, for every kind of sync and after a
// restart:
//
//  1. an address the API server allocated (a clusterIP, or a node port)
//     beats one a user or a controller chose (an externalIP, a
//     LoadBalancer ingress IP), so no Service can take another's
//     clusterIP, whatever its namespace;
//  2. between two chosen addresses, a LoadBalancer ingress IP (written
//     into the status by the cloud's or the LB's controller, which has
//     given that IP to that Service) beats an externalIP (written into
//     the spec by any tenant who may edit a Service): an old Service must
//     not take a younger one's LB IP:port, and its source ranges with it,
//     by naming it in its externalIPs;
//  3. then the older Service (creationTimestamp) wins;
//  4. then the lower UID, then namespace/name, so that there is always
//     one answer.
func Wins(a Entry, pa Precedence, b Entry, pb Precedence) bool {
	if a.Chosen != b.Chosen {
		return !a.Chosen
	}
	if a.Chosen && a.LoadBalancer != b.LoadBalancer {
		return a.LoadBalancer
	}
	if c := pa.Created.Compare(pb.Created); c != 0 {
		return c < 0
	}
	return cmp.Or(cmp.Compare(pa.UID, pb.UID), CompareNames(pa.Name, pb.Name)) < 0
}

// Without returns st without the virtual servers in lost, and without
// everything that came with them: their set members, the VIPs no other
// entry still needs, and, when no entry is left, the hairpin members and
// the health check. So a Service that loses an address:port contributes
// nothing to the kernel for it. lost maps each key to the problem to
// report; st is not changed.
func (st ServiceState) Without(lost map[ipvs.ServiceKey]string) ServiceState {
	if len(lost) == 0 {
		return st
	}
	out := st
	out.Entries = slices.DeleteFunc(slices.Clone(st.Entries), func(e Entry) bool { _, l := lost[e.ServiceKey]; return l })
	kept := func(m SetMember) bool { _, l := lost[m.Key()]; return !l }
	out.KeepSource = filtered(st.KeepSource, kept)
	out.ServicePorts = filtered(st.ServicePorts, kept)
	out.NoLocalEndpoints = filtered(st.NoLocalEndpoints, kept)
	out.Firewall = filtered(st.Firewall, kept)
	out.SourceRanges = filtered(st.SourceRanges, func(m RangeMember) bool { return kept(m.SetMember) })
	// A mark goes with both its address:port and its firewall-mark
	// virtual server; a firewall-mark virtual server that no address
	// leads to any more goes too.
	out.ShortCircuit = filtered(st.ShortCircuit, func(m MarkMember) bool {
		_, l := lost[ipvs.FWMarkKey(m.Mark, m.Addr.Is6())]
		return kept(m.SetMember) && !l
	})
	out.Entries = slices.DeleteFunc(out.Entries, func(e Entry) bool {
		return e.FWMark != 0 && !slices.ContainsFunc(out.ShortCircuit, func(m MarkMember) bool { return ipvs.FWMarkKey(m.Mark, m.Addr.Is6()) == e.ServiceKey })
	})
	out.VIPs = slices.DeleteFunc(slices.Clone(st.VIPs), func(v netip.Addr) bool {
		return !slices.ContainsFunc(out.Entries, func(e Entry) bool { return e.Addr == v })
	})
	out.ExternalVIPs = slices.DeleteFunc(slices.Clone(st.ExternalVIPs), func(v netip.Addr) bool {
		return !slices.ContainsFunc(out.Entries, func(e Entry) bool { return e.Addr == v && e.Chosen })
	})
	if len(out.Entries) == 0 {
		out.Hairpin, out.HealthCheck, out.NoLocal = nil, nil, NoLocalCounts{}
	}
	keys := make([]ipvs.ServiceKey, 0, len(lost))
	for k := range lost {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ipvs.CompareKeys)
	out.Problems = slices.Clone(st.Problems)
	for _, k := range keys {
		out.Problems = append(out.Problems, lost[k])
	}
	return out
}

// filtered returns the members keep accepts, nil when none is left, so
// that Without of every key compares equal to an empty state.
func filtered[M any](in []M, keep func(M) bool) []M {
	var out []M
	for _, m := range in {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// TakenProblem is the problem a Service gets for an address:port another
// Service holds by the precedence rule. It does not name the other
// Service, which may be in a namespace this one's owner cannot read.
func TakenProblem(e Entry) string {
	if e.FWMark != 0 {
		return fmt.Sprintf("%s: the firewall mark %d of its externalTrafficPolicy Local short-circuit is another Service's, which takes precedence; in-cluster clients of its external addresses get only this node's endpoints", e.Owner.Port, e.FWMark)
	}
	return fmt.Sprintf("%s %s is wanted by another Service that takes precedence; skipped", e.Owner.Port, e.ServiceKey)
}

// ForeignProblem is the problem a Service gets for an address:port where
// the kernel holds a virtual server that ipvs-proxy did not make.
func ForeignProblem(e Entry) string {
	return fmt.Sprintf("%s %s is a virtual server ipvs-proxy did not create; skipped", e.Owner.Port, e.ServiceKey)
}

// CompareNames is the one order of Service names: namespace, then name.
// (Comparing "namespace/name" strings would put "a-b/x" before "a/y".)
func CompareNames(a, b types.NamespacedName) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// ShortCircuitMark is the firewall mark of the virtual servers that serve
// in-cluster traffic to the externalTrafficPolicy Local addresses of one
// Service port (one virtual server per family: the kernel keys them by
// family and mark). Its 24 free bits are a hash of the port's name, so
// every node and every restart gives the same mark without any record
// (ipvs.OwnedMarkBits has the form). Two Service ports whose marks collide
// (a chance of about 3 in 100 among 1,000 such ports of one protocol) are
// settled by the precedence rule like two that want one address:port; the
// loser's in-cluster clients get the Local behaviour, with a problem
// reported.
func ShortCircuitMark(p PortName, proto ipvs.Protocol) uint32 {
	h := fnv.New32a()
	h.Write([]byte(p.String()))
	return ipvs.OwnedMarkBits(proto, h.Sum32())
}
