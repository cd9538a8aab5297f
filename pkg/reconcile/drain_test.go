package reconcile

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

func TestDiffServersDraining(t *testing.T) {
	expired := ipvs.Destination{Addr: dest("10.244.9.9:8080").Addr, Port: 8080}
	drain := &Drain{Expired: func(_ ipvs.ServiceKey, d ipvs.Destination) bool { return d.AddrPort() == expired.AddrPort() }}
	cases := []struct {
		name             string
		desired, current map[ipvs.ServiceKey]ipvs.VirtualServer
		drain            *Drain
		want             string
		writes           int
	}{{
		name:    "a TCP real server with connections starts draining at weight 0",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080 conns 1/2")),
		drain:   drain,
		want: `update real server 10.244.2.2:8080 weight 0 of TCP 10.96.0.10:80
# draining real server 10.244.2.2:8080 of TCP 10.96.0.10:80: 1 active, 2 inactive connections
`,
		writes: 1,
	}, {
		name:    "already at weight 0 with connections: nothing to write, still draining",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080 weight 0 conns 0/1")),
		drain:   drain,
		want:    "# draining real server 10.244.2.2:8080 of TCP 10.96.0.10:80: 0 active, 1 inactive connections\n",
	}, {
		name:    "no connections left: deleted",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080 weight 0")),
		drain:   drain,
		want:    "delete real server 10.244.2.2:8080 from TCP 10.96.0.10:80\n",
		writes:  1,
	}, {
		name:    "no connections when it leaves: deleted at once, no weight 0 first",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080")),
		drain:   drain,
		want:    "delete real server 10.244.2.2:8080 from TCP 10.96.0.10:80\n",
		writes:  1,
	}, {
		name:    "past its deadline: deleted with connections still open",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.9.9:8080 weight 0 conns 3/0")),
		drain:   drain,
		want:    "delete real server 10.244.9.9:8080 from TCP 10.96.0.10:80\n",
		writes:  1,
	}, {
		name:    "the endpoint came back: its weight is restored",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080 weight 0 conns 1/0")),
		drain:   drain,
		want:    "update real server 10.244.2.2:8080 weight 1 of TCP 10.96.0.10:80\n",
		writes:  1,
	}, {
		name:    "UDP and SCTP real servers are deleted at once, connections or not",
		desired: servers(server("UDP 10.96.0.10:53 rr", "10.244.1.2:53"), server("SCTP 10.96.0.10:3868 rr")),
		current: servers(server("UDP 10.96.0.10:53 rr", "10.244.1.2:53", "10.244.2.2:53 conns 0/4"), server("SCTP 10.96.0.10:3868 rr", "10.244.2.2:3868 conns 1/0")),
		drain:   drain,
		want: `delete real server 10.244.2.2:3868 from SCTP 10.96.0.10:3868
delete real server 10.244.2.2:53 from UDP 10.96.0.10:53
`,
		writes: 2,
	}, {
		name:    "no Drain (timeout 0): deleted at once",
		desired: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")),
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080 conns 5/5")),
		want:    "delete real server 10.244.2.2:8080 from TCP 10.96.0.10:80\n",
		writes:  1,
	}, {
		name:    "a deleted Service takes its draining real servers with it",
		current: servers(server("TCP 10.96.0.10:80 rr", "10.244.2.2:8080 weight 0 conns 5/5")),
		drain:   drain,
		want:    "delete service TCP 10.96.0.10:80\n",
		writes:  1,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DiffServers(tc.desired, tc.current, tc.drain)
			if got := p.String(); got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
			if p.Len() != tc.writes {
				t.Errorf("Len() = %d, want %d", p.Len(), tc.writes)
			}
		})
	}
}

// A firewall-mark virtual server drains as its mark's protocol says: the
// kernel keeps no protocol for it, ipvs-proxy's mark does.
func TestDrainFirewallMark(t *testing.T) {
	busy := ipvs.Destination{Addr: dest("10.244.2.2:8080").Addr, Port: 8080, Weight: 1, ActiveConns: 1}
	for _, tc := range []struct {
		proto ipvs.Protocol
		want  leaving
	}{{ipvs.TCP, startDraining}, {ipvs.UDP, deleteNow}, {ipvs.SCTP, deleteNow}} {
		key := ipvs.FWMarkKey(ipvs.OwnedMarkBits(tc.proto, 0x123), false)
		if got := (&Drain{}).leave(key, busy); got != tc.want {
			t.Errorf("%s (%s): %v, want %v", key, tc.proto, got, tc.want)
		}
	}
}
