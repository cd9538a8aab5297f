package cleanup

import (
	"slices"
	"strings"
	"testing"
)

func TestIsOwnedChain(t *testing.T) {
	for _, tc := range []struct {
		table, chain string
		want         bool
	}{
		{"nat", "KUBE-SERVICES", true},
		{"filter", "KUBE-SERVICES", true},
		{"mangle", "KUBE-SERVICES", false},
		{"nat", "KUBE-FIREWALL", true},     // IPVS mode's old source-range chain
		{"filter", "KUBE-FIREWALL", false}, // kubelet's
		{"nat", "KUBE-MARK-DROP", false},   // older kubelets'
		{"nat", "KUBE-MARK-MASQ", true},
		{"filter", "KUBE-IPVS-OUT-FILTER", true},
		{"mangle", "KUBE-PROXY-CANARY", true},
		{"mangle", "KUBE-KUBELET-CANARY", false},
		{"mangle", "KUBE-IPTABLES-HINT", false},
		{"nat", "KUBE-SVC-NPX46M4PTMTKRN6Y", true},
		{"nat", "KUBE-XLB-NPX46M4PTMTKRN6Y", true},
		{"filter", "KUBE-SVC-NPX46M4PTMTKRN6Y", false}, // per-Service chains are nat only
		{"nat", "KUBE-SVC-MYAPP", false},               // not a hash
		{"nat", "KUBE-SVC-NPX46M4PTMTKRN6", false},     // 15 characters
		{"nat", "KUBE-SVC-NPX46M4PTMTKRN6YY", false},   // 17 characters
		{"nat", "KUBE-SEP-NPX46M4PTMTKRN61", false},    // 1 is not base32
		{"nat", "KUBE-SEP-npx46m4ptmtkrn6y", false},    // lower case
		{"nat", "KUBERNETES-MYAPP", false},
		{"filter", "DOCKER-USER", false},
	} {
		if got := isOwnedChain(tc.table, tc.chain); got != tc.want {
			t.Errorf("isOwnedChain(%s, %s) = %v, want %v", tc.table, tc.chain, got, tc.want)
		}
	}
}

// kubelet's chains must never be on the lists, whatever is added to them.
func TestKubeletChainsAreNotOwned(t *testing.T) {
	for table, chains := range kubeletChains {
		for _, c := range chains {
			if isOwnedChain(table, c) {
				t.Errorf("%s %s is kubelet's but would be deleted", table, c)
			}
		}
	}
}

func TestIPv6SetName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"KUBE-CLUSTER-IP", "KUBE-6-CLUSTER-IP"},
		{"KUBE-LOAD-BALANCER-SOURCE-IP", "KUBE-6-LOAD-BALANCER-SOURCE-IP"},    // 30 characters
		{"KUBE-LOAD-BALANCER-SOURCE-CIDR", "KUBE-6-LOAD-BALANCER-SOURCE-CID"}, // cut to 31
		{"KUBE-NODE-PORT-LOCAL-SCTP-HASH", "KUBE-6-NODE-PORT-LOCAL-SCTP-HAS"}, // cut to 31
	} {
		if got := ipv6SetName(tc.in); got != tc.want {
			t.Errorf("ipv6SetName(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestOwnedSetNames(t *testing.T) {
	want := `KUBE-6-CLUSTER-IP
KUBE-6-EXTERNAL-IP
KUBE-6-EXTERNAL-IP-LOCAL
KUBE-6-HEALTH-CHECK-NODE-PORT
KUBE-6-IPVS-IPS
KUBE-6-LOAD-BALANCER
KUBE-6-LOAD-BALANCER-FW
KUBE-6-LOAD-BALANCER-LOCAL
KUBE-6-LOAD-BALANCER-SOURCE-CID
KUBE-6-LOAD-BALANCER-SOURCE-IP
KUBE-6-LOOP-BACK
KUBE-6-NODE-PORT-LOCAL-SCTP-HAS
KUBE-6-NODE-PORT-LOCAL-TCP
KUBE-6-NODE-PORT-LOCAL-UDP
KUBE-6-NODE-PORT-SCTP-HASH
KUBE-6-NODE-PORT-TCP
KUBE-6-NODE-PORT-UDP
KUBE-CLUSTER-IP
KUBE-EXTERNAL-IP
KUBE-EXTERNAL-IP-LOCAL
KUBE-HEALTH-CHECK-NODE-PORT
KUBE-IPVS-IPS
KUBE-LOAD-BALANCER
KUBE-LOAD-BALANCER-FW
KUBE-LOAD-BALANCER-LOCAL
KUBE-LOAD-BALANCER-SOURCE-CIDR
KUBE-LOAD-BALANCER-SOURCE-IP
KUBE-LOOP-BACK
KUBE-NODE-PORT-LOCAL-SCTP
KUBE-NODE-PORT-LOCAL-SCTP-HASH
KUBE-NODE-PORT-LOCAL-TCP
KUBE-NODE-PORT-LOCAL-UDP
KUBE-NODE-PORT-SCTP
KUBE-NODE-PORT-SCTP-HASH
KUBE-NODE-PORT-TCP
KUBE-NODE-PORT-UDP
`
	got := strings.Join(ownedSetNames(), "\n") + "\n"
	diff(t, "set names", got, want)
	for _, n := range ownedSetNames() {
		if len(n) > 31 {
			t.Errorf("%s is longer than ipset allows", n)
		}
	}
	if slices.Compact(ownedSetNames()) == nil || len(slices.Compact(ownedSetNames())) != len(ownedSetNames()) {
		t.Errorf("duplicate set names")
	}
}
