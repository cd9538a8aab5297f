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
	return `-t nat -A IPVS-PROXY-PREROUTING -m comment --comment "ipvs-proxy: mark connections to externalTrafficPolicy Local virtual servers" -m set --match-set ` +
		KeepSourceSet(fam) + ` dst,dst -j MARK --set-xmark 0x2000/0x2000` + "\n"
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
		`-t filter -A IPVS-PROXY-FILTER -m comment --comment "ipvs-proxy: drop external traffic to externalTrafficPolicy Local services without local endpoints" -m conntrack --ctstate NEW -m set --match-set ` + NoLocalEndpointsSet(fam) + " dst,dst -j DROP\n" +
		`-t filter -A IPVS-PROXY-FILTER -m comment --comment "ipvs-proxy: let service ports with endpoints through to IPVS" -m set --match-set ` + ServicePortsSet(fam) + " dst,dst -j RETURN\n" +
		`-t filter -A IPVS-PROXY-FILTER -m comment --comment "ipvs-proxy: reject anything else sent to a VIP" -m conntrack --ctstate NEW -m set --match-set ` + VIPSet(fam) + " dst -j REJECT --reject-with " + reject + "\n" +
		"-t mangle -N IPVS-PROXY-OUTPUT\n-t mangle -A OUTPUT -m comment --comment ipvs-proxy -j IPVS-PROXY-OUTPUT\n" +
		"-t mangle -A IPVS-PROXY-OUTPUT " + firewall(fam)
}

// firewall is the loadBalancerSourceRanges rule, in filter INPUT and in
// mangle OUTPUT alike.
func firewall(fam Family) string {
	return `-m comment --comment "ipvs-proxy: drop traffic to LoadBalancer IPs from outside their loadBalancerSourceRanges" -m set --match-set ` +
		FirewallSet(fam) + " dst,dst -m set ! --match-set " + SourceRangesSet(fam) + " dst,dst,src -j DROP\n"
}

func TestDesired(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		fam  Family
		want string
	}{{
		name: "no cluster CIDR: host-originated traffic only",
		fam:  IPv4,
		want: jumpLine + base(IPv4),
	}, {
		name: "one cluster CIDR, masked as iptables prints it",
		cfg:  Config{ClusterCIDRs: prefixes("10.244.7.0/16")},
		fam:  IPv4,
		want: jumpLine + base(IPv4) +
			`-t nat -A IPVS-PROXY-POSTROUTING ! -s 10.244.0.0/16 -m comment --comment "ipvs-proxy: masquerade service traffic from outside the cluster CIDR" -m ipvs --vdir ORIGINAL --vmethod MASQ -j MASQUERADE` + "\n",
	}, {
		name: "dual-stack CIDRs, IPv6 family takes the IPv6 one",
		cfg:  Config{ClusterCIDRs: prefixes("10.244.0.0/16", "fd00:10:244::/56")},
		fam:  IPv6,
		want: jumpLine + base(IPv6) +
			`-t nat -A IPVS-PROXY-POSTROUTING ! -s fd00:10:244::/56 -m comment --comment "ipvs-proxy: masquerade service traffic from outside the cluster CIDR" -m ipvs --vdir ORIGINAL --vmethod MASQ -j MASQUERADE` + "\n",
	}, {
		name: "IPv6 family without an IPv6 CIDR",
		cfg:  Config{ClusterCIDRs: prefixes("10.244.0.0/16")},
		fam:  IPv6,
		want: jumpLine + base(IPv6),
	}, {
		name: "two CIDRs of one family: RETURN each, then masquerade; duplicates dropped",
		cfg:  Config{ClusterCIDRs: prefixes("10.244.0.0/16", "fd00:10:244::/56", "10.245.0.0/16", "10.244.0.1/16")},
		fam:  IPv4,
		want: jumpLine + base(IPv4) +
			`-t nat -A IPVS-PROXY-POSTROUTING -s 10.244.0.0/16 -m comment --comment "ipvs-proxy: keep the source of traffic from cluster CIDR 10.244.0.0/16" -j RETURN` + "\n" +
			`-t nat -A IPVS-PROXY-POSTROUTING -s 10.245.0.0/16 -m comment --comment "ipvs-proxy: keep the source of traffic from cluster CIDR 10.245.0.0/16" -j RETURN` + "\n" +
			`-t nat -A IPVS-PROXY-POSTROUTING -m comment --comment "ipvs-proxy: masquerade service traffic from outside the cluster CIDRs" -m ipvs --vdir ORIGINAL --vmethod MASQ -j MASQUERADE` + "\n",
	}, {
		name: "masquerade-all replaces the others",
		cfg:  Config{ClusterCIDRs: prefixes("10.244.0.0/16"), MasqueradeAll: true},
		fam:  IPv4,
		want: jumpLine + base(IPv4) +
			`-t nat -A IPVS-PROXY-POSTROUTING -m comment --comment "ipvs-proxy: masquerade all service traffic (masquerade-all)" -m ipvs --vdir ORIGINAL --vmethod MASQ -j MASQUERADE` + "\n",
	}, {
		name: "invalid and IPv4-mapped CIDRs are skipped",
		cfg:  Config{ClusterCIDRs: append(prefixes("::ffff:10.0.0.0/104"), netip.Prefix{})},
		fam:  IPv6,
		want: jumpLine + base(IPv6),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rs := Desired(tc.cfg, tc.fam)
			if rs.Family != tc.fam {
				t.Errorf("family %s, want %s", rs.Family, tc.fam)
			}
			if got, want := rs.String(), filter(tc.fam)+tc.want+prerouting(tc.fam); got != want {
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
	rs := Desired(Config{ClusterCIDRs: prefixes("10.244.0.0/16")}, IPv4)
	before := rs.String()
	for _, r := range rs.Chains[0].Rules {
		r[len(r)-1] = "CHANGED"
	}
	if again := Desired(Config{ClusterCIDRs: prefixes("10.244.0.0/16")}, IPv4).String(); again != before {
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
