package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
)

// matcher is the one decision both implementations make: does an entry
// belong to one of the flows. It is a set, so one pass over a table of
// 100k entries costs the same for one flow or a thousand.
type matcher map[flowKey]struct{}

// flowKey is what a flow and an entry share. In IPVS NAT mode the kernel
// rewrites the reply tuple to come from the real server, so an entry of
// client -> VIP:port sent to B:bport has original destination VIP:port and
// reply source B:bport; the reply destination is the client or the
// masquerade address, and is not looked at.
type flowKey struct {
	proto   string
	dst     netip.AddrPort
	backend netip.AddrPort
}

// newMatchers sorts valid flows into one matcher per address family, so
// that the Linux implementation dumps each family's table once. Invalid
// flows are left out and reported together.
func newMatchers(flows []Flow) (v4, v6 matcher, err error) {
	v4, v6 = matcher{}, matcher{}
	var errs []error
	for _, f := range flows {
		k, err := f.key()
		if err != nil {
			errs = append(errs, fmt.Errorf("conntrack flow %s: %w", f, err))
			continue
		}
		if k.dst.Addr().Is4() {
			v4[k] = struct{}{}
		} else {
			v6[k] = struct{}{}
		}
	}
	return v4, v6, errors.Join(errs...)
}

func (f Flow) key() (flowKey, error) {
	if _, ok := protoNumbers[f.Proto]; !ok {
		return flowKey{}, fmt.Errorf("unknown protocol %q", f.Proto)
	}
	if f.Proto == "SCTP" {
		// vishvananda/netlink (v1.3.1) parses the ports of TCP and UDP
		// tuples only and hands SCTP entries over with ports 0, so an
		// SCTP flow could be matched by its addresses alone: that took
		// other Services' flows to the same pod and, with a host-network
		// backend, every SCTP association ending on the node.
		return flowKey{}, errors.New("SCTP entries cannot be told apart by port (netlink reads no SCTP ports): not deleted")
	}
	if !f.Dst.IsValid() || !f.Backend.IsValid() {
		return flowKey{}, errors.New("invalid address")
	}
	// An IPv4 service written as ::ffff:a.b.c.d is still IPv4 to the
	// kernel, which files it in the IPv4 table.
	dst := netip.AddrPortFrom(f.Dst.Addr().Unmap(), f.Dst.Port())
	backend := netip.AddrPortFrom(f.Backend.Addr().Unmap(), f.Backend.Port())
	if dst.Addr().Is4() != backend.Addr().Is4() {
		return flowKey{}, errors.New("virtual server and backend are of different address families")
	}
	return flowKey{proto: f.Proto, dst: dst, backend: backend}, nil
}

func (m matcher) match(e Entry) bool {
	_, ok := m[flowKey{proto: e.Proto, dst: e.Orig.Dst, backend: e.Reply.Src}]
	return ok
}
