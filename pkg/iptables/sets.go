package iptables

// The kernel sets the rules match on. The masquerade sets hold only this
// node's endpoints, so their size does not grow with the number of
// Services in the cluster; the filter sets hold VIPs and service ports.
// The proxier keeps their members, the rules only name them.

// HairpinSet holds (endpoint ip, proto:port, endpoint ip) for this node's
// endpoints: type hash:ip,port,ip.
func HairpinSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-HAIRPIN6"
	}
	return "IPVS-PROXY-HAIRPIN"
}

// KeepSourceSet holds (address, proto:port) of the externalTrafficPolicy
// Local virtual servers that have real servers on this node: type
// hash:ip,port.
func KeepSourceSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-KEEP-SOURCE6"
	}
	return "IPVS-PROXY-KEEP-SOURCE"
}

// VIPSet holds every address ipvs-proxy put on the dummy interface: type
// hash:ip. It grows with the cluster's Services, as kube-proxy's
// KUBE-IPVS-IPS does; the filter rules do not.
func VIPSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-VIPS6"
	}
	return "IPVS-PROXY-VIPS"
}

// ExternalVIPSet holds the externalIPs and LoadBalancer IPs on the dummy
// interface of Services whose externalTrafficPolicy is Cluster: traffic to
// them is always masqueraded, as kube-proxy does. Type hash:ip.
func ExternalVIPSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-EXTERNAL-VIPS6"
	}
	return "IPVS-PROXY-EXTERNAL-VIPS"
}

// ServicePortsSet holds (VIP, proto:port) of the virtual servers that have
// real servers: type hash:ip,port.
func ServicePortsSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-SERVICE-PORTS6"
	}
	return "IPVS-PROXY-SERVICE-PORTS"
}

// NoLocalEndpointsSet holds (address, proto:port) of externalTrafficPolicy
// Local external virtual servers without a real server on this node: type
// hash:ip,port.
func NoLocalEndpointsSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-NO-LOCAL-ENDPOINTS6"
	}
	return "IPVS-PROXY-NO-LOCAL-ENDPOINTS"
}

// FirewallSet holds (LoadBalancer IP, proto:port) of the Services with
// loadBalancerSourceRanges: type hash:ip,port.
func FirewallSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-FIREWALL6"
	}
	return "IPVS-PROXY-FIREWALL"
}

// SourceRangesSet holds (LoadBalancer IP, proto:port, source CIDR): the
// sources FirewallSet's members admit. Type hash:ip,port,net.
func SourceRangesSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-SOURCE-RANGES6"
	}
	return "IPVS-PROXY-SOURCE-RANGES"
}

// ShortCircuitSet holds (address, proto:port) of the externalTrafficPolicy
// Local external virtual servers (externalIPs, LoadBalancer IPs, node
// ports), each with the firewall mark of its Service port's cluster-wide
// virtual server: type hash:ip,port with skbinfo. Traffic from this node
// and its pods gets the mark, so IPVS sends it to every endpoint, as
// kube-proxy's iptables mode does (kubernetes#77523).
func ShortCircuitSet(fam Family) string {
	if fam == IPv6 {
		return "IPVS-PROXY-SHORT-CIRCUIT6"
	}
	return "IPVS-PROXY-SHORT-CIRCUIT"
}
