// Package netif owns the dummy interface that holds the Service VIPs
// (kube-proxy calls it kube-ipvs0): IPVS only accepts packets addressed to
// a local address, so every VIP must sit on some link. It also reads the
// host's other addresses, from which NodePort addresses are chosen.
// A Linux implementation over netlink and a fake print the same Dump text.
//
// A link of another type under the name (a veth, a bridge) is another
// program's, as kube-proxy's DeleteDummyDevice also holds: EnsureLink,
// DeleteLink, Addresses, AddAddresses and DeleteAddresses refuse it with
// the error of notDummy, so it is never changed, and its addresses never
// make the virtual servers on them look like ipvs-proxy's. Link, Dump and
// HostAddresses still read it.
package netif

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Interface is the dummy interface holding VIP addresses, plus a read of
// the host's other addresses (for NodePort).
type Interface interface {
	// EnsureLink creates the dummy link if missing. It never brings the link
	// up: addresses on a down link are still local, and a down link gets no
	// IPv6 link-local address or routes of its own (kube-proxy does the same).
	// A link of another type under the name is refused (see the package doc),
	// as are the four calls below.
	EnsureLink() error
	// DeleteLink removes the link and its addresses; absent is success.
	DeleteLink() error
	// Addresses lists the link's addresses, sorted; empty when the link does
	// not exist. IPv6 link-local addresses are left out: the kernel makes
	// them, not ipvs-proxy.
	Addresses() ([]netip.Addr, error)
	// AddAddresses adds each address as a /32 or /128, and DeleteAddresses
	// removes it, in as few round trips to the kernel as they can; the
	// error of as[i] is errs[i]. Already present (added) and absent
	// (deleted, or no link) are success. A refused link fails every address.
	AddAddresses(as []netip.Addr) (errs []error)
	DeleteAddresses(as []netip.Addr) (errs []error)
	// Link reads the link itself; nil when it does not exist.
	Link() (*LinkState, error)
	// HostAddresses lists every address on every other link, sorted.
	HostAddresses() ([]HostAddress, error)
	// Dump prints the link and its addresses; see Format.
	Dump() (string, error)
}

// HostAddress is an address on one of the host's links.
type HostAddress struct {
	Link string
	Addr netip.Addr
}

// LinkState is what Dump shows of the link itself.
type LinkState struct {
	Type string // as netlink names it: "dummy"
	Up   bool   // the IFF_UP flag, i.e. what `ip link set up` sets
}

// notDummy is the refusal of the link name, which exists with type typ
// rather than want ("dummy"; see the package doc).
func notDummy(name, typ, want string) error {
	return fmt.Errorf("link %s exists with type %s, not %s", name, typ, want)
}

// Format prints the dump shared by the fake and the Linux implementation,
// so tests can compare them as text:
//
//	link kube-ipvs0 dummy down
//	addr 10.96.0.1/32
//	addr fd00:10:96::1/128
//
// link nil means the link does not exist ("link kube-ipvs0 absent").
func Format(name string, link *LinkState, addrs []netip.Prefix) string {
	var b strings.Builder
	if link == nil {
		fmt.Fprintf(&b, "link %s absent\n", name)
		return b.String()
	}
	state := "down"
	if link.Up {
		state = "up"
	}
	fmt.Fprintf(&b, "link %s %s %s\n", name, link.Type, state)
	for _, p := range sortedPrefixes(addrs) {
		fmt.Fprintf(&b, "addr %s\n", p)
	}
	return b.String()
}

func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	return out
}

func sortHostAddresses(hs []HostAddress) {
	slices.SortFunc(hs, func(a, b HostAddress) int {
		return cmp.Or(cmp.Compare(a.Link, b.Link), a.Addr.Compare(b.Addr))
	})
}

// hostPrefix checks a and returns it as the single-address prefix that
// ipvs-proxy puts on the link. IPv4-mapped IPv6 addresses are taken as IPv4
// so the same VIP never appears twice in two spellings.
func hostPrefix(a netip.Addr) (netip.Prefix, error) {
	if !a.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid address")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %s has a zone", a)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
