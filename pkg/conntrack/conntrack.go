// Package conntrack deletes the conntrack entries of flows that IPVS sent to
// a real server that is gone. IPVS (NAT, net.ipv4.vs.conntrack=1) keeps a
// conntrack entry per client flow; while it lives, a UDP client's next
// datagram follows it to the dead backend and is lost (DNS during a
// rollout). Deleting the entry lets IPVS schedule the next datagram afresh.
//
// It owns only entries whose original destination is a virtual server it
// was given and whose reply source is that virtual server's removed
// backend; it never flushes the table. Interface is netlink on Linux and a
// Fake in tests; both decide with the same matcher.
package conntrack

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Interface deletes conntrack entries.
type Interface interface {
	// DeleteFlows deletes every entry that belongs to one of flows and
	// returns how many it deleted. An invalid flow is reported in err and
	// does not stop the others.
	DeleteFlows(flows []Flow) (deleted int, err error)
}

// Flow names the client flows of one virtual server that IPVS sent to one
// real server. For a NodePort, Dst is the node's address and node port.
type Flow struct {
	// Proto is spelled as ipvs.Protocol spells it: "TCP", "UDP" or "SCTP".
	// A plain string keeps this package free of pkg/ipvs and its deps.
	Proto   string
	Dst     netip.AddrPort
	Backend netip.AddrPort
}

func (f Flow) String() string { return fmt.Sprintf("%s %s -> %s", f.Proto, f.Dst, f.Backend) }

// Tuple is one direction of a conntrack entry.
type Tuple struct {
	Src, Dst netip.AddrPort
}

// Entry is a conntrack entry as far as this package looks at it: its two
// tuples. Counters, timeouts, state, marks and zones are left out so that
// a dump of the kernel's table and a fake's dump compare as text.
type Entry struct {
	// Proto is "TCP", "UDP", "SCTP", or the protocol number for others.
	Proto string
	Orig  Tuple
	Reply Tuple
}

// protoNumbers are the IANA numbers of the protocols a Flow may name.
var protoNumbers = map[string]uint8{"TCP": 6, "UDP": 17, "SCTP": 132}

func protoName(n uint8) string {
	for name, num := range protoNumbers {
		if num == n {
			return name
		}
	}
	return strconv.Itoa(int(n))
}
