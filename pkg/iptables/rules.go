package iptables

import (
	"net/netip"
	"slices"
)

// The rule list. Everything ipvs-proxy asks of iptables is here, so that
// later additions (externalTrafficPolicy=Local exceptions, VIP port
// protection in the filter table) have one place to go.
//
// Every rule is written in the form `iptables -S` prints it back, since
// Sync compares what it reads, argument by argument, with what it wants:
// "! -s" before any -m, masked CIDRs, the comment first among the matches,
// each extension's options in the order and spelling it prints them
// (libxt_ipvs prints "--vdir ORIGINAL --vmethod MASQ"). Quoting does not
// matter: Sync undoes it. Checked here against iptables 1.8.9 (nft) for
// everything but -m ipvs, whose kernel module this host lacks; the VM test
// (a second Sync makes no write) is the proof for the rest.

// PostroutingChain holds the masquerade rules; POSTROUTING jumps to it.
const PostroutingChain = ChainPrefix + "POSTROUTING"

// ipvsMasq matches the packets of IPVS connections in their original
// direction (client to real server, after IPVS chose the real server), for
// connections forwarded by masquerading, which is all of ipvs-proxy's. It is
// why the rules need not name any Service. The nat table only sees IPVS
// connections with net.ipv4.vs.conntrack=1.
var ipvsMasq = []string{"-m", "ipvs", "--vdir", "ORIGINAL", "--vmethod", "MASQ"}

// Desired returns the rules for one family. It is pure: CIDRs of the other
// family are skipped, as are invalid ones (flag validation reports those).
func Desired(cfg Config, fam Family) RuleSet {
	return RuleSet{Family: fam, Chains: []Chain{{
		// IPVS takes packets in LOCAL_IN, after nat PREROUTING: there the
		// destination is still the virtual server, so this is where a
		// connection is sorted into kept source and masqueraded. The
		// packet mark survives IPVS's rewrite to POSTROUTING.
		Table: "nat", Name: PreroutingChain, JumpFrom: "PREROUTING",
		Rules: preroutingRules(cfg, fam),
	}, {
		// mangle PREROUTING (-150) is the only place before IPVS where the
		// SET target may map a member's mark (xt_SET refuses --map-set
		// outside mangle).
		Table: "mangle", Name: ShortCircuitChain, JumpFrom: "PREROUTING",
		Rules: shortCircuitRules(cfg, fam),
	}, {
		Table: "nat", Name: PostroutingChain, JumpFrom: "POSTROUTING",
		Rules: masqueradeRules(cfg, fam),
	}, {
		Table: "filter", Name: FilterChain, JumpFrom: "INPUT",
		Rules: slices.Concat([][]string{sourceRangesRule(fam), shortCircuitPass(fam, "ipvs-proxy: let short-circuited in-cluster traffic through to IPVS")}, filterRules(fam)),
	}, {
		// The node's own connections meet IPVS in LOCAL_OUT at priority
		// -98 and never pass filter INPUT, so their source ranges are
		// checked in mangle OUTPUT (-150), before IPVS rewrites the
		// destination (kube-proxy misses this: kubernetes#119656).
		Table: "mangle", Name: OutputChain, JumpFrom: "OUTPUT",
		Rules: [][]string{sourceRangesRule(fam), mapMark(nil, "ipvs-proxy: send traffic from the node to externalTrafficPolicy Local addresses to every endpoint", fam)},
	}}}
}

// ShortCircuitChain marks traffic from this node's pods to the
// externalTrafficPolicy Local external addresses; mangle PREROUTING jumps
// to it.
const ShortCircuitChain = ChainPrefix + "SHORT-CIRCUIT"

// ShortCircuitMark and ShortCircuitMask: a packet mark m with
// m&ShortCircuitMask == ShortCircuitMark is one ShortCircuitSet put there
// (see ipvs.OwnedMark). IPVS looks a firewall-mark virtual server up by
// the packet's whole mark, so nothing may add a bit to it before IPVS.
const (
	ShortCircuitMark = "0x40000000"
	ShortCircuitMask = "0xc000f000"
)

// mapMark puts the mark ShortCircuitSet holds for the destination on the
// packet. The mark replaces the packet's whole mark: IPVS compares all of
// it.
func mapMark(addrs []string, comment string, fam Family) []string {
	return rule(addrs, comment, []string{"-m", "set", "--match-set", ShortCircuitSet(fam), "dst,dst"},
		"SET", "--map-set", ShortCircuitSet(fam), "dst,dst", "--map-mark")
}

// shortCircuitPass matches the packets mapMark marked and lets them go on
// unchanged (RETURN), past the rules that would drop them (no local
// endpoint) or add a mark bit (masquerade, keep source).
func shortCircuitPass(fam Family, comment string) []string {
	return rule(nil, comment, []string{"-m", "set", "--match-set", ShortCircuitSet(fam), "dst,dst", "-m", "mark", "--mark", ShortCircuitMark + "/" + ShortCircuitMask}, "RETURN")
}

// shortCircuitRules mark the traffic of this node's pods, told apart as
// --detect-local-mode says, as the node's own is in mangle OUTPUT. With no
// way to tell pods apart, only the node's traffic is short-circuited, as
// kube-proxy does.
func shortCircuitRules(cfg Config, fam Family) [][]string {
	const comment = "ipvs-proxy: send pod traffic to externalTrafficPolicy Local addresses to every endpoint"
	switch {
	case cfg.LocalBridge != "":
		return [][]string{mapMark([]string{"-i", cfg.LocalBridge}, comment, fam)}
	case cfg.LocalInterfacePrefix != "":
		return [][]string{mapMark([]string{"-i", cfg.LocalInterfacePrefix + "+"}, comment, fam)}
	}
	var rules [][]string
	for _, c := range clusterCIDRs(cfg.LocalCIDRs, fam) {
		rules = append(rules, mapMark([]string{"-s", c.String()}, comment, fam))
	}
	return rules
}

// OutputChain checks the node's own traffic to LoadBalancer IPs; mangle
// OUTPUT jumps to it.
const OutputChain = ChainPrefix + "OUTPUT"

// sourceRangesRule drops a packet to a LoadBalancer IP:port that has
// loadBalancerSourceRanges from a source outside them. One rule for every
// Service: the sets pair each IP:port with its own ranges, so two Services
// sharing one LB IP on different ports keep theirs (kubernetes#119791).
func sourceRangesRule(fam Family) []string {
	return rule(nil, "ipvs-proxy: drop traffic to LoadBalancer IPs from outside their loadBalancerSourceRanges",
		[]string{"-m", "set", "--match-set", FirewallSet(fam), "dst,dst", "-m", "set", "!", "--match-set", SourceRangesSet(fam), "dst,dst,src"}, "DROP")
}

// FilterChain guards the VIPs; filter INPUT jumps to it.
const FilterChain = ChainPrefix + "FILTER"

// filterRules run in filter INPUT, before IPVS: the kernel calls IPVS in
// LOCAL_IN at priority 99, after the filter table (0), so a packet to a VIP
// meets these rules first, and a packet IPVS would not take (a VIP on a
// port no Service has) would otherwise reach any host socket bound to
// 0.0.0.0 (kubernetes#72236). The rules match sets, never a Service, so
// their number is constant.
func filterRules(fam Family) [][]string {
	return [][]string{
		// Before the VIP rules: an externalIP or LB IP is a VIP too. New
		// connections only, so that one still draining from the last
		// local endpoint (weight 0) keeps going.
		rule(nil, "ipvs-proxy: drop external traffic to externalTrafficPolicy Local services without local endpoints",
			[]string{"-m", "conntrack", "--ctstate", "NEW", "-m", "set", "--match-set", NoLocalEndpointsSet(fam), "dst,dst"}, "DROP"),
		rule(nil, "ipvs-proxy: let service ports with endpoints through to IPVS",
			[]string{"-m", "set", "--match-set", ServicePortsSet(fam), "dst,dst"}, "RETURN"),
		// Only new connections: a connection IPVS took is ESTABLISHED
		// when its later packets come here, even after its port went away.
		// Like kube-proxy, every protocol (ping included) is refused.
		rule(nil, "ipvs-proxy: reject anything else sent to a VIP",
			[]string{"-m", "conntrack", "--ctstate", "NEW", "-m", "set", "--match-set", VIPSet(fam), "dst"}, "REJECT", "--reject-with", rejectWith(fam)),
	}
}

// rejectWith is REJECT's default, spelled as iptables -S prints it.
func rejectWith(fam Family) string {
	if fam == IPv6 {
		return "icmp6-port-unreachable"
	}
	return "icmp-port-unreachable"
}

// PreroutingChain marks connections whose client address must be kept.
const PreroutingChain = ChainPrefix + "PREROUTING"

// KeepSourceMark is the packet mark bit for "keep the client's address".
// It avoids kube-proxy's 0x4000 (masquerade) and 0x8000 (drop), so the two
// proxies' rules cannot confuse each other during a migration.
const KeepSourceMark = "0x2000"

// MasqueradeMark is the packet mark bit for "masquerade this connection",
// set in PREROUTING. It avoids kube-proxy's 0x4000 (masquerade) and
// 0x8000 (drop) and KeepSourceMark.
const MasqueradeMark = "0x1000"

// preroutingRules mark, for POSTROUTING, the connections whose client
// address must be kept and those that must be masqueraded, as kube-proxy
// decides it: traffic to a NodePort, externalIP or LoadBalancer IP of a
// Service with externalTrafficPolicy Cluster is always masqueraded (its
// real server may be on another node, and would answer the client
// directly); traffic to a clusterIP only when it does not come from this
// node's pods (--detect-local-mode). Host-originated traffic never passes
// here (see masqueradeRules).
func preroutingRules(cfg Config, fam Family) [][]string {
	mark := []string{"MARK", "--set-xmark", MasqueradeMark + "/" + MasqueradeMark}
	rules := [][]string{
		shortCircuitPass(fam, "ipvs-proxy: short-circuited in-cluster traffic keeps its mark alone"),
		rule(nil, "ipvs-proxy: mark connections to externalTrafficPolicy Local virtual servers",
			[]string{"-m", "set", "--match-set", KeepSourceSet(fam), "dst,dst"}, "MARK", "--set-xmark", KeepSourceMark+"/"+KeepSourceMark),
		// A NodePort (or an externalIP that is a node address) is on a
		// local address that is no VIP.
		rule(nil, "ipvs-proxy: masquerade traffic to node ports",
			[]string{"-m", "addrtype", "--dst-type", "LOCAL", "-m", "set", "!", "--match-set", VIPSet(fam), "dst"}, mark[0], mark[1:]...),
		rule(nil, "ipvs-proxy: masquerade traffic to externalIPs and LoadBalancer IPs",
			[]string{"-m", "set", "--match-set", ExternalVIPSet(fam), "dst"}, mark[0], mark[1:]...),
	}
	toVIP := []string{"-m", "set", "--match-set", VIPSet(fam), "dst"}
	switch {
	case cfg.LocalBridge != "":
		return append(rules, rule([]string{"!", "-i", cfg.LocalBridge}, "ipvs-proxy: masquerade service traffic not from the pod bridge", toVIP, mark[0], mark[1:]...))
	case cfg.LocalInterfacePrefix != "":
		return append(rules, rule([]string{"!", "-i", cfg.LocalInterfacePrefix + "+"}, "ipvs-proxy: masquerade service traffic not from pod interfaces", toVIP, mark[0], mark[1:]...))
	}
	cidrs := clusterCIDRs(cfg.LocalCIDRs, fam)
	switch len(cidrs) {
	case 0:
		// No local traffic can be told apart: clusterIP traffic keeps its
		// source (unless --masquerade-all), as kube-proxy's no-op detector.
	case 1:
		rules = append(rules, rule([]string{"!", "-s", cidrs[0].String()}, "ipvs-proxy: masquerade service traffic from outside the pod CIDR", toVIP, mark[0], mark[1:]...))
	default:
		// "Not in any of several CIDRs" takes one RETURN per CIDR and one
		// mark, last in the chain: consecutive "! -s" rules would mark
		// every pod.
		for _, c := range cidrs {
			rules = append(rules, rule([]string{"-s", c.String()}, "ipvs-proxy: keep the source of service traffic from pod CIDR "+c.String(), toVIP, "RETURN"))
		}
		rules = append(rules, rule(nil, "ipvs-proxy: masquerade service traffic from outside the pod CIDRs", toVIP, mark[0], mark[1:]...))
	}
	return rules
}

func masqueradeRules(cfg Config, fam Family) [][]string {
	// A host process reaching a VIP gets the VIP itself (a local address on
	// the dummy link) as its source; unless SNATed, the real server would
	// answer the VIP directly and the reply would never meet IPVS.
	rules := [][]string{rule(nil, "ipvs-proxy: masquerade host-originated service traffic",
		slices.Concat(ipvsMasq, []string{"-m", "addrtype", "--src-type", "LOCAL"}), "MASQUERADE"),
		// Hairpin: a pod chosen as the real server of its own request would
		// get a packet from itself. The set holds this node's endpoints as
		// (ip, port, ip), so it grows with this node's endpoints only.
		rule(nil, "ipvs-proxy: masquerade hairpin traffic (a pod reaching itself)",
			slices.Concat(ipvsMasq, []string{"-m", "set", "--match-set", HairpinSet(fam), "dst,dst,src"}), "MASQUERADE"),
		// externalTrafficPolicy Local promises the client's own address to
		// the pod: connections marked in PREROUTING are exempt from the
		// rules below.
		rule(nil, "ipvs-proxy: keep the client address for externalTrafficPolicy Local",
			[]string{"-m", "mark", "--mark", KeepSourceMark + "/" + KeepSourceMark}, "RETURN"),
	}
	if cfg.MasqueradeAll {
		return append(rules, rule(nil, "ipvs-proxy: masquerade all service traffic (masquerade-all)", ipvsMasq, "MASQUERADE"))
	}
	return append(rules, rule(nil, "ipvs-proxy: masquerade service traffic marked in PREROUTING",
		slices.Concat([]string{"-m", "mark", "--mark", MasqueradeMark + "/" + MasqueradeMark}, ipvsMasq), "MASQUERADE"))
}

// rule assembles a rule in the order iptables -S prints it.
func rule(addrs []string, comment string, matches []string, target string, targetArgs ...string) []string {
	return slices.Concat(addrs, []string{"-m", "comment", "--comment", comment}, matches, []string{"-j", target}, targetArgs)
}

// clusterCIDRs returns the valid CIDRs of fam, masked as iptables prints
// them, without duplicates, in the given order.
func clusterCIDRs(all []netip.Prefix, fam Family) []netip.Prefix {
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	for _, p := range all {
		if !p.IsValid() || p.Addr().Is4() != (fam == IPv4) || p.Addr().Is4In6() {
			continue
		}
		p = p.Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
