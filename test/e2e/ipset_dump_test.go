package e2e

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
)

// TestGuestIPSetLargeDump: a set of thousands of members comes back from
// the kernel over many netlink messages, which Entries parses one by one
// into a list sized from the set's header; it must list exactly the
// members added, as the fake does.
func TestGuestIPSetLargeDump(t *testing.T) {
	guest(t)
	s := ipset.Set{Name: e2eSetPrefix + "LARGE", Type: ipset.HashIPPort}
	kernel, fake := ipset.NewLinux(), ipset.NewFake()
	clean := func() {
		if err := kernel.Destroy(s.Name); err != nil {
			t.Errorf("clean up: %v", err)
		}
	}
	clean() // a previous run's, if it was killed
	t.Cleanup(clean)
	var es []ipset.Entry
	for i := range 5000 {
		es = append(es, ipset.Entry{IP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Proto: "tcp", Port: uint16(80 + i%3)})
	}
	for _, i := range []ipset.Interface{kernel, fake} {
		if err := i.Ensure(s); err != nil {
			t.Fatal(err)
		}
		for _, err := range i.AddAll(s.Name, es) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := kernel.Entries(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fake.Entries(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(es) || !slices.Equal(got, want) {
		t.Errorf("the kernel listed %d members, the fake %d (of %d added); equal: %v", len(got), len(want), len(es), slices.Equal(got, want))
	}
}
