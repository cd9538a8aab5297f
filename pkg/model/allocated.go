package model

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Allocated counts what the API server allocated to the Services this node
// sees and no Service's chosen address (an externalIP, a LoadBalancer
// ingress IP) may take, on any port:
//
//   - their clusterIPs, whole addresses: a chosen address is matched by
//     address alone in IPVS-PROXY-EXTERNAL-VIPS, whose rule masquerades
//     every packet to it, so an externalIP equal to another Service's
//     clusterIP on a port that Service does not use would still take the
//     source address of every pod's connection to that clusterIP. Wins
//     settles only one address:port at a time, and --service-cluster-ip-range
//     is usually unset (kubeadm's configuration has no field for it), so
//     Options.ServiceCIDRs cannot be relied on to catch these;
//   - their health-check node ports (TCP), on the node's own addresses: a
//     virtual server there takes the load balancer's checks in LOCAL_IN,
//     before the health-check server's socket sees them.
//
// It is a reference count over built states (see Add), so that it can
// follow one Service's change at a time; Refused applies it to one state.
// The zero value is ready to use.
type Allocated struct {
	ClusterIPs           map[netip.Addr]int
	HealthCheckNodePorts map[uint16]int
}

// Add counts (by +1) or uncounts (by -1) what st, one Service's built state
// (before any key was taken from it), was allocated. It reports whether an
// address or port was allocated or freed by it: the states with chosen
// addresses must then be refused again (Refused).
func (a *Allocated) Add(st *ServiceState, by int) (changed bool) {
	if a.ClusterIPs == nil {
		a.ClusterIPs, a.HealthCheckNodePorts = map[netip.Addr]int{}, map[uint16]int{}
	}
	for _, ip := range st.allocatedIPs() {
		changed = bump(a.ClusterIPs, ip, by) || changed
	}
	if st.HealthCheck != nil {
		changed = bump(a.HealthCheckNodePorts, st.HealthCheck.NodePort, by) || changed
	}
	return changed
}

// SameAllocation reports whether a and b, two built states of one Service,
// were allocated the same clusterIPs and health-check node port: Add then
// need not move the counts (a Service's ports or endpoints changed).
func SameAllocation(a, b *ServiceState) bool {
	if (a.HealthCheck == nil) != (b.HealthCheck == nil) || a.HealthCheck != nil && a.HealthCheck.NodePort != b.HealthCheck.NodePort {
		return false
	}
	return slices.Equal(a.allocatedIPs(), b.allocatedIPs())
}

// bump moves m[k] by by, deleting it at zero, and reports whether k came or
// went.
func bump[K comparable](m map[K]int, k K, by int) bool {
	before := m[k] > 0
	if m[k] += by; m[k] <= 0 {
		delete(m, k)
	}
	return before != (m[k] > 0)
}

// allocatedIPs are st's clusterIPs: the addresses of its virtual servers
// that are both allocated (not Chosen) and VIPs (node ports never are). A
// chosen address equal to the Service's own clusterIP is one of these
// (dedupEntries keeps the clusterIP's entry), so a Service never refuses
// its own clusterIP.
func (st *ServiceState) allocatedIPs() []netip.Addr {
	var out []netip.Addr
	for _, e := range st.Entries {
		if !e.Chosen && e.FWMark == 0 && slices.Contains(st.VIPs, e.Addr) && !slices.Contains(out, e.Addr) {
			out = append(out, e.Addr)
		}
	}
	return out
}

// Refused returns the keys of st's chosen addresses that would take what
// the API server allocated (see Allocated), each with the problem to
// report, for Without; nil when there are none. A chosen address that is
// not a VIP of st is one of the node's own addresses (Build puts no VIP on
// those). What it refuses depends on the key alone, so every Service that
// wants a refused key is refused it, and none is left out by a claimant
// that was refused.
func (a *Allocated) Refused(st *ServiceState) map[ipvs.ServiceKey]string {
	var out map[ipvs.ServiceKey]string
	for _, e := range st.Entries {
		if !e.Chosen || e.FWMark != 0 {
			continue
		}
		problem := ""
		switch {
		case a.ClusterIPs[e.Addr] > 0:
			problem = fmt.Sprintf("%s %s: the %s is another Service's clusterIP, which no Service may take on any port; skipped", e.Owner.Port, e.ServiceKey, chosenKind(e))
		case e.Proto == ipvs.TCP && a.HealthCheckNodePorts[e.Port] > 0 && !slices.Contains(st.VIPs, e.Addr):
			problem = healthCheckProblem(e)
		default:
			continue
		}
		if out == nil {
			out = map[ipvs.ServiceKey]string{}
		}
		out[e.ServiceKey] = problem
	}
	return out
}

func chosenKind(e Entry) string {
	if e.LoadBalancer {
		return "LoadBalancer ingress IP"
	}
	return "externalIP"
}

func healthCheckProblem(e Entry) string {
	return fmt.Sprintf("%s %s: the %s is a node address and the port a Service's healthCheckNodePort, whose checks it would take; skipped", e.Owner.Port, e.ServiceKey, chosenKind(e))
}
