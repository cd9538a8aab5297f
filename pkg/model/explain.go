package model

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
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
func (b *Builder) Explain(in ServiceInput) []Explanation {
	var out []Explanation
	svc := in.Service
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	externalLocal := svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	for _, sp := range svc.Spec.Ports {
		for _, slice := range in.Slices {
			port, _, matched := slicePort(slice, sp)
			fam := slice.AddressType
			var sets endpointSets
			if matched {
				sets, _ = collectEndpoints(sp, in.Slices, fam, b.opts.NodeName)
			}
			for _, ep := range slice.Endpoints {
				if len(ep.Addresses) == 0 {
					continue
				}
				e := Explanation{Port: sp.Name, Endpoint: ep.Addresses[0]}
				if ep.NodeName != nil {
					e.Node = *ep.NodeName
				}
				addr, err := netip.ParseAddr(ep.Addresses[0])
				switch {
				case !matched:
					e.Internal = fmt.Sprintf("not programmed: port name %q not matched in EndpointSlice %s", sp.Name, slice.Name)
					e.External = e.Internal
				case err != nil:
					e.Internal = "not programmed: invalid address"
					e.External = e.Internal
				default:
					dst := netip.AddrPortFrom(addr, port)
					local := e.Node == b.opts.NodeName
					e.Internal = why(dst, sets, internalLocal, local, "internalTrafficPolicy", ep.Conditions.Ready, ep.Conditions.Terminating)
					e.External = why(dst, sets, externalLocal, local, "externalTrafficPolicy", ep.Conditions.Ready, ep.Conditions.Terminating)
				}
				out = append(out, e)
			}
		}
	}
	return out
}

func why(dst netip.AddrPort, sets endpointSets, localPolicy, local bool, policy string, ready, terminating *bool) string {
	chosen := sets.cluster
	if localPolicy {
		if !local {
			return "not programmed: not local under " + policy + " Local"
		}
		chosen = sets.local
	}
	for _, d := range chosen {
		if d.AddrPort() == dst {
			if terminating != nil && *terminating {
				return "programmed (terminating, no ready endpoint left)"
			}
			return "programmed"
		}
	}
	switch {
	case terminating != nil && *terminating:
		return "not programmed: terminating"
	case ready != nil && !*ready:
		return "not programmed: not ready"
	}
	return "not programmed"
}
