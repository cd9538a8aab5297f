package model

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	v1 "k8s.io/api/core/v1"
)

// SourceRangesAnnotation is read when spec.loadBalancerSourceRanges is
// empty, as kube-proxy does.
const SourceRangesAnnotation = "service.beta.kubernetes.io/load-balancer-source-ranges"

// chosenAddr is an address a user or a controller wrote into a Service.
type chosenAddr struct {
	addr netip.Addr
	lb   bool // a LoadBalancer ingress IP; otherwise an externalIP
}

// kind names the address as a problem text does.
func (c chosenAddr) kind() string {
	if c.lb {
		return "LoadBalancer ingress IP"
	}
	return "externalIP"
}

// chosenAddrs returns the externalIPs and LoadBalancer ingress IPs the
// Service may use. Any tenant can write them, so each is checked: an
// address that is not one a virtual server can serve from the network
// (loopback, link-local, multicast, unspecified), or that lies in the pod
// or Service ranges without being this Service's own clusterIP, would
// capture traffic that is not the Service's, and is skipped with a problem.
// Ingress with ipMode Proxy is skipped quietly: the load balancer proxies to
// the node, so the node must not capture the LB's address itself.
func (b *Builder) chosenAddrs(svc *Service, clusterIPs []netip.Addr, problems *[]string) []chosenAddr {
	var out []chosenAddr
	check := func(what string, s string, lb bool) {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			*problems = append(*problems, fmt.Sprintf("%s %q is not a valid IP address; skipped", what, s))
			return
		}
		a = a.Unmap()
		if why := b.unusable(a, clusterIPs); why != "" {
			*problems = append(*problems, fmt.Sprintf("%s %s is %s; skipped", what, a, why))
			return
		}
		// One of a family the Service has no clusterIP of has no endpoints
		// of that family either: it gets nothing, like a NodePort.
		if hasFamily(clusterIPs, a) {
			out = append(out, chosenAddr{addr: a, lb: lb})
		}
	}
	if len(svc.ExternalIPs) > 0 && b.opts.DenyExternalIPs {
		*problems = append(*problems, "externalIPs are disabled on this node (feature gate AllowServiceExternalIPs=false); skipped")
	} else {
		for _, s := range svc.ExternalIPs {
			check("externalIP", s, false)
		}
	}
	if svc.Type == v1.ServiceTypeLoadBalancer {
		for _, ip := range svc.IngressIPs {
			check("LoadBalancer ingress IP", ip, true)
		}
	}
	return out
}

// unusable says why a chosen address must not become a virtual server, or "".
func (b *Builder) unusable(a netip.Addr, clusterIPs []netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsMulticast():
		return "a multicast address"
	case slices.Contains(clusterIPs, a):
		return "" // the Service's own clusterIP: deduplicated later
	case contains(b.opts.ClusterCIDRs, a):
		return "inside the cluster's pod range"
	case contains(b.opts.ServiceCIDRs, a):
		return "inside the Service range and not this Service's clusterIP"
	}
	return ""
}

// sourceRanges returns the Service's loadBalancerSourceRanges (or, when
// the field is empty, the deprecated annotation, which kube-proxy v1.37
// does not read: the cloud's load balancer enforces it, and ipvs-proxy
// holds it for the clients that reach the LB IP on the node, as it holds
// the field), nil when it declares none. A range
// that does not parse is skipped with a problem; a Service whose ranges
// all fail to parse gets an empty, non-nil list: it declared a limit, so
// its LoadBalancer IPs admit no one rather than everyone.
func sourceRanges(svc *Service) ([]netip.Prefix, []string) {
	if svc.Type != v1.ServiceTypeLoadBalancer {
		return nil, nil
	}
	in := svc.LoadBalancerSourceRanges
	if len(in) == 0 {
		if v := strings.TrimSpace(svc.Annotations[SourceRangesAnnotation]); v != "" {
			in = strings.Split(v, ",")
		}
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := []netip.Prefix{}
	var problems []string
	for _, s := range in {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			problems = append(problems, fmt.Sprintf("loadBalancerSourceRange %q is not a valid CIDR; skipped", s))
			continue
		}
		if p.Addr().Is4In6() {
			// An IPv4 range spelt in IPv6 (older API servers accept it):
			// the kernel's sets hold it as the IPv4 range it means.
			if p.Bits() < 96 {
				problems = append(problems, fmt.Sprintf("loadBalancerSourceRange %q mixes IPv4-mapped and other IPv6 addresses; skipped", s))
				continue
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, problems
}

// rangeFamilyProblems names each family of the Service's LoadBalancer IPs
// for which its ranges hold none: those LB IPs admit no client.
// kube-proxy keeps each family's own ranges and gives a family left
// without one no firewall, admitting every client of it; the Service
// declared a limit, so ipvs-proxy holds it closed, and says so.
func rangeFamilyProblems(ranges []netip.Prefix, lbIPs map[netip.Addr]bool) []string {
	if len(ranges) == 0 {
		return nil // none declared, or none valid (already a problem)
	}
	var has, lb [2]bool // by family: IPv4, IPv6
	for _, r := range ranges {
		has[FamilyIndex(r.Addr())] = true
	}
	for a := range lbIPs {
		lb[FamilyIndex(a)] = true
	}
	var out []string
	for f, name := range []string{"IPv4", "IPv6"} {
		if lb[f] && !has[f] {
			all := []string{"0.0.0.0/0", "::/0"}[f]
			out = append(out, fmt.Sprintf("loadBalancerSourceRanges hold no %s range: the %s LoadBalancer IPs admit no client "+
				"(kube-proxy would admit every one; add %s to admit all)", name, name, all))
		}
	}
	return out
}

// allowed returns the sources that may reach the LoadBalancer virtual
// server m: the ranges of its family, and the LB IP itself when one of the
// node's addresses is in the ranges. A connection the node opens to an LB
// IP on the dummy interface has that IP as its source, so this is how the
// node's own traffic is let through exactly when the ranges admit the node.
func (b *Builder) allowed(m SetMember, ranges []netip.Prefix) []RangeMember {
	var out []RangeMember
	node := false
	for _, r := range ranges {
		if r.Addr().Is4() != m.Addr.Is4() {
			continue
		}
		out = append(out, RangeMember{SetMember: m, Source: r})
		for ip := range b.nodeIPs {
			node = node || r.Contains(ip)
		}
	}
	if node {
		out = append(out, RangeMember{SetMember: m, Source: netip.PrefixFrom(m.Addr, m.Addr.BitLen())})
	}
	return out
}

func sortedRanges(ms []RangeMember) []RangeMember {
	slices.SortFunc(ms, func(a, b RangeMember) int {
		return cmp.Or(compareMembers(a.SetMember, b.SetMember), a.Source.Addr().Compare(b.Source.Addr()), cmp.Compare(a.Source.Bits(), b.Source.Bits()))
	})
	return slices.Compact(ms)
}

// capped drops the virtual servers past Options.MaxVirtualServers, chosen
// addresses first and then in key order, with a problem that says so.
// The members of IPVS-PROXY-SOURCE-RANGES a virtual server brings count
// too (loadBalancerSourceRanges times LoadBalancer IP:ports): the set is
// shared by every Service and its size is bounded (the kernel's default
// maxelem is 65,536), so one Service with 70,000 ranges on a single port
// would fill it for everyone. A virtual server that does not fit goes with
// its ranges, and so do the ones after it: its LoadBalancer IP:port is
// then not served at all, never served without its firewall.
func (b *Builder) capped(st ServiceState) ServiceState {
	max := b.opts.MaxVirtualServers
	// A firewall-mark virtual server is not counted: one per port and
	// family at most, it goes when the addresses that lead to it go.
	order := slices.DeleteFunc(slices.Clone(st.Entries), func(e Entry) bool { return e.FWMark != 0 })
	if max <= 0 || len(order)+len(st.SourceRanges) <= max {
		return st
	}
	ranges := map[ipvs.ServiceKey]int{}
	for _, m := range st.SourceRanges {
		ranges[m.Key()]++
	}
	slices.SortStableFunc(order, func(x, y Entry) int {
		if x.Chosen != y.Chosen {
			if x.Chosen {
				return 1
			}
			return -1
		}
		return ipvs.CompareKeys(x.ServiceKey, y.ServiceKey)
	})
	drop := map[ipvs.ServiceKey]string{}
	n := 0
	for _, e := range order {
		if n += 1 + ranges[e.ServiceKey]; n > max {
			drop[e.ServiceKey] = ""
		}
	}
	out := st.Without(drop)
	members := ""
	if len(st.SourceRanges) > 0 {
		members = fmt.Sprintf(" and %d source-range set members (loadBalancerSourceRanges times LoadBalancer IP:ports)", len(st.SourceRanges))
	}
	out.Problems = append(slices.Clone(st.Problems), fmt.Sprintf(
		"the Service wants %d virtual servers%s, more than the cap of %d per Service; %d skipped (externalIPs and LoadBalancer IPs first)",
		len(order), members, max, len(drop)))
	return out
}
