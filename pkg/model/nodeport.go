package model

import "net/netip"

// NodePortIPs chooses the node addresses NodePorts listen on. With no
// prefixes it is every address but loopback (IPVS cannot serve NodePorts on
// 127.0.0.1: kubernetes#56320) and IPv6 link-local (it needs a zone);
// otherwise the addresses inside the prefixes, with the same exclusions.
func NodePortIPs(nodeIPs []netip.Addr, prefixes []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, ip := range nodeIPs {
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || seen[ip] {
			continue
		}
		if len(prefixes) > 0 && !contains(prefixes, ip) {
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
