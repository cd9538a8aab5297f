package reconcile

import (
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

func TestDiffServers(t *testing.T) {
	cases := []struct {
		name             string
		desired, current map[ipvs.ServiceKey]ipvs.VirtualServer
		want             string
	}{{
		name: "nothing wanted, nothing there",
		want: "",
	}, {
		name:    "a new service is added with its real servers",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080 weight 2")),
		want: `add service TCP 10.96.0.10:80 rr
add real server 10.244.1.2:8080 weight 1 to TCP 10.96.0.10:80
add real server 10.244.2.2:8080 weight 2 to TCP 10.96.0.10:80
`,
	}, {
		name:    "a new persistent IPv6 service without real servers",
		desired: servers(server("UDP [fd00:10:96::a]:53 rr persistent 10800")),
		want:    "add service UDP [fd00:10:96::a]:53 rr persistent 10800\n",
	}, {
		name:    "unchanged, real servers listed in another order: nothing to do",
		desired: servers(server("TCP 10.96.0.10:80 rr persistent 60", "10.244.1.2:8080", "10.244.2.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr persistent 60", "10.244.2.2:8080", "10.244.1.2:8080")),
		want:    "",
	}, {
		name:    "scheduler change updates the service only",
		desired: servers(server("TCP 10.96.0.10:80 sh", "10.244.1.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		want:    "update service TCP 10.96.0.10:80 sh\n",
	}, {
		name:    "persistence turned on",
		desired: servers(server("TCP 10.96.0.10:80 rr persistent 10800")),
		current: servers(server("TCP 10.96.0.10:80 rr")),
		want:    "update service TCP 10.96.0.10:80 rr persistent 10800\n",
	}, {
		name:    "persistence turned off",
		desired: servers(server("TCP 10.96.0.10:80 rr")),
		current: servers(server("TCP 10.96.0.10:80 rr persistent 10800")),
		want:    "update service TCP 10.96.0.10:80 rr\n",
	}, {
		name:    "persistence timeout change",
		desired: servers(server("TCP 10.96.0.10:80 rr persistent 60")),
		current: servers(server("TCP 10.96.0.10:80 rr persistent 10800")),
		want:    "update service TCP 10.96.0.10:80 rr persistent 60\n",
	}, {
		name:    "timeout change without persistence: no update",
		desired: servers(server("TCP 10.96.0.10:80 rr timeout 60")),
		current: servers(server("TCP 10.96.0.10:80 rr timeout 10800")),
		want:    "",
	}, {
		name:    "weight change updates the real server",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080 weight 0", "10.244.2.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080")),
		want:    "update real server 10.244.1.2:8080 weight 0 of TCP 10.96.0.10:80\n",
	}, {
		name:    "a real server is added to an existing service",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.3.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		want:    "add real server 10.244.3.2:8080 weight 1 to TCP 10.96.0.10:80\n",
	}, {
		name:    "a real server is removed",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.2.2:8080", "10.244.1.2:8080")),
		want:    "delete real server 10.244.2.2:8080 from TCP 10.96.0.10:80\n",
	}, {
		name:    "a real server on another port is another real server",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:9090")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		want: `add real server 10.244.1.2:9090 weight 1 to TCP 10.96.0.10:80
delete real server 10.244.1.2:8080 from TCP 10.96.0.10:80
`,
	}, {
		name:    "a removed service is deleted alone: its real servers go with it",
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080")),
		want:    "delete service TCP 10.96.0.10:80\n",
	}, {
		name:    "the same address and port on another protocol is another service",
		desired: servers(server("UDP 10.96.0.10:53 rr", "10.244.1.2:53")),
		current: servers(server("TCP 10.96.0.10:53 rr", "10.244.1.2:53")),
		want: `add service UDP 10.96.0.10:53 rr
add real server 10.244.1.2:53 weight 1 to UDP 10.96.0.10:53
delete service TCP 10.96.0.10:53
`,
	}, {
		name: "everything at once: adds, then updates, then deletes, each in key order",
		desired: servers(
			server("TCP [fd00::10]:80 rr", "[fd00:244::2]:8080"),
			server("TCP 10.96.0.10:443 rr", "10.244.1.2:8443", "10.244.2.2:8443"),
			server("TCP 10.96.0.10:80 lc", "10.244.1.2:8080 weight 2", "10.244.3.2:8080"),
			server("UDP 10.96.0.9:53 rr", "10.244.1.9:53"),
		),
		current: servers(
			server("TCP 10.96.0.10:443 rr", "10.244.2.2:8443", "10.244.9.9:8443"),
			server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080"),
			server("TCP 10.96.0.11:80 rr", "10.244.1.2:8080"),
			server("SCTP 10.96.0.2:3868 rr"),
		),
		want: `add service UDP 10.96.0.9:53 rr
add service TCP [fd00::10]:80 rr
add real server 10.244.1.9:53 weight 1 to UDP 10.96.0.9:53
add real server 10.244.3.2:8080 weight 1 to TCP 10.96.0.10:80
add real server 10.244.1.2:8443 weight 1 to TCP 10.96.0.10:443
add real server [fd00:244::2]:8080 weight 1 to TCP [fd00::10]:80
update service TCP 10.96.0.10:80 lc
update real server 10.244.1.2:8080 weight 2 of TCP 10.96.0.10:80
delete real server 10.244.2.2:8080 from TCP 10.96.0.10:80
delete real server 10.244.9.9:8443 from TCP 10.96.0.10:443
delete service SCTP 10.96.0.2:3868
delete service TCP 10.96.0.11:80
`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DiffServers(tc.desired, tc.current, nil)
			if got := p.String(); got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
			if n := countLines(tc.want); p.Len() != n {
				t.Errorf("Len() = %d, want %d (one write a line)", p.Len(), n)
			}
		})
	}
}

func TestDiffAddresses(t *testing.T) {
	cases := []struct {
		name             string
		desired, current map[netip.Addr]bool
		want             string
	}{{
		name: "nothing",
		want: "",
	}, {
		name:    "unchanged",
		desired: addrSet("10.96.0.10", "fd00:10:96::a"),
		current: addrSet("fd00:10:96::a", "10.96.0.10"),
		want:    "",
	}, {
		name:    "new addresses are added, in address order, IPv4 first",
		desired: addrSet("fd00:10:96::a", "10.96.0.10", "10.96.0.9"),
		want: `add address 10.96.0.9
add address 10.96.0.10
add address fd00:10:96::a
`,
	}, {
		name:    "stale addresses are deleted, after the additions",
		desired: addrSet("10.96.0.11"),
		current: addrSet("10.96.0.10", "fd00:10:96::a"),
		want: `add address 10.96.0.11
delete address 10.96.0.10
delete address fd00:10:96::a
`,
	}, {
		name:    "an address mapped to false counts as absent on either side",
		desired: map[netip.Addr]bool{netip.MustParseAddr("10.96.0.10"): false, netip.MustParseAddr("10.96.0.11"): true},
		current: map[netip.Addr]bool{netip.MustParseAddr("10.96.0.10"): true, netip.MustParseAddr("10.96.0.11"): false},
		want: `add address 10.96.0.11
delete address 10.96.0.10
`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := DiffAddresses(tc.desired, tc.current).String(); got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// Desired addresses may be reference counts (the VIPs the Services hold):
// a count of zero is no reference.
func TestDiffAddressesCounts(t *testing.T) {
	desired := map[netip.Addr]int{netip.MustParseAddr("10.96.0.12"): 2, netip.MustParseAddr("10.96.0.10"): 0, netip.MustParseAddr("10.96.0.11"): 1}
	current := addrSet("10.96.0.10", "10.96.0.11")
	want := `add address 10.96.0.12
delete address 10.96.0.10
`
	if got := DiffAddresses(desired, current).String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

// Merge keeps each kind of operation in its own section, so a plan built
// from servers and one built from addresses print in Apply's order.
func TestPlanMerge(t *testing.T) {
	p := DiffAddresses(addrSet("10.96.0.10"), addrSet("10.96.0.99"))
	p.Merge(DiffServers(
		servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080"), server("TCP 10.96.0.12:80 sh")),
		servers(server("TCP 10.96.0.12:80 rr", "10.244.1.2:8080"), server("TCP 10.96.0.99:80 rr")),
		nil,
	))
	want := `add service TCP 10.96.0.10:80 rr
add real server 10.244.1.2:8080 weight 1 to TCP 10.96.0.10:80
update service TCP 10.96.0.12:80 sh
delete real server 10.244.1.2:8080 from TCP 10.96.0.12:80
delete service TCP 10.96.0.99:80
add address 10.96.0.10
delete address 10.96.0.99
`
	if got := p.String(); got != want {
		t.Errorf("merged plan:\n%s\nwant:\n%s", got, want)
	}
	if p.Len() != 7 {
		t.Errorf("Len() = %d, want 7", p.Len())
	}
}

func countLines(s string) int {
	n := 0
	for _, c := range s {
		if c == '\n' {
			n++
		}
	}
	return n
}
