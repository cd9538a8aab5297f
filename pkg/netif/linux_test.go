//go:build linux

package netif

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The same scenarios as the fake's, on the kernel: the dumps must match.
func TestLinuxScenarios(t *testing.T) {
	netnstest.Enter(t)
	probe := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}}
	if err := netlink.LinkAdd(probe); err != nil {
		// Expected, not a broken set-up: the development and CI machines'
		// kernel is built without CONFIG_DUMMY. The VM's real kernel runs
		// netif against its fake in test/e2e (TestGuestKernelMatchesFakes).
		t.Skipf("kernel cannot create dummy links (%v); covered in the VM by test/e2e TestGuestKernelMatchesFakes", err)
	}
	_ = netlink.LinkDel(probe)
	l := NewLinux(testLink)
	for _, sc := range scenarios {
		got, err := sc.run(l)
		if err != nil {
			t.Errorf("%s: %v", sc.name, err)
		} else if want, _ := sc.run(NewFake(testLink)); got != want || got != sc.wantDump {
			t.Errorf("%s: kernel dump:\n%s\nfake dump:\n%s", sc.name, got, want)
		}
		if err := l.DeleteLink(); err != nil {
			t.Fatalf("%s: clean up: %v", sc.name, err)
		}
	}
}

// Another program's link of another type under the name, holding an
// address of its own: a veth (whose peer must survive too) and a bridge.
// EnsureLink, Addresses, the address writes and DeleteLink refuse it and
// change nothing, as kube-proxy's DeleteDummyDevice refuses anything but a
// dummy.
func TestLinuxForeignLinkRefused(t *testing.T) {
	for _, foreign := range []netlink.Link{
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: testLink}, PeerName: "peer0"},
		&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: testLink}},
	} {
		typ := foreign.Type()
		netnstest.Enter(t) // a fresh namespace for each
		if err := netlink.LinkAdd(foreign); err != nil {
			netnstest.Skipf(t, "kernel cannot create a %s link: %v", typ, err)
		}
		before, err := netlink.LinkByName(testLink)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.AddrAdd(before, &netlink.Addr{IPNet: mustIPNet(foreignLinkAddr + "/32")}); err != nil {
			t.Fatal(err)
		}
		if err := foreignLink(NewLinux(testLink), typ); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		if after, err := netlink.LinkByName(testLink); err != nil || after.Attrs().Index != before.Attrs().Index || after.Type() != typ {
			t.Errorf("%s: the link is gone or replaced: %v", typ, err)
		}
		if _, ok := foreign.(*netlink.Veth); ok {
			if _, err := netlink.LinkByName("peer0"); err != nil {
				t.Errorf("%s: its peer is gone: %v", typ, err)
			}
		}
	}
}

// Address handling on the loopback link, which every kernel has, so this
// part runs even where dummy links cannot be made: l takes loopback's type
// for its own, which NewLinux("lo") refuses.
func TestLinuxAddressesOnLoopback(t *testing.T) {
	netnstest.Enter(t)
	if err := NewLinux("lo").EnsureLink(); err == nil || err.Error() != "link lo exists with type device, not dummy" {
		t.Errorf("EnsureLink on lo: %v, want a refusal", err)
	}
	l := newLinux("lo", "device")
	for _, a := range []string{"fd00:10:96::1", "10.96.0.1", "10.96.0.1", "10.96.0.2", "fd00:10:96::1"} {
		if err := l.AddAddresses([]netip.Addr{netip.MustParseAddr(a)})[0]; err != nil {
			t.Errorf("add %s: %v", a, err)
		}
	}
	for _, a := range []string{"10.96.0.2", "10.96.0.2", "fd00:10:96::2"} {
		if err := l.DeleteAddresses([]netip.Addr{netip.MustParseAddr(a)})[0]; err != nil {
			t.Errorf("delete %s: %v", a, err)
		}
	}
	got, err := l.Dump()
	want := "link lo device down\naddr 10.96.0.1/32\naddr fd00:10:96::1/128\n"
	if err != nil || got != want {
		t.Errorf("dump: %v\n%s\nwant:\n%s", err, got, want)
	}
	// nodad: otherwise the address would stay tentative on a down link.
	link, _ := netlink.LinkByName("lo")
	v6, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil || len(v6) != 1 || v6[0].Flags&unix.IFA_F_NODAD == 0 || v6[0].Flags&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("IPv6 addresses %v (err %v), want one with nodad and not tentative", v6, err)
	}

	hosts, err := NewLinux(testLink).HostAddresses()
	wantHosts := []HostAddress{{"lo", netip.MustParseAddr("10.96.0.1")}, {"lo", netip.MustParseAddr("fd00:10:96::1")}}
	if err != nil || len(hosts) != 2 || hosts[0] != wantHosts[0] || hosts[1] != wantHosts[1] {
		t.Errorf("host addresses %v (err %v), want %v", hosts, err, wantHosts)
	}
	if hosts, err := l.HostAddresses(); err != nil || len(hosts) != 0 {
		t.Errorf("host addresses seen from lo itself: %v (err %v), want none", hosts, err)
	}

	absent := NewLinux(testLink)
	if got, err := absent.Dump(); err != nil || got != "link kube-ipvs0 absent\n" {
		t.Errorf("dump of a missing link: %q, %v", got, err)
	}
	if addrs, err := absent.Addresses(); err != nil || addrs == nil || len(addrs) != 0 {
		t.Errorf("addresses of a missing link: %v, %v; want empty", addrs, err)
	}
	if err := absent.DeleteAddresses([]netip.Addr{netip.MustParseAddr("10.96.0.1")})[0]; err != nil {
		t.Errorf("delete from a missing link: %v", err)
	}
	if err := absent.DeleteLink(); err != nil {
		t.Errorf("delete a missing link: %v", err)
	}
}

// The batched calls on loopback: the same answers and the same kernel
// state as the single ones above, with a bad address failing alone.
func TestLinuxBatchedAddressesOnLoopback(t *testing.T) {
	netnstest.Enter(t)
	l := newLinux("lo", "device") // see TestLinuxAddressesOnLoopback
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, addr(s))
		}
		return out
	}
	errText := func(errs []error) string {
		var b strings.Builder
		for i, err := range errs {
			fmt.Fprintf(&b, "%d: %v\n", i, err)
		}
		return b.String()
	}
	got := errText(l.AddAddresses(addrs("fd00:10:96::1", "10.96.0.1", "10.96.0.1", "", "10.96.0.2", "::ffff:10.96.0.3")))
	want := "0: <nil>\n1: <nil>\n2: <nil>\n3: add address invalid IP on lo: invalid address\n4: <nil>\n5: <nil>\n"
	if got != want {
		t.Errorf("add errors:\n%swant:\n%s", got, want)
	}
	got = errText(l.DeleteAddresses(addrs("10.96.0.2", "10.96.0.2", "fd00:10:96::2")))
	if want := "0: <nil>\n1: <nil>\n2: <nil>\n"; got != want {
		t.Errorf("delete errors:\n%swant:\n%s", got, want)
	}
	dump, err := l.Dump()
	want = "link lo device down\naddr 10.96.0.1/32\naddr 10.96.0.3/32\naddr fd00:10:96::1/128\n"
	if err != nil || dump != want {
		t.Errorf("dump: %v\n%s\nwant:\n%s", err, dump, want)
	}
	link, _ := netlink.LinkByName("lo")
	v6, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil || len(v6) != 1 || v6[0].Flags&unix.IFA_F_NODAD == 0 || v6[0].Flags&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("IPv6 addresses %v (err %v), want one with nodad and not tentative", v6, err)
	}

	absent := NewLinux(testLink)
	if got := errText(absent.DeleteAddresses(addrs("10.96.0.1"))); got != "0: <nil>\n" {
		t.Errorf("delete from a missing link: %s", got)
	}
	if got := errText(absent.AddAddresses(addrs("10.96.0.1"))); got != "0: add address 10.96.0.1 on kube-ipvs0: link not found\n" {
		t.Errorf("add to a missing link: %s", got)
	}
}

// TestDumpAddrsReadsAsNetlink: the lean address dump reads every address
// of the namespace as netlink's AddrList does: a prefix shorter than the
// host's, a point-to-point address whose peer differs, IPv6.
func TestDumpAddrsReadsAsNetlink(t *testing.T) {
	netnstest.Enter(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*netlink.Addr{
		{IPNet: mustIPNet("192.0.2.1/24")},
		{IPNet: mustIPNet("198.51.100.1/24"), Peer: mustIPNet("198.51.100.2/24")},
		{IPNet: mustIPNet("fd00:10:96::1/64"), Flags: unix.IFA_F_NODAD},
	} {
		if err := netlink.AddrAdd(lo, a); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	list, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		want = append(want, fmt.Sprintf("%d %s", a.LinkIndex, netip.PrefixFrom(ip.Unmap(), ones)))
	}
	l := NewLinux(testLink).(*linux)
	got, err := l.dumpAddrs(0)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, a := range got {
		have = append(have, fmt.Sprintf("%d %s", a.index, a.prefix))
	}
	if g, w := strings.Join(have, "\n"), strings.Join(want, "\n"); g != w || len(got) != 3 {
		t.Errorf("dumpAddrs:\n%s\nnetlink's AddrList:\n%s", g, w)
	}
	if one, err := l.dumpAddrs(lo.Attrs().Index); err != nil || len(one) != len(got) {
		t.Errorf("dumpAddrs of lo: %v, %v; want all %d (lo holds them all)", one, err, len(got))
	}
	if none, err := l.dumpAddrs(1 << 20); err != nil || len(none) != 0 {
		t.Errorf("dumpAddrs of a missing link: %v, %v; want none", none, err)
	}
}

func mustIPNet(s string) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}
