package cleanup

import (
	"errors"
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Every set a dual-stack kube-proxy in IPVS mode makes, and two of others.
var nodeSets = []string{
	"KUBE-LOOP-BACK", "KUBE-CLUSTER-IP", "KUBE-EXTERNAL-IP", "KUBE-EXTERNAL-IP-LOCAL",
	"KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER-FW", "KUBE-LOAD-BALANCER-LOCAL",
	"KUBE-LOAD-BALANCER-SOURCE-IP", "KUBE-LOAD-BALANCER-SOURCE-CIDR",
	"KUBE-NODE-PORT-TCP", "KUBE-NODE-PORT-LOCAL-TCP", "KUBE-NODE-PORT-UDP", "KUBE-NODE-PORT-LOCAL-UDP",
	"KUBE-NODE-PORT-SCTP-HASH", "KUBE-NODE-PORT-LOCAL-SCTP-HASH", "KUBE-HEALTH-CHECK-NODE-PORT", "KUBE-IPVS-IPS",
	"KUBE-6-LOOP-BACK", "KUBE-6-CLUSTER-IP", "KUBE-6-EXTERNAL-IP", "KUBE-6-EXTERNAL-IP-LOCAL",
	"KUBE-6-LOAD-BALANCER", "KUBE-6-LOAD-BALANCER-FW", "KUBE-6-LOAD-BALANCER-LOCAL",
	"KUBE-6-LOAD-BALANCER-SOURCE-IP", "KUBE-6-LOAD-BALANCER-SOURCE-CID",
	"KUBE-6-NODE-PORT-TCP", "KUBE-6-NODE-PORT-LOCAL-TCP", "KUBE-6-NODE-PORT-UDP", "KUBE-6-NODE-PORT-LOCAL-UDP",
	"KUBE-6-NODE-PORT-SCTP-HASH", "KUBE-6-NODE-PORT-LOCAL-SCTP-HAS", "KUBE-6-HEALTH-CHECK-NODE-PORT", "KUBE-6-IPVS-IPS",
	"KUBE-MYAPP-ALLOW", "cali40all-ipam-pools",
}

const allSetsDestroyed = `
ipset: destroy KUBE-6-CLUSTER-IP
ipset: destroy KUBE-6-EXTERNAL-IP
ipset: destroy KUBE-6-EXTERNAL-IP-LOCAL
ipset: destroy KUBE-6-HEALTH-CHECK-NODE-PORT
ipset: destroy KUBE-6-IPVS-IPS
ipset: destroy KUBE-6-LOAD-BALANCER
ipset: destroy KUBE-6-LOAD-BALANCER-FW
ipset: destroy KUBE-6-LOAD-BALANCER-LOCAL
ipset: destroy KUBE-6-LOAD-BALANCER-SOURCE-CID
ipset: destroy KUBE-6-LOAD-BALANCER-SOURCE-IP
ipset: destroy KUBE-6-LOOP-BACK
ipset: destroy KUBE-6-NODE-PORT-LOCAL-SCTP-HAS
ipset: destroy KUBE-6-NODE-PORT-LOCAL-TCP
ipset: destroy KUBE-6-NODE-PORT-LOCAL-UDP
ipset: destroy KUBE-6-NODE-PORT-SCTP-HASH
ipset: destroy KUBE-6-NODE-PORT-TCP
ipset: destroy KUBE-6-NODE-PORT-UDP
ipset: destroy KUBE-CLUSTER-IP
ipset: destroy KUBE-EXTERNAL-IP
ipset: destroy KUBE-EXTERNAL-IP-LOCAL
ipset: destroy KUBE-HEALTH-CHECK-NODE-PORT
ipset: destroy KUBE-IPVS-IPS
ipset: destroy KUBE-LOAD-BALANCER
ipset: destroy KUBE-LOAD-BALANCER-FW
ipset: destroy KUBE-LOAD-BALANCER-LOCAL
ipset: destroy KUBE-LOAD-BALANCER-SOURCE-CIDR
ipset: destroy KUBE-LOAD-BALANCER-SOURCE-IP
ipset: destroy KUBE-LOOP-BACK
ipset: destroy KUBE-NODE-PORT-LOCAL-SCTP-HASH
ipset: destroy KUBE-NODE-PORT-LOCAL-TCP
ipset: destroy KUBE-NODE-PORT-LOCAL-UDP
ipset: destroy KUBE-NODE-PORT-SCTP-HASH
ipset: destroy KUBE-NODE-PORT-TCP
ipset: destroy KUBE-NODE-PORT-UDP
`

// The node of the testdata files: kube-proxy in IPVS mode, dual-stack, next
// to Docker, kubelet, a user's rules and sets, and others' virtual servers.
func TestRunOnNode(t *testing.T) {
	v4, v6 := iptablesCases[0], iptablesCases[1]
	for _, tc := range []struct {
		name   string
		failOn map[string]error // on the IPv4 tables
		// wantRemoved and wantErrs are Run's lines; the dumps are checked
		// against the single-part tests' where they must agree.
		wantRemoved, wantErrs, wantSets string
	}{
		{
			name:        "everything of kube-proxy's goes, nothing else",
			wantRemoved: v4.wantRemoved + v6.wantRemoved + allSetsDestroyed + linkVirtualServersRemoved + "link: delete kube-ipvs0",
			wantSets:    "KUBE-MYAPP-ALLOW\ncali40all-ipam-pools\n",
		},
		{
			// The filter table's rules stay, so the sets they match on
			// cannot go; nothing else waits for them.
			name:   "one stuck table keeps its chains and their sets, the rest goes",
			failOn: map[string]error{"filter INPUT": errors.New("xtables lock held")},
			wantRemoved: joinLines(lines(v4.wantRemoved)[:8]) + `
iptables filter: delete rule -A FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
iptables filter: delete rule -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
iptables filter: delete rule -A OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER
` + v6.wantRemoved + `
ipset: destroy KUBE-6-CLUSTER-IP
ipset: destroy KUBE-6-EXTERNAL-IP
ipset: destroy KUBE-6-EXTERNAL-IP-LOCAL
ipset: destroy KUBE-6-HEALTH-CHECK-NODE-PORT
ipset: destroy KUBE-6-IPVS-IPS
ipset: destroy KUBE-6-LOAD-BALANCER
ipset: destroy KUBE-6-LOAD-BALANCER-FW
ipset: destroy KUBE-6-LOAD-BALANCER-LOCAL
ipset: destroy KUBE-6-LOAD-BALANCER-SOURCE-CID
ipset: destroy KUBE-6-LOAD-BALANCER-SOURCE-IP
ipset: destroy KUBE-6-LOOP-BACK
ipset: destroy KUBE-6-NODE-PORT-LOCAL-SCTP-HAS
ipset: destroy KUBE-6-NODE-PORT-LOCAL-TCP
ipset: destroy KUBE-6-NODE-PORT-LOCAL-UDP
ipset: destroy KUBE-6-NODE-PORT-SCTP-HASH
ipset: destroy KUBE-6-NODE-PORT-TCP
ipset: destroy KUBE-6-NODE-PORT-UDP
ipset: destroy KUBE-LOAD-BALANCER-LOCAL
ipset: destroy KUBE-LOAD-BALANCER-SOURCE-IP
ipset: destroy KUBE-LOOP-BACK
ipset: destroy KUBE-NODE-PORT-LOCAL-SCTP-HASH
ipset: destroy KUBE-NODE-PORT-LOCAL-TCP
ipset: destroy KUBE-NODE-PORT-LOCAL-UDP
ipset: destroy KUBE-NODE-PORT-SCTP-HASH
ipset: destroy KUBE-NODE-PORT-TCP
ipset: destroy KUBE-NODE-PORT-UDP
` + linkVirtualServersRemoved + "link: delete kube-ipvs0",
			wantErrs: `
iptables filter: delete rule -A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER: xtables lock held
iptables filter: delete rule -A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL: xtables lock held
iptables filter: delete rule -A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT: xtables lock held
iptables filter: 6 chains left in place because a jump to them could not be removed
ipset: destroy ipset KUBE-CLUSTER-IP: set is in use by a kernel component
ipset: destroy ipset KUBE-EXTERNAL-IP: set is in use by a kernel component
ipset: destroy ipset KUBE-EXTERNAL-IP-LOCAL: set is in use by a kernel component
ipset: destroy ipset KUBE-HEALTH-CHECK-NODE-PORT: set is in use by a kernel component
ipset: destroy ipset KUBE-IPVS-IPS: set is in use by a kernel component
ipset: destroy ipset KUBE-LOAD-BALANCER: set is in use by a kernel component
ipset: destroy ipset KUBE-LOAD-BALANCER-FW: set is in use by a kernel component
ipset: destroy ipset KUBE-LOAD-BALANCER-SOURCE-CIDR: set is in use by a kernel component
`,
			wantSets: `KUBE-CLUSTER-IP
KUBE-EXTERNAL-IP
KUBE-EXTERNAL-IP-LOCAL
KUBE-HEALTH-CHECK-NODE-PORT
KUBE-IPVS-IPS
KUBE-LOAD-BALANCER
KUBE-LOAD-BALANCER-FW
KUBE-LOAD-BALANCER-SOURCE-CIDR
KUBE-MYAPP-ALLOW
cali40all-ipam-pools
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ipt4 := loadRules(t, "iptables", v4.rules)
			failOn(ipt4, tc.failOn)
			ipt6 := loadRules(t, "ip6tables", v6.rules)
			sets := fakeSets(nodeSets...)
			sets.InUse = matchesSet(ipt4, ipt6)
			vs := ipvs.NewFake()
			loadIPVS(t, vs, nodeIPVS)
			link := newLink(t, linkAddrs, hostAddrs)
			c := &Cleaner{IPTables: []iptables.Remover{ipt4, ipt6}, IPSets: sets, IPVS: vs, Link: link}

			removed, errs := c.Run()
			diff(t, "removed", joinLines(removed), joinLines(lines(tc.wantRemoved)))
			diff(t, "errors", errStrings(errs), joinLines(lines(tc.wantErrs)))
			diff(t, "sets left", joinLines(sets.Names()), tc.wantSets)
			diff(t, "ip6tables left", saved(ipt6), v6.wantDump)
			diff(t, "ipvs left", vs.Dump(), ipvsDump(othersIPVS+nodePortsIPVS+ipvsProxyIPVS))
			if d, _ := link.Dump(); d != "link kube-ipvs0 absent\n" {
				t.Errorf("link left: %s", d)
			}
			if tc.failOn == nil {
				diff(t, "iptables left", saved(ipt4), v4.wantDump)
			}

			// A second run on what is left repeats only the failures, and
			// on a clean node writes nothing at all.
			ipt4Before, ipt6Before := len(ipt4.Log()), len(ipt6.Log())
			sets.Writes, vs.Writes, link.Writes = 0, 0, 0
			removed, errs = c.Run()
			ipt4Writes, ipt6Writes := len(ipt4.Log())-ipt4Before, len(ipt6.Log())-ipt6Before
			if len(removed) != 0 {
				t.Errorf("second run removed %q", removed)
			}
			if len(errs) != len(lines(tc.wantErrs)) {
				t.Errorf("second run: errors %v, want the first run's again", errs)
			}
			if tc.failOn == nil && slices.Max([]int{ipt4Writes, ipt6Writes, sets.Writes, vs.Writes, link.Writes}) != 0 {
				t.Errorf("second run wrote: iptables %d, ip6tables %d, ipset %d, ipvs %d, link %d",
					ipt4Writes, ipt6Writes, sets.Writes, vs.Writes, link.Writes)
			}
		})
	}
}
