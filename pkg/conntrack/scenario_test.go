package conntrack

import (
	"net/netip"
	"strings"
)

// table is what IPVS in NAT mode leaves in conntrack: the original tuple
// goes to the virtual server, the reply comes from the real server, to
// the client or to the masquerade address. Every scenario starts from it.
const table = `
udp src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=53 src=10.244.1.5 dst=10.0.0.1 sport=53 dport=40000
udp src=10.0.0.2 dst=10.96.0.10 sport=40001 dport=53 src=10.244.2.6 dst=10.0.0.2 sport=53 dport=40001
udp src=10.0.0.3 dst=10.96.0.10 sport=40002 dport=53 src=10.244.1.5 dst=10.0.0.3 sport=1053 dport=40002
tcp src=10.0.0.1 dst=10.96.0.10 sport=40003 dport=53 src=10.244.1.5 dst=10.0.0.1 sport=53 dport=40003
udp src=10.0.0.1 dst=10.96.0.10 sport=40004 dport=5353 src=10.244.1.5 dst=10.0.0.1 sport=5353 dport=40004
udp src=10.0.0.1 dst=10.244.1.5 sport=40005 dport=53 src=10.244.1.5 dst=10.0.0.1 sport=53 dport=40005
udp src=192.168.1.10 dst=192.168.1.5 sport=50000 dport=30053 src=10.244.1.5 dst=10.244.0.1 sport=53 dport=50000
sctp src=10.0.0.1 dst=10.96.0.20 sport=40010 dport=3868 src=10.244.1.5 dst=10.0.0.1 sport=3868 dport=40010
sctp src=10.0.0.1 dst=10.96.0.20 sport=40011 dport=3869 src=10.244.1.5 dst=10.0.0.1 sport=3869 dport=40011
sctp src=10.0.0.1 dst=10.96.0.20 sport=40012 dport=3868 src=10.244.2.6 dst=10.0.0.1 sport=3868 dport=40012
udp src=fd00::1 dst=fd00:96::10 sport=40000 dport=53 src=fd00:244:1::5 dst=fd00::1 sport=53 dport=40000
udp src=fd00::2 dst=fd00:96::10 sport=40001 dport=53 src=fd00:244:2::6 dst=fd00::2 sport=53 dport=40001
`

type scenario struct {
	name        string
	flows       []Flow
	wantDeleted int
	wantErr     string
	// wantGone lists the lines of table that must be gone; the test's
	// expected dump is table without them, so every scenario is checked
	// against the whole remaining table, not a count.
	wantGone []string
}

func flow(proto, dst, backend string) Flow {
	return Flow{Proto: proto, Dst: netip.MustParseAddrPort(dst), Backend: netip.MustParseAddrPort(backend)}
}

// wantDump is table without the lines of wantGone, in Format's order.
func (sc scenario) wantDump() string {
	entries, err := ParseEntries(table)
	if err != nil {
		panic(err)
	}
	var kept []Entry
	for _, e := range entries {
		gone := false
		for _, g := range sc.wantGone {
			gone = gone || strings.TrimSpace(g) == e.String()
		}
		if !gone {
			kept = append(kept, e)
		}
	}
	return Format(kept)
}

var scenarios = []scenario{
	{name: "no flows"},
	{
		name:        "UDP backend removed from a ClusterIP: only its flows on that port and protocol",
		flows:       []Flow{flow("UDP", "10.96.0.10:53", "10.244.1.5:53")},
		wantDeleted: 1,
		wantGone:    []string{"udp src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=53 src=10.244.1.5 dst=10.0.0.1 sport=53 dport=40000"},
	},
	{
		// Two real servers of one virtual server on one address, such as
		// hostNetwork pods: the reply source port tells them apart.
		name:        "backend port is matched exactly",
		flows:       []Flow{flow("UDP", "10.96.0.10:53", "10.244.1.5:1053")},
		wantDeleted: 1,
		wantGone:    []string{"udp src=10.0.0.3 dst=10.96.0.10 sport=40002 dport=53 src=10.244.1.5 dst=10.0.0.3 sport=1053 dport=40002"},
	},
	{
		name: "wrong protocol, virtual address, virtual port or backend: nothing",
		flows: []Flow{
			flow("TCP", "10.96.0.10:5353", "10.244.1.5:5353"),
			flow("UDP", "10.96.0.11:53", "10.244.1.5:53"),
			flow("UDP", "10.96.0.10:54", "10.244.1.5:53"),
			flow("UDP", "10.96.0.10:53", "10.244.1.6:53"),
			flow("UDP", "10.96.0.10:53", "10.244.1.5:54"),
			flow("UDP", "10.244.1.5:53", "10.244.1.6:53"), // a pod's own address is not a virtual server here
		},
	},
	{
		name:        "TCP is matched like UDP",
		flows:       []Flow{flow("TCP", "10.96.0.10:53", "10.244.1.5:53")},
		wantDeleted: 1,
		wantGone:    []string{"tcp src=10.0.0.1 dst=10.96.0.10 sport=40003 dport=53 src=10.244.1.5 dst=10.0.0.1 sport=53 dport=40003"},
	},
	{
		name:        "NodePort, masqueraded: the reply goes to the masquerade address",
		flows:       []Flow{flow("UDP", "192.168.1.5:30053", "10.244.1.5:53")},
		wantDeleted: 1,
		wantGone:    []string{"udp src=192.168.1.10 dst=192.168.1.5 sport=50000 dport=30053 src=10.244.1.5 dst=10.244.0.1 sport=53 dport=50000"},
	},
	{
		name:        "IPv6",
		flows:       []Flow{flow("UDP", "[fd00:96::10]:53", "[fd00:244:1::5]:53")},
		wantDeleted: 1,
		wantGone:    []string{"udp src=fd00::1 dst=fd00:96::10 sport=40000 dport=53 src=fd00:244:1::5 dst=fd00::1 sport=53 dport=40000"},
	},
	{
		name:        "IPv4 written as IPv4-mapped IPv6 is IPv4",
		flows:       []Flow{flow("UDP", "[::ffff:10.96.0.10]:53", "[::ffff:10.244.2.6]:53")},
		wantDeleted: 1,
		wantGone:    []string{"udp src=10.0.0.2 dst=10.96.0.10 sport=40001 dport=53 src=10.244.2.6 dst=10.0.0.2 sport=53 dport=40001"},
	},
	{
		name: "several flows of both families in one call",
		flows: []Flow{
			flow("UDP", "10.96.0.10:53", "10.244.2.6:53"),
			flow("UDP", "192.168.1.5:30053", "10.244.1.5:53"),
			flow("UDP", "[fd00:96::10]:53", "[fd00:244:2::6]:53"),
			flow("UDP", "[fd00:96::10]:53", "[fd00:244:3::7]:53"), // no entries
		},
		wantDeleted: 3,
		wantGone: []string{
			"udp src=10.0.0.2 dst=10.96.0.10 sport=40001 dport=53 src=10.244.2.6 dst=10.0.0.2 sport=53 dport=40001",
			"udp src=192.168.1.10 dst=192.168.1.5 sport=50000 dport=30053 src=10.244.1.5 dst=10.244.0.1 sport=53 dport=50000",
			"udp src=fd00::2 dst=fd00:96::10 sport=40001 dport=53 src=fd00:244:2::6 dst=fd00::2 sport=53 dport=40001",
		},
	},
	{
		// netlink hands SCTP entries over without ports, so a flow could
		// be matched by addresses only, taking the other port of the same
		// virtual address and backend with it: refused, nothing deleted.
		name:    "SCTP is refused",
		flows:   []Flow{flow("SCTP", "10.96.0.20:3868", "10.244.1.5:3868")},
		wantErr: "conntrack flow SCTP 10.96.0.20:3868 -> 10.244.1.5:3868: SCTP entries cannot be told apart by port (netlink reads no SCTP ports): not deleted",
	},
	{
		name: "invalid flows are reported and do not stop the valid one",
		flows: []Flow{
			flow("ICMP", "10.96.0.10:53", "10.244.1.5:53"),
			flow("UDP", "10.96.0.10:53", "[fd00:244:1::5]:53"),
			{Proto: "UDP", Backend: netip.MustParseAddrPort("10.244.1.5:53")},
			flow("UDP", "[fd00:96::10]:53", "[fd00:244:1::5]:53"),
		},
		wantDeleted: 1,
		wantErr: `conntrack flow ICMP 10.96.0.10:53 -> 10.244.1.5:53: unknown protocol "ICMP"
conntrack flow UDP 10.96.0.10:53 -> [fd00:244:1::5]:53: virtual server and backend are of different address families
conntrack flow UDP invalid AddrPort -> 10.244.1.5:53: invalid address`,
		wantGone: []string{"udp src=fd00::1 dst=fd00:96::10 sport=40000 dport=53 src=fd00:244:1::5 dst=fd00::1 sport=53 dport=40000"},
	},
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
