package ipvs

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// procFile lists every virtual server with its real servers in one read.
// A full dump over netlink needs a request per virtual server for its real
// servers: 5,000 round trips at 5,000 Services, 11 s in the test VM, during
// which no endpoint change could be written. So List reads the virtual
// servers' settings over netlink (one dump) and their real servers here.
const procFile = "/proc/net/ip_vs"

// ParseProc reads the real servers of each address-keyed virtual server
// from /proc/net/ip_vs (every such virtual server has an entry, nil when
// it has no real servers), whose layout the kernel has kept since 2.6:
//
//	IP Virtual Server version 1.2.1 (size=4096)
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//	TCP  0A60000A:0050 rr
//	  -> 0AF40102:1F90      Masq    1      0          0
//	UDP  [fd00:0010:0096:0000:0000:0000:0000:000a]:0035 rr
//	FWM  00000001 rr
//
// Firewall-mark virtual servers are skipped with their real servers unless
// their mark is one of ipvs-proxy's (OwnedMark). The file does not say a
// firewall-mark virtual server's family: its real servers' addresses do,
// so one without real servers has no entry.
func ParseProc(data []byte) (map[ServiceKey][]Destination, error) {
	out := map[ServiceKey][]Destination{}
	var cur *ServiceKey
	var mark uint32 // an owned firewall-mark virtual server's, until its first real server
	for n, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		switch {
		case n < 3 || len(f) == 0:
		case f[0] == "->":
			if len(f) < 6 {
				return nil, fmt.Errorf("%s line %d: %q", procFile, n+1, line)
			}
			a, err := parseProcAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", procFile, n+1, err)
			}
			if cur == nil && mark != 0 {
				k := FWMarkKey(mark, a.Addr().Is6())
				cur = &k
			}
			if cur == nil {
				continue // another program's firewall-mark virtual server's
			}
			var num [3]int
			for i := range num {
				if num[i], err = strconv.Atoi(f[3+i]); err != nil {
					return nil, fmt.Errorf("%s line %d: %q is not a number", procFile, n+1, f[3+i])
				}
			}
			out[*cur] = append(out[*cur], Destination{Addr: a.Addr(), Port: a.Port(), Weight: num[0], ActiveConns: num[1], InactiveConns: num[2]})
		case f[0] == "FWM":
			cur, mark = nil, 0
			m, err := strconv.ParseUint(f[1], 16, 32)
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %q", procFile, n+1, line)
			}
			if OwnedMark(uint32(m)) {
				mark = uint32(m) // keyed at its first real server, whose address says the family
			}
		default:
			if len(f) < 2 {
				return nil, fmt.Errorf("%s line %d: %q", procFile, n+1, line)
			}
			a, err := parseProcAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", procFile, n+1, err)
			}
			k := ServiceKey{Addr: a.Addr(), Proto: Protocol(f[0]), Port: a.Port()}
			cur, mark = &k, 0
			out[k] = nil
		}
	}
	return out, nil
}

// parseProcAddrPort reads "0A60000A:0050" (IPv4, hex, host order as
// printed) or "[fd00:0010:...:000a]:0035".
func parseProcAddrPort(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q has no port", s)
	}
	port, err := strconv.ParseUint(s[i+1:], 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: bad port", s)
	}
	host := s[:i]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
		}
		return netip.AddrPortFrom(a, uint16(port)), nil
	}
	b, err := hex.DecodeString(host)
	if err != nil || len(b) != 4 {
		return netip.AddrPort{}, fmt.Errorf("address %q is not 8 hex digits", s)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b)), uint16(port)), nil
}
