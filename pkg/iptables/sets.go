package iptables

// The kernel sets the rules match on. Both hold only this node's endpoints,
// so their size does not grow with the number of Services in the cluster;
// the proxier keeps their members, the rules only name them.

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
