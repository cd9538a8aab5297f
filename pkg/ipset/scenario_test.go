package ipset

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Set names for the tests; ipvs-proxy's own are in pkg/iptables.
const (
	hairpin  = "IPVS-PROXY-T-HAIRPIN"
	hairpin6 = "IPVS-PROXY-T-HAIRPIN6"
	keep     = "IPVS-PROXY-T-KEEP"
	keep6    = "IPVS-PROXY-T-KEEP6"
	vips     = "IPVS-PROXY-T-VIPS"
	vip6     = "IPVS-PROXY-T-VIPS6"
	ranges   = "IPVS-PROXY-T-RANGES"
	ranges6  = "IPVS-PROXY-T-RANGES6"
	marks    = "IPVS-PROXY-T-MARKS"
	marks6   = "IPVS-PROXY-T-MARKS6"
)

var (
	hairpinSet  = Set{Name: hairpin, Type: HashIPPortIP}
	hairpin6Set = Set{Name: hairpin6, Type: HashIPPortIP, IPv6: true}
	keepSet     = Set{Name: keep, Type: HashIPPort}
	keep6Set    = Set{Name: keep6, Type: HashIPPort, IPv6: true}
	vipSet      = Set{Name: vips, Type: HashIP}
	vip6Set     = Set{Name: vip6, Type: HashIP, IPv6: true}
	rangesSet   = Set{Name: ranges, Type: HashIPPortNet}
	ranges6Set  = Set{Name: ranges6, Type: HashIPPortNet, IPv6: true}
	marksSet    = Set{Name: marks, Type: HashIPPort, SkbInfo: true}
	marks6Set   = Set{Name: marks6, Type: HashIPPort, IPv6: true, SkbInfo: true}
)

// step is one call on an Interface; wantErr, when set, is a substring of
// the error it must return.
type step struct {
	do      func(Interface) error
	wantErr string
}

func ensure(s Set) step { return step{do: func(i Interface) error { return i.Ensure(s) }} }
func add(name, e string) step {
	return step{do: func(i Interface) error { return i.Add(name, entry(e)) }}
}
func del(name, e string) step {
	return step{do: func(i Interface) error { return i.Del(name, entry(e)) }}
}
func addAll(name string, es ...string) step {
	return step{do: func(i Interface) error { return errors.Join(i.AddAll(name, entryList(es))...) }}
}
func delAll(name string, es ...string) step {
	return step{do: func(i Interface) error { return errors.Join(i.DelAll(name, entryList(es))...) }}
}
func entryList(ss []string) []Entry {
	var out []Entry
	for _, s := range ss {
		out = append(out, entry(s))
	}
	return out
}
func destroy(name string) step { return step{do: func(i Interface) error { return i.Destroy(name) }} }
func entries(name string) step {
	return step{do: func(i Interface) error { _, err := i.Entries(name); return err }}
}
func fails(s step, e string) step { s.wantErr = e; return s }

// entry reads ipset's spelling, "ip,proto:port[,ip2]", the inverse of
// Entry.String. It is lenient so that tests can spell invalid entries:
// an unparsable address becomes the zero Addr.
func entry(s string) Entry {
	var e Entry
	if s, mark, ok := strings.Cut(s, " skbmark "); ok {
		n, _ := strconv.ParseUint(mark, 0, 32)
		e = entry(s)
		e.Mark = uint32(n)
		return e
	}
	parts := strings.Split(s, ",")
	e.IP, _ = netip.ParseAddr(parts[0])
	if len(parts) > 1 {
		proto, port, _ := strings.Cut(parts[1], ":")
		n, _ := strconv.ParseUint(port, 10, 16)
		e.Proto, e.Port = proto, uint16(n)
	}
	if len(parts) > 2 && strings.Contains(parts[2], "/") {
		e.Net, _ = netip.ParsePrefix(parts[2])
	} else if len(parts) > 2 {
		e.IP2, _ = netip.ParseAddr(parts[2])
	}
	return e
}

// scenario is a sequence of calls and the state it must leave, as Dump
// text. The same scenarios run against the fake here and against the
// kernel in linux_test.go, which is what keeps the fake honest.
type scenario struct {
	name     string
	steps    []step
	wantDump string
	// wantLog is the fake's write log; nil means none.
	wantLog []string
}

var scenarios = []scenario{{
	name: "no sets",
}, {
	name: "skbinfo members carry a mark; adding again replaces it, deleting ignores it; a plain set refuses marks",
	steps: []step{
		ensure(marksSet), ensure(marks6Set), ensure(keepSet),
		add(marks, "203.0.113.1,tcp:80 skbmark 0x80001234"), add(marks, "203.0.113.1,tcp:80 skbmark 0x80005678"),
		addAll(marks, "203.0.113.2,udp:53 skbmark 0x1", "203.0.113.3,sctp:9 skbmark 0xffffffff"),
		add(marks6, "2001:db8::1,tcp:443 skbmark 0xc0000001"),
		del(marks, "203.0.113.2,udp:53 skbmark 0x2"),
		fails(add(keep, "203.0.113.1,tcp:80 skbmark 0x1"), "does not match the set's type"),
		fails(ensure(Set{Name: marks, Type: HashIPPort}), "exists as"),
	},
	wantDump: `set IPVS-PROXY-T-KEEP hash:ip,port family inet
set IPVS-PROXY-T-MARKS hash:ip,port family inet skbinfo
  203.0.113.1,tcp:80 skbmark 0x80005678
  203.0.113.3,sctp:9 skbmark 0xffffffff
set IPVS-PROXY-T-MARKS6 hash:ip,port family inet6 skbinfo
  2001:db8::1,tcp:443 skbmark 0xc0000001
`,
	wantLog: []string{
		"create IPVS-PROXY-T-MARKS hash:ip,port family inet skbinfo",
		"create IPVS-PROXY-T-MARKS6 hash:ip,port family inet6 skbinfo",
		"create IPVS-PROXY-T-KEEP hash:ip,port family inet",
		"add IPVS-PROXY-T-MARKS 203.0.113.1,tcp:80 skbmark 0x80001234",
		"add IPVS-PROXY-T-MARKS 203.0.113.1,tcp:80 skbmark 0x80005678",
		"add IPVS-PROXY-T-MARKS 203.0.113.2,udp:53 skbmark 0x1",
		"add IPVS-PROXY-T-MARKS 203.0.113.3,sctp:9 skbmark 0xffffffff",
		"add IPVS-PROXY-T-MARKS6 2001:db8::1,tcp:443 skbmark 0xc0000001",
		"del IPVS-PROXY-T-MARKS 203.0.113.2,udp:53 skbmark 0x2",
		"add IPVS-PROXY-T-KEEP 203.0.113.1,tcp:80 skbmark 0x1",
	},
}, {
	name: "hash:ip,port,net holds nets of every length, a host as /32 or /128; unmasked nets and the wrong shape are refused",
	steps: []step{
		ensure(rangesSet), ensure(ranges6Set),
		add(ranges, "198.51.100.1,tcp:80,192.0.2.0/24"), add(ranges, "198.51.100.1,tcp:80,198.51.100.1/32"),
		addAll(ranges, "198.51.100.1,udp:53,10.0.0.0/8", "198.51.100.2,tcp:443,192.0.2.0/24"),
		add(ranges6, "2001:db8::1,tcp:80,2001:db8:1::/48"),
		fails(add(ranges, "198.51.100.1,tcp:80,192.0.2.1/24"), "not masked"),
		fails(add(ranges, "198.51.100.1,tcp:80"), "does not match the set's type"),
		del(ranges, "198.51.100.1,udp:53,10.0.0.0/8"),
	},
	wantDump: `set IPVS-PROXY-T-RANGES hash:ip,port,net family inet
  198.51.100.1,tcp:80,192.0.2.0/24
  198.51.100.1,tcp:80,198.51.100.1/32
  198.51.100.2,tcp:443,192.0.2.0/24
set IPVS-PROXY-T-RANGES6 hash:ip,port,net family inet6
  2001:db8::1,tcp:80,2001:db8:1::/48
`,
	wantLog: []string{
		"create IPVS-PROXY-T-RANGES hash:ip,port,net family inet",
		"create IPVS-PROXY-T-RANGES6 hash:ip,port,net family inet6",
		"add IPVS-PROXY-T-RANGES 198.51.100.1,tcp:80,192.0.2.0/24",
		"add IPVS-PROXY-T-RANGES 198.51.100.1,tcp:80,198.51.100.1/32",
		"add IPVS-PROXY-T-RANGES 198.51.100.1,udp:53,10.0.0.0/8",
		"add IPVS-PROXY-T-RANGES 198.51.100.2,tcp:443,192.0.2.0/24",
		"add IPVS-PROXY-T-RANGES6 2001:db8::1,tcp:80,2001:db8:1::/48",
		"add IPVS-PROXY-T-RANGES 198.51.100.1,tcp:80",
		"del IPVS-PROXY-T-RANGES 198.51.100.1,udp:53,10.0.0.0/8",
	},
}, {
	name: "hash:ip holds addresses alone, both families; a member with a port does not fit",
	steps: []step{
		ensure(vipSet), ensure(vip6Set), ensure(keepSet),
		add(vips, "10.96.0.10"), add(vips, "10.96.0.1"), add(vip6, "fd00:10:96::a"),
		fails(add(vips, "10.96.0.2,tcp:80"), "does not match the set's type"), del(vips, "10.96.0.10"),
		fails(add(keep, "10.96.0.3"), "does not match the set's type"),
	},
	wantDump: `set IPVS-PROXY-T-KEEP hash:ip,port family inet
set IPVS-PROXY-T-VIPS hash:ip family inet
  10.96.0.1
set IPVS-PROXY-T-VIPS6 hash:ip family inet6
  fd00:10:96::a
`,
	wantLog: []string{
		"create IPVS-PROXY-T-VIPS hash:ip family inet",
		"create IPVS-PROXY-T-VIPS6 hash:ip family inet6",
		"create IPVS-PROXY-T-KEEP hash:ip,port family inet",
		"add IPVS-PROXY-T-VIPS 10.96.0.10",
		"add IPVS-PROXY-T-VIPS 10.96.0.1",
		"add IPVS-PROXY-T-VIPS6 fd00:10:96::a",
		"add IPVS-PROXY-T-VIPS 10.96.0.2,tcp:80",
		"del IPVS-PROXY-T-VIPS 10.96.0.10",
		"add IPVS-PROXY-T-KEEP 10.96.0.3",
	},
}, {
	name:  "ensure creates each set once, both types and both families",
	steps: []step{ensure(keep6Set), ensure(hairpinSet), ensure(keepSet), ensure(hairpin6Set), ensure(keepSet), ensure(hairpin6Set)},
	wantDump: `set IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet
set IPVS-PROXY-T-HAIRPIN6 hash:ip,port,ip family inet6
set IPVS-PROXY-T-KEEP hash:ip,port family inet
set IPVS-PROXY-T-KEEP6 hash:ip,port family inet6
`,
	wantLog: []string{
		"create IPVS-PROXY-T-KEEP6 hash:ip,port family inet6",
		"create IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet",
		"create IPVS-PROXY-T-KEEP hash:ip,port family inet",
		"create IPVS-PROXY-T-HAIRPIN6 hash:ip,port,ip family inet6",
	},
}, {
	name: "members of every protocol, both families, sorted",
	steps: []step{
		ensure(hairpinSet), ensure(hairpin6Set), ensure(keepSet), ensure(keep6Set),
		add(hairpin, "10.244.0.9,udp:53,10.244.0.9"),
		add(hairpin, "10.244.0.10,tcp:8080,10.244.0.10"),
		add(hairpin, "10.244.0.9,tcp:8080,10.244.0.9"),
		add(hairpin, "10.244.0.9,sctp:9000,10.244.0.9"),
		add(hairpin6, "fd00:10:244::a,tcp:443,fd00:10:244::a"),
		add(keep, "10.244.0.2,tcp:65535"),
		add(keep, "10.244.0.2,udp:0"),
		add(keep6, "fd00:10:244::2,sctp:36412"),
		add(keep6, "fd00:10:244::1,udp:53"),
	},
	wantDump: `set IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet
  10.244.0.9,sctp:9000,10.244.0.9
  10.244.0.9,tcp:8080,10.244.0.9
  10.244.0.9,udp:53,10.244.0.9
  10.244.0.10,tcp:8080,10.244.0.10
set IPVS-PROXY-T-HAIRPIN6 hash:ip,port,ip family inet6
  fd00:10:244::a,tcp:443,fd00:10:244::a
set IPVS-PROXY-T-KEEP hash:ip,port family inet
  10.244.0.2,tcp:65535
  10.244.0.2,udp:0
set IPVS-PROXY-T-KEEP6 hash:ip,port family inet6
  fd00:10:244::1,udp:53
  fd00:10:244::2,sctp:36412
`,
	wantLog: []string{
		"create IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet",
		"create IPVS-PROXY-T-HAIRPIN6 hash:ip,port,ip family inet6",
		"create IPVS-PROXY-T-KEEP hash:ip,port family inet",
		"create IPVS-PROXY-T-KEEP6 hash:ip,port family inet6",
		"add IPVS-PROXY-T-HAIRPIN 10.244.0.9,udp:53,10.244.0.9",
		"add IPVS-PROXY-T-HAIRPIN 10.244.0.10,tcp:8080,10.244.0.10",
		"add IPVS-PROXY-T-HAIRPIN 10.244.0.9,tcp:8080,10.244.0.9",
		"add IPVS-PROXY-T-HAIRPIN 10.244.0.9,sctp:9000,10.244.0.9",
		"add IPVS-PROXY-T-HAIRPIN6 fd00:10:244::a,tcp:443,fd00:10:244::a",
		"add IPVS-PROXY-T-KEEP 10.244.0.2,tcp:65535",
		"add IPVS-PROXY-T-KEEP 10.244.0.2,udp:0",
		"add IPVS-PROXY-T-KEEP6 fd00:10:244::2,sctp:36412",
		"add IPVS-PROXY-T-KEEP6 fd00:10:244::1,udp:53",
	},
}, {
	name: "the hairpin entry's two addresses may differ and stay apart",
	steps: []step{ensure(hairpinSet), add(hairpin, "10.244.0.2,tcp:80,10.244.0.3"), add(hairpin, "10.244.0.2,tcp:80,10.244.0.2"),
		del(hairpin, "10.244.0.2,tcp:80,10.244.0.3")},
	wantDump: "set IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet\n  10.244.0.2,tcp:80,10.244.0.2\n",
	wantLog: []string{"create IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet",
		"add IPVS-PROXY-T-HAIRPIN 10.244.0.2,tcp:80,10.244.0.3", "add IPVS-PROXY-T-HAIRPIN 10.244.0.2,tcp:80,10.244.0.2",
		"del IPVS-PROXY-T-HAIRPIN 10.244.0.2,tcp:80,10.244.0.3"},
}, {
	name:     "adding twice succeeds",
	steps:    []step{ensure(keep6Set), add(keep6, "fd00::1,tcp:80"), add(keep6, "fd00::1,tcp:80")},
	wantDump: "set IPVS-PROXY-T-KEEP6 hash:ip,port family inet6\n  fd00::1,tcp:80\n",
	wantLog:  []string{"create IPVS-PROXY-T-KEEP6 hash:ip,port family inet6", "add IPVS-PROXY-T-KEEP6 fd00::1,tcp:80", "add IPVS-PROXY-T-KEEP6 fd00::1,tcp:80"},
}, {
	name: "deleting keeps the others; deleting an absent member, or from a missing set, succeeds",
	steps: []step{ensure(keepSet), add(keep, "10.0.0.1,tcp:80"), add(keep, "10.0.0.1,udp:80"),
		del(keep, "10.0.0.1,tcp:80"), del(keep, "10.0.0.1,tcp:80"), del(keep, "10.0.0.1,tcp:81"), del(keep6, "fd00::1,tcp:80")},
	wantDump: "set IPVS-PROXY-T-KEEP hash:ip,port family inet\n  10.0.0.1,udp:80\n",
	wantLog: []string{"create IPVS-PROXY-T-KEEP hash:ip,port family inet", "add IPVS-PROXY-T-KEEP 10.0.0.1,tcp:80", "add IPVS-PROXY-T-KEEP 10.0.0.1,udp:80",
		"del IPVS-PROXY-T-KEEP 10.0.0.1,tcp:80", "del IPVS-PROXY-T-KEEP 10.0.0.1,tcp:80", "del IPVS-PROXY-T-KEEP 10.0.0.1,tcp:81", "del IPVS-PROXY-T-KEEP6 fd00::1,tcp:80"},
}, {
	name:    "adding to a missing set, or listing one, fails",
	steps:   []step{fails(add(keep, "10.0.0.1,tcp:80"), "add 10.0.0.1,tcp:80 to ipset IPVS-PROXY-T-KEEP: set not found"), fails(entries(keep), "list ipset IPVS-PROXY-T-KEEP: set not found")},
	wantLog: []string{"add IPVS-PROXY-T-KEEP 10.0.0.1,tcp:80"},
}, {
	name: "an entry of the other family or shape fails, as the kernel's invalid protocol",
	steps: []step{ensure(hairpinSet), ensure(keep6Set),
		fails(add(hairpin, "fd00::1,tcp:80,fd00::1"), "add fd00::1,tcp:80,fd00::1 to ipset IPVS-PROXY-T-HAIRPIN: entry does not match the set's type and family"),
		fails(add(hairpin, "10.0.0.1,tcp:80"), "add 10.0.0.1,tcp:80 to ipset IPVS-PROXY-T-HAIRPIN: entry does not match"),
		fails(add(keep6, "10.0.0.1,tcp:80"), "entry does not match"),
		fails(add(keep6, "fd00::1,tcp:80,fd00::1"), "entry does not match"),
		fails(del(keep6, "10.0.0.1,tcp:80"), "delete 10.0.0.1,tcp:80 from ipset IPVS-PROXY-T-KEEP6: entry does not match"),
	},
	wantDump: "set IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet\nset IPVS-PROXY-T-KEEP6 hash:ip,port family inet6\n",
	wantLog: []string{"create IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet", "create IPVS-PROXY-T-KEEP6 hash:ip,port family inet6",
		"add IPVS-PROXY-T-HAIRPIN fd00::1,tcp:80,fd00::1", "add IPVS-PROXY-T-HAIRPIN 10.0.0.1,tcp:80", "add IPVS-PROXY-T-KEEP6 10.0.0.1,tcp:80",
		"add IPVS-PROXY-T-KEEP6 fd00::1,tcp:80,fd00::1", "del IPVS-PROXY-T-KEEP6 10.0.0.1,tcp:80"},
}, {
	name: "invalid entries fail before any write",
	steps: []step{ensure(hairpinSet),
		fails(add(hairpin, "10.0.0.1,icmp:0,10.0.0.1"), `add 10.0.0.1,icmp:0,10.0.0.1 to ipset IPVS-PROXY-T-HAIRPIN: protocol "icmp" is not tcp, udp or sctp`),
		fails(add(hairpin, "10.0.0.1,TCP:80,10.0.0.1"), `protocol "TCP" is not tcp, udp or sctp`),
		fails(add(hairpin, "bogus,tcp:80,10.0.0.1"), "invalid address"),
		fails(add(hairpin, "::ffff:10.0.0.1,tcp:80,10.0.0.1"), "address ::ffff:10.0.0.1 is IPv4-mapped; use 10.0.0.1"),
		fails(add(hairpin, "10.0.0.1,tcp:80,fd00::1"), "addresses 10.0.0.1 and fd00::1 are of different families"),
		fails(add(hairpin, "fe80::1%eth0,tcp:80,fe80::1%eth0"), "address fe80::1%eth0 has a zone"),
		fails(del(hairpin, "10.0.0.1,icmp:0,10.0.0.1"), `delete 10.0.0.1,icmp:0,10.0.0.1 from ipset IPVS-PROXY-T-HAIRPIN: protocol "icmp"`),
	},
	wantDump: "set IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet\n",
	wantLog:  []string{"create IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet"},
}, {
	name: "ensure over another type or family fails, naming both, and keeps the set",
	steps: []step{ensure(keepSet), add(keep, "10.0.0.1,tcp:80"),
		fails(ensure(Set{Name: keep, Type: HashIPPortIP}), "ensure ipset IPVS-PROXY-T-KEEP: exists as hash:ip,port family inet, want hash:ip,port,ip family inet"),
		fails(ensure(Set{Name: keep, Type: HashIPPort, IPv6: true}), "exists as hash:ip,port family inet, want hash:ip,port family inet6"),
		ensure(keepSet)},
	wantDump: "set IPVS-PROXY-T-KEEP hash:ip,port family inet\n  10.0.0.1,tcp:80\n",
	wantLog:  []string{"create IPVS-PROXY-T-KEEP hash:ip,port family inet", "add IPVS-PROXY-T-KEEP 10.0.0.1,tcp:80"},
}, {
	name: "destroy drops the members; destroying again succeeds; a recreated set starts empty",
	steps: []step{ensure(keepSet), ensure(hairpinSet), add(keep, "10.0.0.1,tcp:80"), destroy(keep), destroy(keep),
		ensure(Set{Name: keep, Type: HashIPPortIP}), add(keep, "10.0.0.2,tcp:80,10.0.0.2")},
	wantDump: "set IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet\nset IPVS-PROXY-T-KEEP hash:ip,port,ip family inet\n  10.0.0.2,tcp:80,10.0.0.2\n",
	wantLog: []string{"create IPVS-PROXY-T-KEEP hash:ip,port family inet", "create IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet",
		"add IPVS-PROXY-T-KEEP 10.0.0.1,tcp:80", "destroy IPVS-PROXY-T-KEEP", "destroy IPVS-PROXY-T-KEEP",
		"create IPVS-PROXY-T-KEEP hash:ip,port,ip family inet", "add IPVS-PROXY-T-KEEP 10.0.0.2,tcp:80,10.0.0.2"},
}, {
	name: "batched adds and deletes answer member by member, as the single ones",
	steps: []step{ensure(keepSet),
		addAll(keep, "10.0.0.1,tcp:80", "10.0.0.2,udp:53", "10.0.0.1,tcp:80", "10.0.0.3,sctp:9"),
		fails(addAll(keep, "10.0.0.4,tcp:80", "fd00::1,tcp:80", "10.0.0.6,icmp:0", "10.0.0.5,tcp:81"),
			"add fd00::1,tcp:80 to ipset IPVS-PROXY-T-KEEP: entry does not match the set's type and family\n"+
				`add 10.0.0.6,icmp:0 to ipset IPVS-PROXY-T-KEEP: protocol "icmp" is not tcp, udp or sctp`),
		fails(addAll(vips, "10.0.0.1", "10.0.0.2"), "add 10.0.0.1 to ipset IPVS-PROXY-T-VIPS: set not found\nadd 10.0.0.2 to ipset IPVS-PROXY-T-VIPS: set not found"),
		delAll(keep, "10.0.0.2,udp:53", "10.0.0.9,tcp:1", "10.0.0.2,udp:53"),
		delAll(vips, "10.0.0.1"),
	},
	wantDump: "set IPVS-PROXY-T-KEEP hash:ip,port family inet\n  10.0.0.1,tcp:80\n  10.0.0.3,sctp:9\n  10.0.0.4,tcp:80\n  10.0.0.5,tcp:81\n",
	wantLog: []string{"create IPVS-PROXY-T-KEEP hash:ip,port family inet",
		"add IPVS-PROXY-T-KEEP 10.0.0.1,tcp:80", "add IPVS-PROXY-T-KEEP 10.0.0.2,udp:53", "add IPVS-PROXY-T-KEEP 10.0.0.1,tcp:80", "add IPVS-PROXY-T-KEEP 10.0.0.3,sctp:9",
		"add IPVS-PROXY-T-KEEP 10.0.0.4,tcp:80", "add IPVS-PROXY-T-KEEP fd00::1,tcp:80", "add IPVS-PROXY-T-KEEP 10.0.0.5,tcp:81",
		"add IPVS-PROXY-T-VIPS 10.0.0.1", "add IPVS-PROXY-T-VIPS 10.0.0.2",
		"del IPVS-PROXY-T-KEEP 10.0.0.2,udp:53", "del IPVS-PROXY-T-KEEP 10.0.0.9,tcp:1", "del IPVS-PROXY-T-KEEP 10.0.0.2,udp:53", "del IPVS-PROXY-T-VIPS 10.0.0.1"},
}, {
	name: "names without the prefix are refused before any request",
	steps: []step{
		fails(ensure(Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort}), `ipset "KUBE-CLUSTER-IP" is not ipvs-proxy's: names must start with IPVS-PROXY-`),
		fails(add("my-set", "10.0.0.1,tcp:80"), `ipset "my-set" is not ipvs-proxy's`),
		fails(del("my-set", "10.0.0.1,tcp:80"), `ipset "my-set" is not ipvs-proxy's`),
		fails(entries("KUBE-CLUSTER-IP"), `ipset "KUBE-CLUSTER-IP" is not ipvs-proxy's`),
		fails(destroy("KUBE-CLUSTER-IP"), `destroy: ipset "KUBE-CLUSTER-IP" is not ipvs-proxy's`),
		fails(destroy("my-set"), `destroy: ipset "my-set" is not ipvs-proxy's`),
		fails(destroy("IPVS-PROXY-"), `ipset "IPVS-PROXY-" is not ipvs-proxy's`),
		fails(destroy("ipvs-proxy-lower"), `is not ipvs-proxy's`),
		fails(ensure(Set{Name: "IPVS-PROXY-0123456789012345678901", Type: HashIPPort}), "ipset name IPVS-PROXY-0123456789012345678901 is longer than the kernel's 31 characters"),
		fails(ensure(Set{Name: keep, Type: "hash:net"}), `ipset IPVS-PROXY-T-KEEP: type "hash:net" is not one ipvs-proxy makes (hash:ip,port,ip, hash:ip,port, hash:ip or hash:ip,port,net)`),
	},
}}

// run applies the steps and returns the dump and, for each step, its
// error text ("" for none), or an error naming the first step that did
// not answer as expected.
func (sc scenario) run(i Interface) (dump string, errs []string, _ error) {
	for n, s := range sc.steps {
		err := s.do(i)
		switch {
		case s.wantErr == "" && err != nil:
			return "", nil, fmt.Errorf("step %d: unexpected error: %w", n, err)
		case s.wantErr != "" && err == nil:
			return "", nil, fmt.Errorf("step %d: no error, want one containing %q", n, s.wantErr)
		case s.wantErr != "" && !strings.Contains(err.Error(), s.wantErr):
			return "", nil, fmt.Errorf("step %d: error %q does not contain %q", n, err, s.wantErr)
		}
		errs = append(errs, fmt.Sprint(err))
	}
	dump, err := i.Dump()
	if err != nil {
		return "", nil, fmt.Errorf("dump: %w", err)
	}
	// Entries must agree with the dump, since the resync reads it.
	var fromEntries strings.Builder
	for line := range strings.Lines(dump) {
		if strings.HasPrefix(line, "  ") {
			continue
		}
		fromEntries.WriteString(line)
		name := strings.Fields(line)[1]
		es, err := i.Entries(name)
		if err != nil {
			return "", nil, fmt.Errorf("entries of %s: %w", name, err)
		}
		if es == nil {
			return "", nil, fmt.Errorf("entries of %s: nil, want an empty list", name)
		}
		for _, e := range es {
			fmt.Fprintf(&fromEntries, "  %s\n", e)
		}
	}
	if fromEntries.String() != dump {
		return "", nil, fmt.Errorf("Entries() disagree with the dump:\n%s\ndump:\n%s", fromEntries.String(), dump)
	}
	return dump, errs, nil
}
