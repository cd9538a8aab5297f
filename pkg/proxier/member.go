package proxier

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
)

// member is one member of one of ownedSets, as the index counts it and a
// snapshot holds it. The index keeps one per endpoint (the hairpin set)
// besides those per Service port: 60,000 at 5,000 Services of ten
// endpoints. As {set name, ipset.Entry} a member was 128 bytes with four
// pointers the collector had to follow at every cycle (the name, the
// protocol and two addresses' zones); packed here it is 60 bytes with none,
// so the maps that hold members are neither scanned nor as large.
type member struct {
	set   uint8 // index in ownedSets
	proto uint8 // index in memberProtos
	flags uint8
	bits  uint8 // the prefix length of Net
	port  uint16
	mark  uint32
	ip    [16]byte
	ip2   [16]byte
	net   [16]byte
}

const (
	memberIP6 uint8 = 1 << iota // ip is IPv6, not IPv4 in the 16-byte form
	memberIP2                   // ip2 holds Entry.IP2
	memberIP2v6
	memberNet // net and bits hold Entry.Net
	memberNetv6
)

// memberProtos are the protocols a member can have: none (hash:ip), and
// those the model builds Services for, in the order of their names, so
// that members sort as pkg/ipset sorts entries (compareMembers).
var memberProtos = [...]string{"", "sctp", "tcp", "udp"}

// setIndex is each owned set's place in ownedSets.
var setIndex = func() map[string]uint8 {
	m := make(map[string]uint8, len(ownedSets))
	for i, s := range ownedSets {
		m[s.Name] = uint8(i)
	}
	return m
}()

// newMember packs e of the owned set named set. A set that is not owned or
// a protocol the model never builds is a bug in the caller: the snapshot
// reads only owned sets, and pkg/ipset reads back only these protocols.
func newMember(set string, e ipset.Entry) member {
	i, ok := setIndex[set]
	if !ok {
		panic(fmt.Sprintf("proxier: set %q is not one ipvs-proxy owns", set))
	}
	m := member{set: i, proto: protoIndex(e.Proto), port: e.Port, mark: e.Mark, ip: e.IP.As16()}
	if e.IP.Is6() {
		m.flags |= memberIP6
	}
	if e.IP2.IsValid() {
		m.flags |= memberIP2
		if e.IP2.Is6() {
			m.flags |= memberIP2v6
		}
		m.ip2 = e.IP2.As16()
	}
	if e.Net.IsValid() {
		m.flags |= memberNet
		if e.Net.Addr().Is6() {
			m.flags |= memberNetv6
		}
		m.net, m.bits = e.Net.Addr().As16(), uint8(e.Net.Bits())
	}
	return m
}

func protoIndex(p string) uint8 {
	for i, q := range memberProtos {
		if p == q {
			return uint8(i)
		}
	}
	panic(fmt.Sprintf("proxier: set member with protocol %q", p))
}

// setName is the name of m's set.
func (m member) setName() string { return ownedSets[m.set].Name }

// entry is m as pkg/ipset takes and gives it: newMember(m.setName(),
// m.entry()) == m.
func (m member) entry() ipset.Entry {
	e := ipset.Entry{IP: unpackAddr(m.ip, m.flags&memberIP6 != 0), Proto: memberProtos[m.proto], Port: m.port, Mark: m.mark}
	if m.flags&memberIP2 != 0 {
		e.IP2 = unpackAddr(m.ip2, m.flags&memberIP2v6 != 0)
	}
	if m.flags&memberNet != 0 {
		e.Net = netip.PrefixFrom(unpackAddr(m.net, m.flags&memberNetv6 != 0), int(m.bits))
	}
	return e
}

func unpackAddr(b [16]byte, v6 bool) netip.Addr {
	a := netip.AddrFrom16(b)
	if !v6 {
		return a.Unmap()
	}
	return a
}

// compareMembers orders members by set (as in ownedSets), then as pkg/ipset
// orders a set's entries: address, protocol, port, second address, net,
// mark. A set's members are of one family and one form, so comparing the
// packed bytes orders them as the addresses compare.
func compareMembers(a, b member) int {
	return cmp.Or(cmp.Compare(a.set, b.set), bytes.Compare(a.ip[:], b.ip[:]), cmp.Compare(a.proto, b.proto),
		cmp.Compare(a.port, b.port), bytes.Compare(a.ip2[:], b.ip2[:]), bytes.Compare(a.net[:], b.net[:]),
		cmp.Compare(a.bits, b.bits), cmp.Compare(a.mark, b.mark), cmp.Compare(a.flags, b.flags))
}

// memberList is members of one set read from the kernel, sorted by
// compareMembers.
type memberList []member

// has reports whether m is in l.
func (l memberList) has(m member) bool {
	_, ok := slices.BinarySearchFunc(l, m, compareMembers)
	return ok
}

// setMembers are the members read from each owned set, by the set's index
// in ownedSets (nil for a set the kernel lacks): at 5,000 Services 60,000
// of them in 3.6 MB, where a map and the entries it was built from took
// over three times as much for as long as a resync ran.
type setMembers []memberList

// has reports whether m was read.
func (s setMembers) has(m member) bool { return int(m.set) < len(s) && s[m.set].has(m) }
