package model

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
)

// NodePortIPs chooses the node addresses NodePorts listen on, per IP
// family as kube-proxy v1.37 does (pkg/proxy/util/nodeport_addresses.go):
// an address is used if it is inside one of the prefixes of its family, or
// if the prefixes hold none of its family (so "10.0.0.0/8" alone still
// gives a dual-stack node its IPv6 NodePorts). Loopback (IPVS cannot serve
// NodePorts on 127.0.0.1: kubernetes#56320) and IPv6 link-local (it needs
// a zone) are never used; IPv4 link-local is, as kube-proxy's IPVS mode
// uses it (NodeLocal DNSCache's 169.254.20.10 on its own link, say).
func NodePortIPs(nodeIPs []netip.Addr, prefixes []netip.Prefix) []netip.Addr {
	var has4, has6 bool
	for _, p := range prefixes {
		if p.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, ip := range nodeIPs {
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.Is6() && ip.IsLinkLocalUnicast() || ip.IsUnspecified() || seen[ip] {
			continue
		}
		if familyListed := ip.Is4() && has4 || ip.Is6() && has6; familyListed && !contains(prefixes, ip) {
			continue
		}
		seen[ip] = true
		out = append(out, ip)
	}
	return out
}

func contains(prefixes []netip.Prefix, ip netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// PrimaryNodeIPs are the node's primary IPs as kube-proxy finds them: the
// first of the Node's InternalIP (else ExternalIP) addresses and the first
// of the other family, with bindAddress (kube-proxy's --bind-address), if
// it is set and not 0.0.0.0 or ::, in place of its family's. They are what
// nodePortAddresses' "primary" keyword stands for.
func PrimaryNodeIPs(addrs []v1.NodeAddress, bindAddress string) []netip.Addr {
	var all []netip.Addr
	for _, typ := range []v1.NodeAddressType{v1.NodeInternalIP, v1.NodeExternalIP} {
		for _, a := range addrs {
			if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == typ {
				all = append(all, ip.Unmap())
			}
		}
	}
	var primary []netip.Addr
	for _, ip := range all {
		if len(primary) == 0 || len(primary) == 1 && ip.Is4() != primary[0].Is4() {
			primary = append(primary, ip)
		}
	}
	bind, err := netip.ParseAddr(bindAddress)
	if err != nil || bind.IsUnspecified() {
		return primary
	}
	bind = bind.Unmap()
	for i, ip := range primary {
		if ip.Is4() == bind.Is4() {
			primary[i] = bind
			return primary
		}
	}
	return append(primary, bind)
}

// PrimaryPrefixes is "primary" expanded as kube-proxy does: a /32 or /128
// for each primary IP that is not loopback.
func PrimaryPrefixes(primary []netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, ip := range primary {
		if !ip.IsLoopback() {
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return out
}
