//go:build linux

package conntrack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Linux deletes entries from the kernel's conntrack table over netlink, in
// the network namespace of the thread that calls it.
type Linux struct{}

var _ Interface = Linux{}

// NewLinux returns the kernel implementation.
func NewLinux() Linux { return Linux{} }

// DeleteFlows dumps each address family's table at most once and deletes
// the matching entries as it goes, one message each: ctnetlink cannot
// delete by tuple pattern. An entry that vanished meanwhile counts as
// deleted.
func (Linux) DeleteFlows(flows []Flow) (int, error) {
	v4, v6, err := newMatchers(flows)
	errs := []error{err}
	deleted := 0
	for _, fam := range []struct {
		name   string
		family netlink.InetFamily
		m      matcher
	}{{"IPv4", unix.AF_INET, v4}, {"IPv6", unix.AF_INET6, v6}} {
		if len(fam.m) == 0 {
			continue
		}
		// One filter holding all flows, not one filter per flow: the
		// library tries every filter on every entry.
		n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, fam.family, filter{fam.m})
		deleted += int(n)
		if err != nil {
			// Includes netlink.ErrDumpInterrupted, after which what was
			// matched is still deleted; the next sync catches the rest.
			errs = append(errs, fmt.Errorf("delete %s conntrack entries of %d flows: %w", fam.name, len(fam.m), err))
		}
	}
	return deleted, errors.Join(errs...)
}

// filter adapts the matcher to netlink.
type filter struct{ m matcher }

func (f filter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	return f.m.match(entryFrom(flow))
}

// entryFrom reads the tuples of a flow the way the library parsed them:
// SCTP ports (and any non-TCP/UDP ports) come back as 0.
func entryFrom(f *netlink.ConntrackFlow) Entry {
	tuple := func(t netlink.IPTuple) Tuple {
		return Tuple{
			Src: netip.AddrPortFrom(addrFrom(t.SrcIP), t.SrcPort),
			Dst: netip.AddrPortFrom(addrFrom(t.DstIP), t.DstPort),
		}
	}
	return Entry{Proto: protoName(f.Forward.Protocol), Orig: tuple(f.Forward), Reply: tuple(f.Reverse)}
}

// addrFrom keeps the family by length: the library hands IPv4 addresses
// over as 4 bytes and IPv6 ones as 16.
func addrFrom(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a
}
