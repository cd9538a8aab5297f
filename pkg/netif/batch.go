//go:build linux

package netif

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/nlbatch"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A cold start adds one address per Service. One request per round trip
// (netlink's AddrAdd, after a LinkByName) took 6 s for 5,000 addresses in
// the test VM; batched (pkg/nlbatch), the kernel's work is what is left.

func (l *linux) AddAddresses(as []netip.Addr) []error {
	return l.batch("add", unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, unix.EEXIST, as)
}

// DeleteAddresses: the kernel answers EADDRNOTAVAIL for an address that is
// not there, and a missing link has none.
func (l *linux) DeleteAddresses(as []netip.Addr) []error {
	return l.batch("delete", unix.RTM_DELADDR, 0, unix.EADDRNOTAVAIL, as)
}

func (l *linux) batch(verb string, msgType, flags int, fine unix.Errno, as []netip.Addr) []error {
	errs := make([]error, len(as))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = fmt.Errorf("%s address %s on %s: %w", verb, as[i], l.name, err)
		}
		return errs
	}
	link, err := l.ours() // another kind of link under the name fails every address
	switch {
	case err != nil:
		return fail(err)
	case link == nil && msgType == unix.RTM_DELADDR:
		return errs
	case link == nil:
		return fail(errors.New("link not found"))
	}
	if l.sock == nil {
		if l.sock, err = nlbatch.Open(unix.NETLINK_ROUTE); err != nil {
			return fail(err)
		}
	}
	var prefixes []netip.Prefix
	var index []int // prefixes[k] is as[index[k]]
	for i, a := range as {
		p, err := hostPrefix(a)
		if err != nil {
			errs[i] = fmt.Errorf("%s address %s on %s: %w", verb, a, l.name, err)
			continue
		}
		prefixes = append(prefixes, p)
		index = append(index, i)
	}
	request := func(k int) *nl.NetlinkRequest { return addrRequest(msgType, flags, link.Attrs().Index, prefixes[k]) }
	for k, err := range l.sock.Exec(len(prefixes), nlbatch.Requests(request)) {
		if err != nil && !errors.Is(err, fine) {
			i := index[k]
			errs[i] = fmt.Errorf("%s address %s on %s: %w", verb, as[i], l.name, err)
		}
	}
	return errs
}

// addrRequest is the message netlink's AddrAdd and AddrDel send for a
// single-address prefix with no peer, label or broadcast.
func addrRequest(msgType, flags, index int, p netip.Prefix) *nl.NetlinkRequest {
	family := unix.AF_INET
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	req := nl.NewNetlinkRequest(msgType, flags)
	msg := nl.NewIfAddrmsg(family)
	msg.Index, msg.Prefixlen = uint32(index), uint8(p.Bits())
	if p.Addr().Is6() {
		// Without nodad the address stays tentative, unusable, while
		// duplicate address detection runs: on a down link, that is forever.
		msg.Flags = unix.IFA_F_NODAD
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, p.Addr().AsSlice()))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, p.Addr().AsSlice()))
	return req
}
