package cleanup

import (
	"slices"
	"strings"
)

// The names below were read from kubernetes/kubernetes (kube-proxy v1.37
// and the older releases named on each line). A name on these lists is
// removed; no other name is, so when kube-proxy adds one, add it here.

// ownedChains are kube-proxy's chains by table.
var ownedChains = map[string][]string{
	"nat": {
		// IPVS mode, pkg/proxy/ipvs/proxier.go iptablesChains.
		"KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ",
		// IPVS mode before KUBE-PROXY-FIREWALL: its LoadBalancerSourceRanges
		// chain (KubeFireWallChain) was a nat KUBE-FIREWALL. kubelet's
		// KUBE-FIREWALL is in filter, never in nat.
		"KUBE-FIREWALL",
		// iptables mode, pkg/proxy/iptables/cleanup.go (nat list).
		"KUBE-NODEPORTS", "KUBE-PROXY-CANARY",
	},
	"filter": {
		// IPVS mode, pkg/proxy/ipvs/proxier.go iptablesChains.
		"KUBE-FORWARD", "KUBE-NODE-PORT", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL",
		"KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER",
		// iptables mode, pkg/proxy/iptables/cleanup.go (filter list).
		"KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-CANARY",
	},
	// iptables mode's canary (ipt.Monitor over mangle, nat and filter).
	"mangle": {"KUBE-PROXY-CANARY"},
}

// kubeletChains are kubelet's (pkg/kubelet/kubelet_network_linux.go; nat
// KUBE-MARK-DROP from kubelets before IPTablesOwnershipCleanup). They are
// not on ownedChains; the list exists so a test can prove it stays that way.
var kubeletChains = map[string][]string{
	"nat":    {"KUBE-KUBELET-CANARY", "KUBE-MARK-DROP"},
	"filter": {"KUBE-KUBELET-CANARY", "KUBE-FIREWALL"},
	"mangle": {"KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"},
}

// serviceChainPrefixes are the per-Service chains of iptables mode, all in
// nat (pkg/proxy/iptables/proxier.go isServiceChainName; KUBE-XLB- is the
// deprecatedServiceLBChainNamePrefix of releases before 1.26).
var serviceChainPrefixes = []string{"KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-", "KUBE-XLB-"}

// cleanedTables are the tables kube-proxy writes to.
var cleanedTables = []string{"nat", "filter", "mangle"}

// isOwnedChain reports whether chain in table is kube-proxy's.
func isOwnedChain(table, chain string) bool {
	if slices.Contains(ownedChains[table], chain) {
		return true
	}
	return table == "nat" && isServiceChain(chain)
}

// isServiceChain matches a prefix followed by exactly what kube-proxy puts
// after it: the first 16 characters of the base32 (RFC 4648 alphabet) of a
// SHA-256. A user's "KUBE-SVC-MYAPP" does not match.
func isServiceChain(chain string) bool {
	for _, p := range serviceChainPrefixes {
		hash, ok := strings.CutPrefix(chain, p)
		if ok && len(hash) == 16 && strings.Trim(hash, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == "" {
			return true
		}
	}
	return false
}

// ipsetBaseNames are IPVS mode's sets (pkg/proxy/ipvs/ipset.go constants,
// the ipsetInfo list in pkg/proxy/ipvs/proxier.go).
var ipsetBaseNames = []string{
	"KUBE-LOOP-BACK",
	"KUBE-CLUSTER-IP",
	"KUBE-EXTERNAL-IP",
	"KUBE-EXTERNAL-IP-LOCAL",
	"KUBE-LOAD-BALANCER",
	"KUBE-LOAD-BALANCER-FW",
	"KUBE-LOAD-BALANCER-LOCAL",
	"KUBE-LOAD-BALANCER-SOURCE-IP",
	"KUBE-LOAD-BALANCER-SOURCE-CIDR",
	"KUBE-NODE-PORT-TCP",
	"KUBE-NODE-PORT-LOCAL-TCP",
	"KUBE-NODE-PORT-UDP",
	"KUBE-NODE-PORT-LOCAL-UDP",
	"KUBE-NODE-PORT-SCTP-HASH",
	"KUBE-NODE-PORT-LOCAL-SCTP-HASH",
	"KUBE-HEALTH-CHECK-NODE-PORT",
	"KUBE-IPVS-IPS",
}

// legacyIPSetNames were bitmap:port SCTP sets of releases before the
// -HASH ones (legacyKubeNodePortSetSCTP and ...LocalSetSCTP); they predate
// the KUBE-6- names, so there is no IPv6 spelling.
var legacyIPSetNames = []string{"KUBE-NODE-PORT-SCTP", "KUBE-NODE-PORT-LOCAL-SCTP"}

// ipv6SetName spells a set name as kube-proxy's IPv6 proxier does
// (NewIPSet in pkg/proxy/ipvs/ipset.go): "KUBE-" becomes "KUBE-6-", cut to
// ipset's 31-character limit.
func ipv6SetName(name string) string {
	if rest, ok := strings.CutPrefix(name, "KUBE-"); ok {
		name = "KUBE-6-" + rest
	}
	if len(name) > 31 {
		name = name[:31]
	}
	return name
}

// ownedSetNames returns every set name kube-proxy may have left, sorted.
func ownedSetNames() []string {
	out := slices.Clone(legacyIPSetNames)
	for _, n := range ipsetBaseNames {
		out = append(out, n, ipv6SetName(n))
	}
	slices.Sort(out)
	return out
}
