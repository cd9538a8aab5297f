package netif

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestFakeScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := NewFake(testLink)
			got, err := sc.run(f)
			if err != nil {
				t.Fatal(err)
			}
			if got != sc.wantDump {
				t.Errorf("dump:\n%s\nwant:\n%s", got, sc.wantDump)
			}
			if !slices.Equal(f.Log, sc.wantLog) || f.Writes != len(sc.wantLog) {
				t.Errorf("writes %d, log:\n%s\nwant:\n%s", f.Writes, strings.Join(f.Log, "\n"), strings.Join(sc.wantLog, "\n"))
			}
		})
	}
}

// One address that the kernel refuses must not keep the others off the link.
func TestFakeFailOnOneAddress(t *testing.T) {
	f := NewFake(testLink)
	boom := errors.New("boom")
	f.FailOn[netip.MustParseAddr("10.96.0.2")] = boom
	if err := f.EnsureLink(); err != nil {
		t.Fatal(err)
	}
	var errs []error
	for _, a := range []string{"10.96.0.1", "10.96.0.2", "10.96.0.3"} {
		if err := f.AddAddress(netip.MustParseAddr(a)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) != 1 || !errors.Is(errs[0], boom) || errs[0].Error() != "add address 10.96.0.2/32 to kube-ipvs0: boom" {
		t.Errorf("errors = %v, want one: add address 10.96.0.2/32 to kube-ipvs0: boom", errs)
	}
	err := f.DeleteAddress(netip.MustParseAddr("10.96.0.2"))
	if !errors.Is(err, boom) || err.Error() != "delete address 10.96.0.2/32 from kube-ipvs0: boom" {
		t.Errorf("delete error = %v", err)
	}
	got, _ := f.Dump()
	want := "link kube-ipvs0 dummy down\naddr 10.96.0.1/32\naddr 10.96.0.3/32\n"
	if got != want {
		t.Errorf("dump:\n%s\nwant:\n%s", got, want)
	}
}

func TestFakeHostAddresses(t *testing.T) {
	f := NewFake(testLink)
	f.SetHostAddresses([]HostAddress{
		{Link: "eth0", Addr: netip.MustParseAddr("fd00::5")},
		{Link: testLink, Addr: netip.MustParseAddr("10.96.0.1")}, // never a host address
		{Link: "eth0", Addr: netip.MustParseAddr("192.168.1.5")},
		{Link: "cni0", Addr: netip.MustParseAddr("10.244.0.1")},
		{Link: "eth0", Addr: netip.MustParseAddr("192.168.1.4")},
	})
	got, err := f.HostAddresses()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, h := range got {
		b.WriteString(h.Link + " " + h.Addr.String() + "\n")
	}
	want := "cni0 10.244.0.1\neth0 192.168.1.4\neth0 192.168.1.5\neth0 fd00::5\n"
	if b.String() != want {
		t.Errorf("host addresses:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestFormat(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name  string
		link  *LinkState
		addrs []netip.Prefix
		want  string
	}{
		{name: "absent", want: "link kube-ipvs0 absent\n"},
		{name: "absent ignores addresses", addrs: []netip.Prefix{p("10.0.0.1/32")}, want: "link kube-ipvs0 absent\n"},
		{name: "empty", link: &LinkState{Type: "dummy"}, want: "link kube-ipvs0 dummy down\n"},
		{
			// What the kernel may hold that ipvs-proxy would not add: the
			// dump shows it as it is, so a comparison with the fake fails.
			name:  "up, foreign prefixes, sorted by address then length",
			link:  &LinkState{Type: "dummy", Up: true},
			addrs: []netip.Prefix{p("fe80::1/64"), p("10.0.0.1/32"), p("10.0.0.1/24"), p("9.0.0.1/32")},
			want:  "link kube-ipvs0 dummy up\naddr 9.0.0.1/32\naddr 10.0.0.1/24\naddr 10.0.0.1/32\naddr fe80::1/64\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Format(testLink, tc.link, tc.addrs); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// Another program's link under the name, of another type: the fake refuses
// it as the kernel test TestLinuxForeignLinkRefused shows the Linux one does.
func TestFakeForeignLinkRefused(t *testing.T) {
	for _, typ := range []string{"veth", "bridge"} {
		f := NewFake(testLink)
		if err := f.EnsureLink(); err != nil {
			t.Fatal(err)
		}
		if err := f.AddAddress(netip.MustParseAddr(foreignLinkAddr)); err != nil {
			t.Fatal(err)
		}
		f.SetLinkType(typ)
		writes := f.Writes
		if err := foreignLink(f, typ); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		if f.Writes != writes {
			t.Errorf("%s: writes %v, want none after the set-up", typ, f.Log)
		}
	}
}
