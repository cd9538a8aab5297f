package iptables

import (
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

const (
	jumpLine  = "-t nat -N IPVS-PROXY-POSTROUTING\n-t nat -N IPVS-PROXY-PREROUTING\n-t nat -A PREROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-PREROUTING\n-t nat -A POSTROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-POSTROUTING\n"
	localLine = `-t nat -A IPVS-PROXY-POSTROUTING -m comment --comment "ipvs-proxy: masquerade host-originated service traffic" -m ipvs --vdir ORIGINAL --vmethod MASQ -m addrtype --src-type LOCAL -j MASQUERADE` + "\n"
)

// base is the rules every configuration has: host-originated traffic,
// hairpin, and the externalTrafficPolicy Local exemption.
func base(fam Family) string {
	return localLine +
		`-t nat -A IPVS-PROXY-POSTROUTING -m comment --comment "ipvs-proxy: masquerade hairpin traffic (a pod reaching itself)" -m ipvs --vdir ORIGINAL --vmethod MASQ -m set --match-set ` + HairpinSet(fam) + ` dst,dst,src -j MASQUERADE` + "\n" +
		`-t nat -A IPVS-PROXY-POSTROUTING -m comment --comment "ipvs-proxy: keep the client address for externalTrafficPolicy Local" -m mark --mark 0x2000/0x2000 -j RETURN` + "\n"
}

// prerouting is the marking rule, printed after the POSTROUTING chain's.
func prerouting(fam Family) string {
	return `-t nat -A IPVS-PROXY-PREROUTING -m comment --comment "ipvs-proxy: short-circuited in-cluster traffic keeps its mark alone" -m set --match-set ` +
		ShortCircuitSet(fam) + " dst,dst -m mark --mark 0x40000000/0xc000f000 -j RETURN\n" +
		`-t nat -A IPVS-PROXY-PREROUTING -m comment --comment "ipvs-proxy: mark connections to externalTrafficPolicy Local virtual servers" -m set --match-set ` +
		KeepSourceSet(fam) + ` dst,dst -j MARK --set-xmark 0x2000/0x2000` + "\n" +
		`-t nat -A IPVS-PROXY-PREROUTING -m comment --comment "ipvs-proxy: masquerade traffic to node ports" -m addrtype --dst-type LOCAL -m set ! --match-set ` +
		VIPSet(fam) + " dst -j MARK --set-xmark 0x1000/0x1000\n" +
		`-t nat -A IPVS-PROXY-PREROUTING -m comment --comment "ipvs-proxy: masquerade traffic to externalIPs and LoadBalancer IPs" -m set --match-set ` +
		ExternalVIPSet(fam) + " dst -j MARK --set-xmark 0x1000/0x1000\n"
}

// filter is the VIP guard and the source ranges, the same for every
// configuration; the filter and mangle tables print before nat.
func filter(fam Family) string {
	reject := "icmp-port-unreachable"
	if fam == IPv6 {
		reject = "icmp6-port-unreachable"
	}
	return "-t filter -N IPVS-PROXY-FILTER\n-t filter -A INPUT -m comment --comment ipvs-proxy -j IPVS-PROXY-FILTER\n" +
		"-t filter -A IPVS-PROXY-FILTER " + firewall(fam) +
		`-t filter -A IPVS-PROXY-FILTER -m comment --comment "ipvs-proxy: let short-circuited in-cluster traffic through to IPVS" -m set --match-set ` + ShortCircuitSet(fam) + " dst,dst -m mark --mark 0x40000000/0xc000f000 -j RETURN\n" +
		`-t filter -A IPVS-PROXY-FILTER -m comment --comment "ipvs-proxy: drop external traffic to externalTrafficPolicy Local services without local endpoints" -m conntrack --ctstate NEW -m set --match-set ` + NoLocalEndpointsSet(fam) + " dst,dst -j DROP\n" +
		`-t filter -A IPVS-PROXY-FILTER -m comment --comment "ipvs-proxy: let service ports with endpoints through to IPVS" -m set --match-set ` + ServicePortsSet(fam) + " dst,dst -j RETURN\n" +
		`-t filter -A IPVS-PROXY-FILTER -m comment --comment "ipvs-proxy: reject anything else sent to a VIP" -m conntrack --ctstate NEW -m set --match-set ` + VIPSet(fam) + " dst -j REJECT --reject-with " + reject + "\n" +
		"-t mangle -N IPVS-PROXY-OUTPUT\n-t mangle -N IPVS-PROXY-SHORT-CIRCUIT\n" +
		"-t mangle -A PREROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-SHORT-CIRCUIT\n" +
		"-t mangle -A OUTPUT -m comment --comment ipvs-proxy -j IPVS-PROXY-OUTPUT\n" +
		"-t mangle -A IPVS-PROXY-OUTPUT " + firewall(fam) +
		"-t mangle -A IPVS-PROXY-OUTPUT " + mapMarkLine(fam, "", "traffic from the node")
}

// mapMarkLine is a rule that marks traffic to the short-circuit set's
// addresses, after its chain's name.
func mapMarkLine(fam Family, addrs, from string) string {
	return addrs + `-m comment --comment "ipvs-proxy: send ` + from + ` to externalTrafficPolicy Local addresses to every endpoint" -m set --match-set ` +
		ShortCircuitSet(fam) + " dst,dst -j SET --map-set " + ShortCircuitSet(fam) + " dst,dst --map-mark\n"
}

// podMapMark is the short-circuit chain's rule for pods told apart by addrs.
func podMapMark(fam Family, addrs string) string {
	return "-t mangle -A IPVS-PROXY-SHORT-CIRCUIT " + mapMarkLine(fam, addrs, "pod traffic")
}

// firewall is the loadBalancerSourceRanges rule, in filter INPUT and in
// mangle OUTPUT alike.
func firewall(fam Family) string {
	return `-m comment --comment "ipvs-proxy: drop traffic to LoadBalancer IPs from outside their loadBalancerSourceRanges" -m set --match-set ` +
		FirewallSet(fam) + " dst,dst -m set ! --match-set " + SourceRangesSet(fam) + " dst,dst,src -j DROP\n"
}

func TestDesired(t *testing.T) {
	masqMarked := `-t nat -A IPVS-PROXY-POSTROUTING -m comment --comment "ipvs-proxy: masquerade service traffic marked in PREROUTING" -m mark --mark 0x1000/0x1000 -m ipvs --vdir ORIGINAL --vmethod MASQ -j MASQUERADE` + "\n"
	mark := func(fam Family, addrs, comment string) string {
		return `-t nat -A IPVS-PROXY-PREROUTING ` + addrs + `-m comment --comment "ipvs-proxy: ` + comment + `" -m set --match-set ` + VIPSet(fam) + " dst -j MARK --set-xmark 0x1000/0x1000\n"
	}
	for _, tc := range []struct {
		name      string
		cfg       Config
		fam       Family
		post, pre string // after base(fam) and prerouting(fam)
		mangle    string // the short-circuit chain's rules
	}{{
		name: "no pod CIDR: clusterIP traffic keeps its source",
		fam:  IPv4,
		post: masqMarked,
	}, {
		name:   "one pod CIDR, masked as iptables prints it",
		cfg:    Config{LocalCIDRs: prefixes("10.244.7.0/16")},
		fam:    IPv4,
		mangle: podMapMark(IPv4, "-s 10.244.0.0/16 "),
		post:   masqMarked,
		pre:    mark(IPv4, "! -s 10.244.0.0/16 ", "masquerade service traffic from outside the pod CIDR"),
	}, {
		name:   "dual-stack CIDRs, IPv6 family takes the IPv6 one",
		cfg:    Config{LocalCIDRs: prefixes("10.244.0.0/16", "fd00:10:244::/56")},
		fam:    IPv6,
		mangle: podMapMark(IPv6, "-s fd00:10:244::/56 "),
		post:   masqMarked,
		pre:    mark(IPv6, "! -s fd00:10:244::/56 ", "masquerade service traffic from outside the pod CIDR"),
	}, {
		name: "IPv6 family without an IPv6 CIDR",
		cfg:  Config{LocalCIDRs: prefixes("10.244.0.0/16")},
		fam:  IPv6,
		post: masqMarked,
	}, {
		name:   "two CIDRs of one family: RETURN each, then mark; duplicates dropped",
		cfg:    Config{LocalCIDRs: prefixes("10.244.0.0/16", "fd00:10:244::/56", "10.245.0.0/16", "10.244.0.1/16")},
		fam:    IPv4,
		mangle: podMapMark(IPv4, "-s 10.244.0.0/16 ") + podMapMark(IPv4, "-s 10.245.0.0/16 "),
		post:   masqMarked,
		pre: `-t nat -A IPVS-PROXY-PREROUTING -s 10.244.0.0/16 -m comment --comment "ipvs-proxy: keep the source of service traffic from pod CIDR 10.244.0.0/16" -m set --match-set IPVS-PROXY-VIPS dst -j RETURN` + "\n" +
			`-t nat -A IPVS-PROXY-PREROUTING -s 10.245.0.0/16 -m comment --comment "ipvs-proxy: keep the source of service traffic from pod CIDR 10.245.0.0/16" -m set --match-set IPVS-PROXY-VIPS dst -j RETURN` + "\n" +
			mark(IPv4, "", "masquerade service traffic from outside the pod CIDRs"),
	}, {
		name:   "BridgeInterface: traffic not from the bridge",
		cfg:    Config{LocalCIDRs: prefixes("10.244.0.0/16"), LocalBridge: "cni0"},
		fam:    IPv4,
		mangle: podMapMark(IPv4, "-i cni0 "),
		post:   masqMarked,
		pre:    mark(IPv4, "! -i cni0 ", "masquerade service traffic not from the pod bridge"),
	}, {
		name:   "InterfaceNamePrefix: traffic not from pod interfaces",
		cfg:    Config{LocalInterfacePrefix: "veth"},
		fam:    IPv6,
		mangle: podMapMark(IPv6, "-i veth+ "),
		post:   masqMarked,
		pre:    mark(IPv6, "! -i veth+ ", "masquerade service traffic not from pod interfaces"),
	}, {
		name:   "masquerade-all replaces the mark",
		cfg:    Config{LocalCIDRs: prefixes("10.244.0.0/16"), MasqueradeAll: true},
		fam:    IPv4,
		mangle: podMapMark(IPv4, "-s 10.244.0.0/16 "),
		post:   `-t nat -A IPVS-PROXY-POSTROUTING -m comment --comment "ipvs-proxy: masquerade all service traffic (masquerade-all)" -m ipvs --vdir ORIGINAL --vmethod MASQ -j MASQUERADE` + "\n",
		pre:    mark(IPv4, "! -s 10.244.0.0/16 ", "masquerade service traffic from outside the pod CIDR"),
	}, {
		name: "invalid and IPv4-mapped CIDRs are skipped",
		cfg:  Config{LocalCIDRs: append(prefixes("::ffff:10.0.0.0/104"), netip.Prefix{})},
		fam:  IPv6,
		post: masqMarked,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rs := Desired(tc.cfg, tc.fam)
			if rs.Family != tc.fam {
				t.Errorf("family %s, want %s", rs.Family, tc.fam)
			}
			if got, want := rs.String(), filter(tc.fam)+tc.mangle+jumpLine+base(tc.fam)+tc.post+prerouting(tc.fam)+tc.pre; got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			// Sync would refuse anything outside what ipvs-proxy owns.
			if err := (&engine{fam: tc.fam}).validate(rs); err != nil {
				t.Error(err)
			}
			// A quote or backslash in a comment would come back escaped.
			for _, c := range rs.Chains {
				for _, r := range c.Rules {
					if s := strings.Join(r, " "); strings.ContainsAny(s, `"'\`) {
						t.Errorf("rule needs escaping: %s", s)
					}
				}
			}
		})
	}
}

// Desired must not share slices between rules: a caller editing one rule
// would change another.
func TestDesiredRulesDoNotAlias(t *testing.T) {
	rs := Desired(Config{LocalCIDRs: prefixes("10.244.0.0/16")}, IPv4)
	before := rs.String()
	for _, r := range rs.Chains[0].Rules {
		r[len(r)-1] = "CHANGED"
	}
	if again := Desired(Config{LocalCIDRs: prefixes("10.244.0.0/16")}, IPv4).String(); again != before {
		t.Errorf("Desired changed after its result was edited:\n%s", again)
	}
}

func TestArgsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		line string // as iptables -S prints it
		want []string
		back string // as joinArgs prints the arguments
	}{
		{
			line: `-A X ! -s 10.244.0.0/16 -m comment --comment "ipvs-proxy: outside" -j MASQUERADE`,
			want: []string{"-A", "X", "!", "-s", "10.244.0.0/16", "-m", "comment", "--comment", "ipvs-proxy: outside", "-j", "MASQUERADE"},
		},
		{
			line: `-A X -m comment --comment "q\"uo\'te" -j MASQUERADE`,
			want: []string{"-A", "X", "-m", "comment", "--comment", `q"uo'te`, "-j", "MASQUERADE"},
		},
		{
			line: `-A X -m comment --comment "" -j MASQUERADE`,
			want: []string{"-A", "X", "-m", "comment", "--comment", "", "-j", "MASQUERADE"},
		},
		{
			// iptables quotes some strings joinArgs would not; the arguments agree.
			line: `-A X -m comment --comment "a/b"  -j ACCEPT`,
			want: []string{"-A", "X", "-m", "comment", "--comment", "a/b", "-j", "ACCEPT"},
			back: `-A X -m comment --comment a/b -j ACCEPT`,
		},
	} {
		got, err := SplitArgs(tc.line)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("SplitArgs(%s) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
		back := tc.back
		if back == "" {
			back = tc.line
		}
		if j := JoinArgs(got); j != back {
			t.Errorf("JoinArgs(%q) = %s, want %s", got, j, back)
		}
	}
	if _, err := SplitArgs(`-A X --comment "open`); err == nil {
		t.Error("unterminated quote: no error")
	}
}
