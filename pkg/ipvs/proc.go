package ipvs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
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
func ParseProc(r io.Reader) (map[ServiceKey][]Destination, error) {
	return parseProc(r, 0)
}

// parseProc is ParseProc with the number of virtual servers expected, to
// size the map once. A periodic resync reads the whole file (55,000 lines,
// 3.4 MB, at 5,000 Services): it is read through a small buffer and the
// lines are split into fields in place, without a string or a slice each,
// and each virtual server's real servers are gathered in one reused list
// and then copied at their exact number, so the read leaves little for the
// collector and keeps no copy of the file.
func parseProc(r io.Reader, hint int) (map[ServiceKey][]Destination, error) {
	out := make(map[ServiceKey][]Destination, hint)
	var cur ServiceKey
	var have bool   // cur is a virtual server whose real servers are read
	var mark uint32 // an owned firewall-mark virtual server's, until its first real server
	var fields [8][]byte
	var dests []Destination // cur's real servers so far
	flush := func() {
		if have && len(dests) > 0 {
			// Sorted as the model builds them, so that a diff need not
			// sort a copy of each (reconcile's sortedView).
			slices.SortFunc(dests, CompareDestinations)
			out[cur] = slices.Clone(dests)
		}
		dests = dests[:0]
	}
	br := bufio.NewReaderSize(r, procReadSize)
	for n := 0; ; n++ {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, io.EOF) && len(line) == 0:
			flush()
			return out, nil
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("%s line %d: longer than %d bytes", procFile, n+1, procReadSize)
		case err != nil && !errors.Is(err, io.EOF):
			return nil, fmt.Errorf("read %s: %w", procFile, err)
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		f := splitFields(line, fields[:0])
		switch {
		case n < 3 || len(f) == 0:
		case string(f[0]) == "->":
			if len(f) < 6 {
				return nil, fmt.Errorf("%s line %d: %q", procFile, n+1, line)
			}
			a, err := parseProcAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", procFile, n+1, err)
			}
			if !have && mark != 0 {
				cur, have = FWMarkKey(mark, a.Addr().Is6()), true
			}
			if !have {
				continue // another program's firewall-mark virtual server's
			}
			var num [3]int
			for i := range num {
				v, ok := parseUint(f[3+i], 10, 31)
				if !ok {
					return nil, fmt.Errorf("%s line %d: %q is not a number", procFile, n+1, f[3+i])
				}
				num[i] = int(v)
			}
			dests = append(dests, Destination{Addr: a.Addr(), Port: a.Port(), Forward: procForward(f[2]), Weight: int32(num[0]),
				ActiveConns: uint32(num[1]), InactiveConns: uint32(num[2])})
		case string(f[0]) == "FWM":
			flush()
			have, mark = false, 0
			if len(f) < 2 {
				return nil, fmt.Errorf("%s line %d: %q", procFile, n+1, line)
			}
			m, ok := parseUint(f[1], 16, 32)
			if !ok {
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
			k := ServiceKey{Addr: a.Addr(), Proto: procProtocol(f[0]), Port: a.Port()}
			flush()
			cur, have, mark = k, true, 0
			out[k] = nil
		}
	}
}

// procReadSize is parseProc's buffer: a line of the file is under 100
// bytes.
const procReadSize = 64 << 10

// splitFields appends line's space-separated fields to f, up to its
// capacity (the lines parsed here have at most six).
func splitFields(line []byte, f [][]byte) [][]byte {
	for len(f) < cap(f) {
		i := 0
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		line = line[i:]
		if len(line) == 0 {
			break
		}
		j := 0
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		f = append(f, line[:j])
		line = line[j:]
	}
	return f
}

// parseUint reads digits of base 10 or 16 that fit in bits.
func parseUint(b []byte, base, bits int) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		v = v*uint64(base) + d
		if v >= 1<<bits {
			return 0, false
		}
	}
	return v, true
}

// procForward is the forwarding method of a real server's Forward column.
// The kernel prints Local, Tunnel and Route by name and every other
// method as Masq (ip_vs_fwd_name), so a word it does not print is read as
// the zero value, Masq, rather than failing the whole read, which every
// full sync depends on.
func procForward(b []byte) Forward {
	for f := ForwardLocal; f <= ForwardRoute; f++ {
		if string(b) == forwardNames[f] {
			return f
		}
	}
	return ForwardMasq
}

// procProtocol is the protocol a virtual server's line names, without a
// new string for the usual ones.
func procProtocol(b []byte) Protocol {
	for _, p := range []Protocol{TCP, UDP, SCTP} {
		if string(b) == string(p) {
			return p
		}
	}
	return Protocol(b)
}

// parseProcAddrPort reads "0A60000A:0050" (IPv4, hex, host order as
// printed) or "[fd00:0010:...:000a]:0035".
func parseProcAddrPort(s []byte) (netip.AddrPort, error) {
	i := bytes.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q has no port", s)
	}
	port, ok := parseUint(s[i+1:], 16, 16)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q: bad port", s)
	}
	host := s[:i]
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		a, err := netip.ParseAddr(string(host[1 : len(host)-1]))
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
		}
		return netip.AddrPortFrom(a, uint16(port)), nil
	}
	v4, ok := parseUint(host, 16, 32)
	if !ok || len(host) != 8 {
		return netip.AddrPort{}, fmt.Errorf("address %q is not 8 hex digits", s)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(v4 >> 24), byte(v4 >> 16), byte(v4 >> 8), byte(v4)}), uint16(port)), nil
}
