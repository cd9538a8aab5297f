package model

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestNodePortIPs(t *testing.T) {
	// 169.254.20.10: NodeLocal DNSCache's address, which kube-proxy serves
	// NodePorts on too; fe80::1 needs a zone, so it is never used.
	node := addrs("10.0.0.5", "192.168.1.5", "127.0.0.1", "fd00::5", "2001:db8::5", "fe80::1", "::1", "::ffff:10.0.0.6", "169.254.20.10")
	for _, tc := range []struct {
		name     string
		prefixes string
		want     string
	}{
		{"empty: every usable address", "", "10.0.0.5 192.168.1.5 fd00::5 2001:db8::5 10.0.0.6 169.254.20.10"},
		{"all", "0.0.0.0/0 ::/0", "10.0.0.5 192.168.1.5 fd00::5 2001:db8::5 10.0.0.6 169.254.20.10"},
		{"IPv4 CIDRs only: every IPv6 address", "10.0.0.0/8", "10.0.0.5 fd00::5 2001:db8::5 10.0.0.6"},
		{"IPv6 CIDRs only: every IPv4 address", "fd00::/8", "10.0.0.5 192.168.1.5 fd00::5 10.0.0.6 169.254.20.10"},
		{"both families", "192.168.0.0/16 2001:db8::/32", "192.168.1.5 2001:db8::5"},
		{"a CIDR that matches nothing still claims its family", "172.16.0.0/12", "fd00::5 2001:db8::5"},
		{"localhost: loopback is never served, so nothing", "127.0.0.0/8 ::1/128", ""},
		{"primary on a single-stack IPv4 node", "10.0.0.5/32", "10.0.0.5 fd00::5 2001:db8::5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prefixes []netip.Prefix
			for _, p := range strings.Fields(tc.prefixes) {
				prefixes = append(prefixes, netip.MustParsePrefix(p))
			}
			if got := join(NodePortIPs(node, prefixes)); got != tc.want {
				t.Errorf("NodePortIPs(%s) = %q, want %q", tc.prefixes, got, tc.want)
			}
		})
	}
}

func TestPrimaryNodeIPs(t *testing.T) {
	in := func(ip string) v1.NodeAddress { return v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip} }
	ex := func(ip string) v1.NodeAddress { return v1.NodeAddress{Type: v1.NodeExternalIP, Address: ip} }
	host := v1.NodeAddress{Type: v1.NodeHostName, Address: "node-1"}
	for _, tc := range []struct {
		name  string
		addrs []v1.NodeAddress
		bind  string
		want  string // the primary IPs; then the prefixes "primary" expands to
	}{
		{"first InternalIP", []v1.NodeAddress{host, in("10.0.0.5"), in("10.0.0.6")}, "", "10.0.0.5 | 10.0.0.5/32"},
		{"dual-stack: the first of the other family too", []v1.NodeAddress{in("fd00::5"), in("fd00::6"), in("10.0.0.5")}, "",
			"fd00::5 10.0.0.5 | fd00::5/128 10.0.0.5/32"},
		{"InternalIP before ExternalIP", []v1.NodeAddress{ex("203.0.113.5"), in("10.0.0.5")}, "", "10.0.0.5 | 10.0.0.5/32"},
		{"ExternalIP when there is no InternalIP", []v1.NodeAddress{host, ex("203.0.113.5")}, "", "203.0.113.5 | 203.0.113.5/32"},
		{"other families come from ExternalIP too", []v1.NodeAddress{ex("2001:db8::5"), in("10.0.0.5")}, "",
			"10.0.0.5 2001:db8::5 | 10.0.0.5/32 2001:db8::5/128"},
		{"--bind-address replaces its family's", []v1.NodeAddress{in("10.0.0.5"), in("fd00::5")}, "10.0.0.9",
			"10.0.0.9 fd00::5 | 10.0.0.9/32 fd00::5/128"},
		{"--bind-address of a family the Node lacks", []v1.NodeAddress{in("10.0.0.5")}, "fd00::9",
			"10.0.0.5 fd00::9 | 10.0.0.5/32 fd00::9/128"},
		{"--bind-address 0.0.0.0 is no override", []v1.NodeAddress{in("10.0.0.5")}, "0.0.0.0", "10.0.0.5 | 10.0.0.5/32"},
		{"no addresses", []v1.NodeAddress{host}, "", " | "},
		{"a loopback --bind-address is skipped, as in kube-proxy", nil, "127.0.0.1", "127.0.0.1 | "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := PrimaryNodeIPs(tc.addrs, tc.bind)
			var prefixes []string
			for _, p := range PrimaryPrefixes(primary) {
				prefixes = append(prefixes, p.String())
			}
			if got := join(primary) + " | " + strings.Join(prefixes, " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func join(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = fmt.Sprint(ip)
	}
	return strings.Join(s, " ")
}
