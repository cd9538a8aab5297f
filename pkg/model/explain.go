package model

import (
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// Explanation says, for one endpoint of one Service port, whether it is
// programmed and why (or why not), for `status --service`.
type Explanation struct {
	Port     string
	Endpoint string
	Node     string
	// Internal is about the clusterIP; External about NodePorts,
	// externalIPs and LoadBalancer IPs.
	Internal, External string
}

// Explain walks the same decisions as Service, one endpoint at a time.
// Services and ports that Service skips explain nothing.
func (b *Builder) Explain(in ServiceInput) []Explanation {
	svc := in.Service
	if svc == nil || svc.Type == v1.ServiceTypeExternalName || svc.ClusterIP == v1.ClusterIPNone || svc.ClusterIP == "" {
		return nil
	}
	clusterIPs, _, _ := b.clusterIPs(svc)
	built := b.Service(in)
	internalLocal := svc.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	externalLocal := svc.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	var out []Explanation
	for _, sp := range svc.Ports {
		if _, ok := protocols[sp.Protocol]; !ok || sp.Port <= 0 || sp.Port > 65535 {
			continue
		}
		for _, slice := range in.Slices {
			if slice == nil {
				continue
			}
			fam := slice.AddressType
			famAddr := netip.IPv4Unspecified()
			if fam == discovery.AddressTypeIPv6 {
				famAddr = netip.IPv6Unspecified()
			} else if fam != discovery.AddressTypeIPv4 {
				continue
			}
			if fam == discovery.AddressTypeIPv6 && b.opts.NoIPv6 {
				// Said here, as at the proxy's start, and not as a problem
				// of the Service (see Builder.clusterIPs).
				for _, ep := range slice.Endpoints {
					out = append(out, Explanation{Port: sp.Name, Endpoint: ep.Address(), Node: ep.Node,
						Internal: noIPv6Reason, External: noIPv6Reason})
				}
				continue
			}
			if !hasFamily(clusterIPs, famAddr) {
				continue // no virtual server of this family
			}
			external := builtExternal(built, sp.Name, clusterIPs, famAddr.Is4())
			port, seen, matched := slicePort(slice, sp)
			var sets endpointSets
			if matched {
				sets, _ = collectEndpoints(sp, in.Slices, fam, where{b.opts.NodeName, b.opts.Zone}, &b.endpoints)
			}
			for _, ep := range slice.Endpoints {
				e := Explanation{Port: sp.Name, Endpoint: ep.Address(), Node: ep.Node}
				addr, err := ep.parsed()
				switch {
				case !seen:
					e.Internal = "not programmed: the EndpointSlice lists no ports"
				case !matched:
					e.Internal = fmt.Sprintf("not programmed: no port %q/%s in EndpointSlice %s", sp.Name, sp.Protocol, slice.Name)
				case !realServerAddr(addr, err, famAddr.Is4()):
					e.Internal = "not programmed: invalid " + string(fam) + " address"
				default:
					dst := netip.AddrPortFrom(addr, port)
					local := b.opts.NodeName != "" && e.Node == b.opts.NodeName
					e.Internal = why(dst, sets, internalLocal, local, "internalTrafficPolicy", ep.Ready, ep.Terminating)
					e.External = why(dst, sets, externalLocal, local, "externalTrafficPolicy", ep.Ready, ep.Terminating)
				}
				if e.External == "" {
					e.External = e.Internal
				}
				if !external {
					// No NodePort, externalIP or LoadBalancer IP of this
					// family that the proxy's settings let through.
					e.External = "-"
				}
				out = append(out, e)
			}
		}
	}
	return out
}

// noIPv6Reason explains an IPv6 endpoint under Options.NoIPv6.
const noIPv6Reason = "not programmed: the host has no ip6tables (no IPv6 Services)"

func why(dst netip.AddrPort, sets endpointSets, localPolicy, local bool, policy string, ready, terminating Condition) string {
	chosen := sets.cluster
	if localPolicy {
		if !local {
			return "not programmed: not local under " + policy + " Local"
		}
		chosen = sets.local
	}
	for _, d := range chosen {
		if d.AddrPort() == dst {
			if terminating == True && ready == False {
				return "programmed (terminating, no ready endpoint left)"
			}
			return "programmed"
		}
	}
	switch {
	case terminating == True && ready == False:
		return "not programmed: terminating"
	case ready == False:
		return "not programmed: not ready"
	case !localPolicy && sets.topology == v1.ServiceTrafficDistributionPreferSameZone:
		return "not programmed: topology hints (PreferSameZone) give it to other zones"
	case !localPolicy && sets.topology == v1.ServiceTrafficDistributionPreferSameNode:
		return "not programmed: topology hints (PreferSameNode) give it to other nodes"
	}
	return "not programmed"
}

// builtExternal says whether the built state has a virtual server for the
// Service port named port, of the family v4 says, on an address that is
// not a clusterIP: a NodePort, externalIP or LoadBalancer IP that the
// builder kept (the options can leave them all out: --nodeport-addresses,
// the external-IP gate, the pod and Service CIDRs, the per-Service cap).
func builtExternal(st ServiceState, port string, clusterIPs []netip.Addr, v4 bool) bool {
	for _, e := range st.Entries {
		k := e.ServiceKey
		if e.Owner.Port == port && k.FWMark == 0 && k.Addr.Is4() == v4 && !slices.Contains(clusterIPs, k.Addr) {
			return true
		}
	}
	return false
}
