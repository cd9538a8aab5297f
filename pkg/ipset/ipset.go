// Package ipset owns the kernel ipsets that ipvs-proxy's masquerade rules
// match on. Every set it touches is named IPVS-PROXY-*; it refuses any other
// name, so sets made by kube-proxy, a CNI or an operator are never read,
// changed or destroyed. The sets hold only this node's endpoints.
// A Linux implementation over netlink and a fake print the same Dump text.
package ipset

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Prefix starts the name of every set this package touches.
const Prefix = "IPVS-PROXY-"

// maxNameLen is IPSET_MAXNAMELEN less the kernel's terminating NUL.
const maxNameLen = 31

// Type is an ipset type, spelled as `ipset create` spells it.
type Type string

const (
	// HashIPPortIP holds (ip, proto:port, ip2) members.
	HashIPPortIP Type = "hash:ip,port,ip"
	// HashIPPort holds (ip, proto:port) members.
	HashIPPort Type = "hash:ip,port"
	// HashIP holds addresses alone: an Entry with only IP set.
	HashIP Type = "hash:ip"
	// HashIPPortNet holds (ip, proto:port, net) members.
	HashIPPortNet Type = "hash:ip,port,net"
)

// Set is one set as ipvs-proxy creates it.
type Set struct {
	Name string
	Type Type
	IPv6 bool // family inet6; otherwise inet
	// SkbInfo makes a hash:ip,port set whose members carry a packet mark
	// (ipset's skbinfo extension), which iptables' SET target with
	// --map-mark puts on the packets that match the member.
	SkbInfo bool
}

// Entry is one member. Proto is "tcp", "udp" or "sctp", and empty (with
// Port 0) only in hash:ip. IP2 is used only by hash:ip,port,ip. Entries returns members exactly as Add accepted
// them, so Entry values can be compared and used as map keys.
type Entry struct {
	IP    netip.Addr
	Proto string
	Port  uint16
	IP2   netip.Addr
	// Net is the third part of a hash:ip,port,net member, always with its
	// prefix length (a /32 too), as the kernel lists it.
	Net netip.Prefix
	// Mark is the packet mark of a member of a SkbInfo set, never 0 there
	// and always 0 elsewhere. It is not part of the member's identity in
	// the kernel: adding the member again with another mark replaces the
	// mark, and deleting it deletes it whatever its mark.
	Mark uint32
}

// String spells e as ipset does: "10.244.0.2,tcp:8080,10.244.0.2" or
// "fd00::2,udp:53" (IPv6 without brackets, as `ipset list` prints it).
func (e Entry) String() string {
	if e.Proto == "" {
		return e.IP.String()
	}
	s := fmt.Sprintf("%s,%s:%d", e.IP, e.Proto, e.Port)
	if e.IP2.IsValid() {
		s += "," + e.IP2.String()
	}
	if e.Net.IsValid() {
		s += "," + e.Net.String()
	}
	if e.Mark != 0 {
		s += fmt.Sprintf(" skbmark 0x%x", e.Mark)
	}
	return s
}

// compare orders entries by address first, as a reader scans a dump.
func (e Entry) compare(o Entry) int {
	return cmp.Or(e.IP.Compare(o.IP), cmp.Compare(e.Proto, o.Proto), cmp.Compare(e.Port, o.Port), e.IP2.Compare(o.IP2),
		e.Net.Addr().Compare(o.Net.Addr()), cmp.Compare(e.Net.Bits(), o.Net.Bits()), cmp.Compare(e.Mark, o.Mark))
}

func sortEntries(es []Entry) { slices.SortFunc(es, Entry.compare) }

// Interface is the kernel's IPVS-PROXY-* sets. Every method refuses a name
// without the prefix.
type Interface interface {
	// Ensure creates the set if missing. One that exists with the same type
	// and family is left as it is, members included; one with another type
	// or family is an error naming both (destroy it to change it).
	Ensure(s Set) error
	// Entries lists the set's members, sorted. It reads the whole set, so
	// it is for the full resync; an absent set is ErrNotFound.
	Entries(name string) ([]Entry, error)
	// Add adds e; already present is success, a missing set is ErrNotFound.
	Add(name string, e Entry) error
	// Del removes e; absent is success, and so is a missing set.
	Del(name string, e Entry) error
	// AddAll and DelAll are Add and Del for many members of one set, in as
	// few round trips to the kernel as they can; errs[i] is entries[i]'s.
	AddAll(name string, entries []Entry) (errs []error)
	DelAll(name string, entries []Entry) (errs []error)
	// Destroy destroys the set; absent is success. A set that an iptables
	// rule still matches on cannot be destroyed.
	Destroy(name string) error
	// Dump prints every IPVS-PROXY-* set; see Format.
	Dump() (string, error)
}

var (
	// ErrNotFound is wrapped by errors about a set that does not exist.
	ErrNotFound = errors.New("set not found")
	// ErrMismatch is wrapped by errors about an entry of the wrong shape or
	// family for its set: an IPv6 entry in an inet set, or an entry without
	// IP2 in a hash:ip,port,ip set. The kernel calls it "invalid protocol".
	ErrMismatch = errors.New("entry does not match the set's type and family")
	// ErrInUse is wrapped by errors about destroying a set that a kernel
	// component, such as an iptables rule, still refers to.
	ErrInUse = errors.New("set is in use by a kernel component")
)

// existsAs is Ensure's error for a set of the right name but another kind.
func existsAs(want Set, typ, fam string) error {
	return fmt.Errorf("ensure ipset %s: exists as %s family %s, want %s family %s (destroy it to change it)",
		want.Name, typ, fam, want.Type, family(want.IPv6))
}

// Contents is a set and its members, as Format prints them.
type Contents struct {
	Set     Set
	Entries []Entry
}

// Format prints the dump shared by the fake and the Linux implementation,
// sets sorted by name and members sorted, so tests compare them as text:
//
//	set IPVS-PROXY-HAIRPIN hash:ip,port,ip family inet
//	  10.244.0.2,tcp:8080,10.244.0.2
//	set IPVS-PROXY-KEEP-SOURCE6 hash:ip,port family inet6
//	  fd00:10:244::2,udp:53
//
// No sets is the empty string.
func Format(sets []Contents) string {
	sets = slices.Clone(sets)
	slices.SortFunc(sets, func(a, b Contents) int { return cmp.Compare(a.Set.Name, b.Set.Name) })
	var b strings.Builder
	for _, c := range sets {
		fmt.Fprintf(&b, "set %s %s family %s%s\n", c.Set.Name, c.Set.Type, family(c.Set.IPv6), skbinfo(c.Set))
		es := slices.Clone(c.Entries)
		sortEntries(es)
		for _, e := range es {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

// skbinfo spells the create option as `ipset create` takes it.
func skbinfo(s Set) string {
	if s.SkbInfo {
		return " skbinfo"
	}
	return ""
}

func family(v6 bool) string {
	if v6 {
		return "inet6"
	}
	return "inet"
}

// checkName refuses names this package does not own, before any request.
func checkName(name string) error {
	switch {
	case !strings.HasPrefix(name, Prefix) || len(name) == len(Prefix):
		return fmt.Errorf("ipset %q is not ipvs-proxy's: names must start with %s", name, Prefix)
	case len(name) > maxNameLen:
		return fmt.Errorf("ipset name %s is longer than the kernel's %d characters", name, maxNameLen)
	}
	return nil
}

func checkSet(s Set) error {
	if err := checkName(s.Name); err != nil {
		return err
	}
	switch s.Type {
	case HashIPPortIP, HashIPPort, HashIP, HashIPPortNet:
	default:
		return fmt.Errorf("ipset %s: type %q is not one ipvs-proxy makes (%s, %s, %s or %s)", s.Name, s.Type, HashIPPortIP, HashIPPort, HashIP, HashIPPortNet)
	}
	if s.SkbInfo && s.Type != HashIPPort {
		return fmt.Errorf("ipset %s: skbinfo is made only with %s", s.Name, HashIPPort)
	}
	return nil
}

// protocols maps Entry.Proto to the IP protocol number the kernel stores.
var protocols = map[string]uint8{"tcp": 6, "udp": 17, "sctp": 132}

// checkEntry refuses, before any request, what the kernel would store in
// another form than it was given (so Entries could not return it equal) or
// refuse for a reason other than the set's type and family.
func checkEntry(e Entry) error {
	if e.Mark != 0 && (e.Proto == "" || e.IP2.IsValid() || e.Net.IsValid()) {
		return errors.New("only an ip,port member carries a mark")
	}
	if e.Proto == "" && e.Port == 0 && !e.IP2.IsValid() && !e.Net.IsValid() {
		return checkAddr(e.IP) // a hash:ip member
	}
	if _, ok := protocols[e.Proto]; !ok {
		return fmt.Errorf("protocol %q is not tcp, udp or sctp", e.Proto)
	}
	if err := checkAddr(e.IP); err != nil {
		return err
	}
	if e.Net.IsValid() {
		switch {
		case e.IP2.IsValid():
			return errors.New("a member has IP2 or Net, not both")
		case e.Net != e.Net.Masked() || e.Net.Bits() == 0:
			// The kernel stores the masked net, and refuses /0.
			return fmt.Errorf("net %s is not masked or is /0", e.Net)
		case e.Net.Addr().Is6() != e.IP.Is6():
			return fmt.Errorf("addresses %s and %s are of different families", e.IP, e.Net)
		}
		return checkAddr(e.Net.Addr())
	}
	if !e.IP2.IsValid() {
		return nil
	}
	if err := checkAddr(e.IP2); err != nil {
		return err
	}
	if e.IP2.Is6() != e.IP.Is6() {
		return fmt.Errorf("addresses %s and %s are of different families", e.IP, e.IP2)
	}
	return nil
}

func checkAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("invalid address")
	case a.Zone() != "":
		return fmt.Errorf("address %s has a zone", a)
	case a.Is4In6():
		return fmt.Errorf("address %s is IPv4-mapped; use %s", a, a.Unmap())
	}
	return nil
}

// fits reports whether e has the shape and family of set s; the kernel
// refuses it otherwise, which the fake must do too.
func fits(s Set, e Entry) bool {
	return e.IP.Is6() == s.IPv6 && e.IP2.IsValid() == (s.Type == HashIPPortIP) && (e.Proto == "") == (s.Type == HashIP) &&
		e.Net.IsValid() == (s.Type == HashIPPortNet) && (e.Mark == 0 || s.SkbInfo)
}
