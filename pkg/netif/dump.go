//go:build linux

package netif

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/nlbatch"
	"golang.org/x/sys/unix"
)

// A periodic resync reads the node's addresses twice (the link's VIPs, and
// every other link's for the node ports), thousands at thousands of
// Services. netlink's AddrList parses each into attribute lists and
// net.IPNets, about 3 KB of garbage an address in the test VM's heap
// profile; this dump reads the two attributes it needs in place.

// linkAddr is one address with the index of its link.
type linkAddr struct {
	index  int
	prefix netip.Prefix
}

// dumpAddrs lists the addresses of the link with this index, or of every
// link (index 0), as netlink's AddrList would read them: IFA_LOCAL when
// there is one (a /32 or /128 unless it equals an IPv4 IFA_ADDRESS, which
// then gives the prefix), else IFA_ADDRESS with the prefix length.
func (l *linux) dumpAddrs(index int) ([]linkAddr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dumps == nil {
		s, err := nlbatch.Open(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, err
		}
		l.dumps = s
	}
	req := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfAddrmsg)
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], unix.RTM_GETADDR)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	var out []linkAddr
	err := l.dumps.Query(req, func(p []byte) error {
		if len(p) < unix.SizeofIfAddrmsg {
			return errors.New("short address message")
		}
		family, plen, idx := p[0], int(p[1]), int(binary.NativeEndian.Uint32(p[4:8]))
		if index != 0 && idx != index {
			return nil
		}
		var local, address []byte
		if err := nlbatch.Attrs(p[unix.SizeofIfAddrmsg:], func(typ uint16, v []byte) {
			switch typ {
			case unix.IFA_LOCAL:
				local = v
			case unix.IFA_ADDRESS:
				address = v
			}
		}); err != nil {
			return err
		}
		raw := address
		if local != nil {
			raw = local
			if family != unix.AF_INET || address == nil || !slicesEqual(local, address) {
				plen = 8 * len(local)
			}
		}
		a, ok := netip.AddrFromSlice(raw)
		if !ok {
			return nil // toPrefix skips what it cannot read, too
		}
		if a.Is4In6() {
			a, plen = a.Unmap(), plen-96
		}
		if plen < 0 || plen > a.BitLen() {
			return nil
		}
		out = append(out, linkAddr{idx, netip.PrefixFrom(a, plen)})
		return nil
	})
	return out, err
}

func slicesEqual(a, b []byte) bool { return string(a) == string(b) }
