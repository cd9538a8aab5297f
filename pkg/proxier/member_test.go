package proxier

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
)

// TestMemberRoundTrip: a packed member gives back the entry it was made
// from, in every set type and both families, and two members are equal
// exactly when their sets and entries are.
func TestMemberRoundTrip(t *testing.T) {
	a4, b4 := netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.96.0.10")
	a6 := netip.MustParseAddr("fd00:10:244::2")
	mapped := netip.MustParseAddr("::ffff:10.244.1.2")
	cases := []struct {
		set string
		e   ipset.Entry
	}{
		{iptables.VIPSet(iptables.IPv4), ipset.Entry{IP: b4}},
		{iptables.VIPSet(iptables.IPv6), ipset.Entry{IP: a6}},
		{iptables.VIPSet(iptables.IPv6), ipset.Entry{IP: mapped}},
		{iptables.HairpinSet(iptables.IPv4), ipset.Entry{IP: a4, Proto: "tcp", Port: 8080, IP2: a4}},
		{iptables.HairpinSet(iptables.IPv6), ipset.Entry{IP: a6, Proto: "udp", Port: 53, IP2: a6}},
		{iptables.ServicePortsSet(iptables.IPv4), ipset.Entry{IP: b4, Proto: "sctp", Port: 9}},
		{iptables.SourceRangesSet(iptables.IPv4), ipset.Entry{IP: b4, Proto: "tcp", Port: 80, Net: netip.MustParsePrefix("192.168.0.0/16")}},
		{iptables.SourceRangesSet(iptables.IPv4), ipset.Entry{IP: b4, Proto: "tcp", Port: 80, Net: netip.MustParsePrefix("192.168.0.0/24")}},
		{iptables.SourceRangesSet(iptables.IPv6), ipset.Entry{IP: a6, Proto: "tcp", Port: 80, Net: netip.MustParsePrefix("fd00::/8")}},
		{iptables.ShortCircuitSet(iptables.IPv4), ipset.Entry{IP: b4, Proto: "tcp", Port: 80, Mark: 0x4000}},
		{iptables.ShortCircuitSet(iptables.IPv4), ipset.Entry{IP: b4, Proto: "tcp", Port: 80, Mark: 0x8000}},
	}
	seen := map[member]int{}
	for i, c := range cases {
		m := newMember(c.set, c.e)
		if got := m.entry(); got != c.e {
			t.Errorf("%s %s: unpacked as %s (%#v)", c.set, c.e, got, got)
		}
		if got := m.setName(); got != c.set {
			t.Errorf("%s %s: set %s", c.set, c.e, got)
		}
		if j, dup := seen[m]; dup {
			t.Errorf("%s %s packs equal to case %d (%s %s)", c.set, c.e, j, cases[j].set, cases[j].e)
		}
		seen[m] = i
		if newMember(c.set, c.e) != m {
			t.Errorf("%s %s: packed twice, not equal", c.set, c.e)
		}
	}
}

// TestMemberHasNoPointers: the index's and the snapshot's member maps are
// meant to be skipped by the collector's scan; a pointer field (a string,
// a netip.Addr) would undo that.
func TestMemberHasNoPointers(t *testing.T) {
	typ := reflect.TypeFor[member]()
	for f := range typ.Fields() {
		switch f.Type.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		case reflect.Array:
			if f.Type.Elem().Kind() != reflect.Uint8 {
				t.Errorf("field %s is %s", f.Name, f.Type)
			}
		default:
			t.Errorf("field %s is %s, which may hold a pointer", f.Name, f.Type)
		}
	}
	if size := unsafe.Sizeof(member{}); size > 60 {
		t.Errorf("member is %d bytes, want at most 60", size)
	}
}

// TestMemberListOrder: members packed from a set's entries as pkg/ipset
// lists them are in compareMembers' order already, so a snapshot rarely
// sorts; and has finds each member read, and only those.
func TestMemberListOrder(t *testing.T) {
	sets := ipset.NewFake()
	fill := map[string][]ipset.Entry{
		iptables.HairpinSet(iptables.IPv4): {
			{IP: netip.MustParseAddr("10.244.1.2"), Proto: "udp", Port: 53, IP2: netip.MustParseAddr("10.244.1.2")},
			{IP: netip.MustParseAddr("10.244.1.2"), Proto: "tcp", Port: 8080, IP2: netip.MustParseAddr("10.244.1.2")},
			{IP: netip.MustParseAddr("10.244.1.2"), Proto: "sctp", Port: 9, IP2: netip.MustParseAddr("10.244.1.2")},
			{IP: netip.MustParseAddr("9.9.9.9"), Proto: "tcp", Port: 80, IP2: netip.MustParseAddr("9.9.9.9")},
			{IP: netip.MustParseAddr("10.244.1.10"), Proto: "tcp", Port: 80, IP2: netip.MustParseAddr("10.244.1.10")},
		},
		iptables.VIPSet(iptables.IPv6): {{IP: netip.MustParseAddr("fd00::1")}, {IP: netip.MustParseAddr("fd00::ff")}, {IP: netip.MustParseAddr("fd00::")}},
		iptables.SourceRangesSet(iptables.IPv4): {
			{IP: netip.MustParseAddr("10.96.0.1"), Proto: "tcp", Port: 80, Net: netip.MustParsePrefix("10.0.0.0/16")},
			{IP: netip.MustParseAddr("10.96.0.1"), Proto: "tcp", Port: 80, Net: netip.MustParsePrefix("10.0.0.0/8")},
			{IP: netip.MustParseAddr("10.96.0.1"), Proto: "tcp", Port: 79, Net: netip.MustParsePrefix("192.168.0.0/16")},
		},
	}
	list := make(setMembers, len(ownedSets))
	for i, s := range ownedSets {
		if err := sets.Ensure(s); err != nil {
			t.Fatal(err)
		}
		for _, e := range fill[s.Name] {
			if err := sets.Add(s.Name, e); err != nil {
				t.Fatal(err)
			}
		}
		es, err := sets.Entries(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			list[i] = append(list[i], newMember(s.Name, e))
		}
		if !slices.IsSortedFunc(list[i], compareMembers) {
			var got []string
			for _, m := range list[i] {
				got = append(got, m.entry().String())
			}
			t.Errorf("%s: not in compareMembers' order:\n%s", s.Name, strings.Join(got, "\n"))
		}
	}
	for i, s := range ownedSets {
		var got []string
		for _, m := range list[i] {
			if !list.has(m) {
				t.Errorf("%s: has(%s) is false", s.Name, m.entry())
			}
			got = append(got, m.entry().String())
		}
		var want []string
		for _, e := range fill[s.Name] {
			want = append(want, e.String())
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: read %q, want %q", s.Name, got, want)
		}
	}
	absent := newMember(iptables.HairpinSet(iptables.IPv4), ipset.Entry{IP: netip.MustParseAddr("10.244.1.2"), Proto: "tcp", Port: 8081, IP2: netip.MustParseAddr("10.244.1.2")})
	if list.has(absent) {
		t.Errorf("has(%s) is true", absent.entry())
	}
}
