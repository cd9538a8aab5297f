// Package ipvs owns the IPVS table: the types the rest of ipvs-proxy uses to
// describe virtual and real servers, one text format for them (the one
// `ipvs-proxy status` prints), a Linux implementation over moby/ipvs and a
// fake that prints the same text.
package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Protocol is an IPVS transport protocol as Kubernetes spells it.
type Protocol string

const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// ServiceKey identifies a virtual server the way the kernel does: by
// address, protocol and port, or, for a firewall-mark virtual server, by
// its mark and family (FWMark set, Addr the family's unspecified address,
// no protocol or port).
type ServiceKey struct {
	Addr   netip.Addr
	Proto  Protocol
	Port   uint16
	FWMark uint32
}

// FWMarkKey is the key of the firewall-mark virtual server of mark, of the
// family of v6 (the kernel keys them by both). The kernel keeps no
// protocol for it; Proto is the one an ipvs-proxy mark names (see
// OwnedMarkBits), so that draining and conntrack clean-up treat its real
// servers as those of its Service port.
func FWMarkKey(mark uint32, v6 bool) ServiceKey {
	k := ServiceKey{Addr: netip.IPv4Unspecified(), FWMark: mark, Proto: MarkProtocol(mark)}
	if v6 {
		k.Addr = netip.IPv6Unspecified()
	}
	return k
}

// A mark m is of ipvs-proxy's form when m&OwnedMarkMask == OwnedMarkValue
// (and its protocol bits name a protocol): see OwnedMarkBits. The iptables
// rules match the same pair (iptables.ShortCircuitMark).
const (
	OwnedMarkValue = 0x40000000
	OwnedMarkMask  = 0xc000f000
)

// markProtocols are the protocols of bits 28-29 of an ipvs-proxy mark.
var markProtocols = [...]Protocol{TCP, UDP, SCTP}

// MarkProtocol is the protocol an ipvs-proxy mark names; "" for any other
// mark.
func MarkProtocol(mark uint32) Protocol {
	if i := mark >> 28 & 3; mark&OwnedMarkMask == OwnedMarkValue && int(i) < len(markProtocols) {
		return markProtocols[i]
	}
	return ""
}

// OwnedMarkBits is the form of the firewall marks ipvs-proxy gives its
// virtual servers (model.ShortCircuitMark): bit 31 clear and bit 30 set,
// bits 28-29 the protocol (TCP, UDP, SCTP), the bits of the packet marks
// its own and kube-proxy's iptables rules set (0xf000) clear, and the
// other 24 bits a hash. Bit 31 stays clear because ipvsadm prints a mark
// as a signed number: below 2^31 it reads the same there and in status.
func OwnedMarkBits(proto Protocol, hash uint32) uint32 {
	m := OwnedMarkValue | hash&^OwnedMarkMask&^0x30000000
	for i, p := range markProtocols {
		if p == proto {
			m |= uint32(i) << 28
		}
	}
	return m
}

// OwnedMark reports whether a firewall mark has ipvs-proxy's form. The
// kernel's other firewall-mark virtual servers are never read, changed or
// deleted.
func OwnedMark(mark uint32) bool { return MarkProtocol(mark) != "" }

func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("FWM %d%s", k.FWMark, ipv6Suffix(k))
	}
	return fmt.Sprintf("%s %s", k.Proto, netip.AddrPortFrom(k.Addr, k.Port))
}

// ipv6Suffix is how ipvsadm tells an IPv6 firewall-mark service apart.
func ipv6Suffix(k ServiceKey) string {
	if k.Addr.Is6() {
		return " IPv6"
	}
	return ""
}

// AddrPort is the virtual server's address and port.
func (k ServiceKey) AddrPort() netip.AddrPort { return netip.AddrPortFrom(k.Addr, k.Port) }

// Less orders keys by address, then protocol, then port, so dumps are stable.
func (k ServiceKey) Less(o ServiceKey) bool {
	if c := k.Addr.Compare(o.Addr); c != 0 {
		return c < 0
	}
	if k.Proto != o.Proto {
		return k.Proto < o.Proto
	}
	if k.Port != o.Port {
		return k.Port < o.Port
	}
	return k.FWMark < o.FWMark
}

// Service is a virtual server's own settings, without its real servers.
type Service struct {
	ServiceKey
	Scheduler string
	// Persistent turns on IPVS persistence, which is how session affinity
	// ClientIP is done; Timeout is then its timeout in seconds.
	Persistent bool
	Timeout    uint32
	// SchedFlags are the scheduler's flags (SchedFlag1..3), e.g. sh-port.
	SchedFlags uint32
}

// SameSettings reports whether two services need no update between them.
func (s Service) SameSettings(o Service) bool {
	return s.Scheduler == o.Scheduler && s.SchedFlags == o.SchedFlags &&
		s.Persistent == o.Persistent && (!s.Persistent || s.Timeout == o.Timeout)
}

// Forward is a real server's forwarding method, numbered as the kernel's
// IP_VS_CONN_F_FWD_MASK bits. Its zero value is ForwardMasq, the only
// method ipvs-proxy writes: the real servers the model builds and those
// the kernel reads back for ipvs-proxy's own virtual servers are alike
// Masq, so whatever compares them is as it was before the field. The
// other methods are read from virtual servers other tools made, for
// status to print.
type Forward uint8

const (
	ForwardMasq   Forward = 0 // IP_VS_CONN_F_MASQ: NAT
	ForwardLocal  Forward = 1 // IP_VS_CONN_F_LOCALNODE
	ForwardTunnel Forward = 2 // IP_VS_CONN_F_TUNNEL: IP-in-IP
	ForwardRoute  Forward = 3 // IP_VS_CONN_F_DROUTE: direct routing
)

// forwardNames are the methods as /proc/net/ip_vs and ipvsadm -Ln print
// them.
var forwardNames = [...]string{ForwardMasq: "Masq", ForwardLocal: "Local", ForwardTunnel: "Tunnel", ForwardRoute: "Route"}

func (f Forward) String() string {
	if int(f) < len(forwardNames) {
		return forwardNames[f]
	}
	return fmt.Sprintf("fwd-%d", uint8(f))
}

// forwardOf reads the kernel's forwarding bits (IPVS_DEST_ATTR_FWD_METHOD)
// as /proc/net/ip_vs prints them (the kernel's ip_vs_fwd_name): Local,
// Tunnel and Route by name, and every other value, IP_VS_CONN_F_BYPASS
// included, as Masq. So a real server reads the same from Get (netlink)
// and List (the file).
func forwardOf(flags uint32) Forward {
	switch f := Forward(flags & 0x7); f { // IP_VS_CONN_F_FWD_MASK
	case ForwardLocal, ForwardTunnel, ForwardRoute:
		return f
	}
	return ForwardMasq
}

// Destination is a real server.
type Destination struct {
	Addr netip.Addr
	Port uint16
	// Forward is read from the kernel and printed; writes ignore it, as
	// ipvs-proxy writes only Masq real servers (the fake keeps Masq too).
	// Diffs (reconcile's) match real servers by address and port and
	// compare their weights alone, so a field that differs here never
	// makes one write: not to ipvs-proxy's own, whose real servers are
	// Masq both ways, nor to another tool's, which no diff sees.
	Forward Forward
	Weight  int32 // the kernel's is 32 bits; 40 bytes in all (Forward sits in Port's padding), times every endpoint of every Service
	// Connection counters, read from the kernel; never compared or dumped
	// by the fakes.
	ActiveConns   uint32
	InactiveConns uint32
}

// AddrPort is the destination's identity within its virtual server.
func (d Destination) AddrPort() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// VirtualServer is a Service with its real servers.
type VirtualServer struct {
	Service
	Destinations []Destination
}

// Format prints virtual servers in the layout of `ipvsadm -Ln`, sorted, so
// that a fake's dump, the Linux implementation's dump and `status` read the
// same. label, when not nil, names the owner of an entry (a Kubernetes
// Service port); counters adds the connection counters.
func Format(vss []VirtualServer, label func(ServiceKey) string, counters bool) string {
	var b strings.Builder
	b.WriteString("Prot LocalAddress:Port Scheduler Flags\n")
	if counters {
		b.WriteString("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	} else {
		b.WriteString("  -> RemoteAddress:Port           Forward Weight\n")
	}
	for _, vs := range Sorted(vss) {
		line := fmt.Sprintf("%-4s %s %s", vs.Proto, netip.AddrPortFrom(vs.Addr, vs.Port), vs.Scheduler)
		if vs.FWMark != 0 {
			line = fmt.Sprintf("FWM  %d%s %s", vs.FWMark, ipv6Suffix(vs.ServiceKey), vs.Scheduler)
		}
		if vs.SchedFlags != 0 {
			line += " (" + strings.Join(SchedFlagNames(vs.Scheduler, vs.SchedFlags), ",") + ")"
		}
		if vs.Persistent {
			line += fmt.Sprintf(" persistent %d", vs.Timeout)
		}
		if label != nil {
			if l := label(vs.ServiceKey); l != "" {
				line = fmt.Sprintf("%-41s # %s", line, l)
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		for _, d := range vs.Destinations {
			line := fmt.Sprintf("  -> %-28s %-7s %-6d", d.AddrPort(), d.Forward, d.Weight)
			if counters {
				line += fmt.Sprintf(" %-10d %d", d.ActiveConns, d.InactiveConns)
			}
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
	}
	return b.String()
}

// Sorted returns a copy of vss ordered by key, each with its destinations
// ordered by address and port.
func Sorted(vss []VirtualServer) []VirtualServer {
	out := make([]VirtualServer, len(vss))
	for i, vs := range vss {
		vs.Destinations = SortedDestinations(vs.Destinations)
		out[i] = vs
	}
	slices.SortFunc(out, func(a, b VirtualServer) int { return CompareKeys(a.ServiceKey, b.ServiceKey) })
	return out
}

// SortedDestinations returns a copy of ds ordered by address and port.
func SortedDestinations(ds []Destination) []Destination {
	out := slices.Clone(ds)
	slices.SortFunc(out, CompareDestinations)
	return out
}

// CompareDestinations orders real servers by address and port.
func CompareDestinations(a, b Destination) int { return a.AddrPort().Compare(b.AddrPort()) }

// CompareKeys orders keys as Less does, for slices.SortFunc.
func CompareKeys(a, b ServiceKey) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
