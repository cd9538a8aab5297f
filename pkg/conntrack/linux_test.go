//go:build linux

package conntrack

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// create puts entries into the kernel's table through ctnetlink, the way
// `conntrack -I` does. The kernel takes a reply tuple that is not the
// inverse of the original, which is what IPVS leaves behind.
func create(t *testing.T, entries []Entry) {
	t.Helper()
	for _, e := range entries {
		family := uint8(unix.AF_INET6)
		if e.Orig.Dst.Addr().Is4() {
			family = unix.AF_INET
		}
		tuple := func(tp Tuple) netlink.IPTuple {
			// AsSlice: 4 bytes for IPv4. The library sends what it is
			// given, and the kernel would read 16-byte IPv4 as 0.0.0.0.
			return netlink.IPTuple{Protocol: protoNumbers[e.Proto],
				SrcIP: tp.Src.Addr().AsSlice(), SrcPort: tp.Src.Port(),
				DstIP: tp.Dst.Addr().AsSlice(), DstPort: tp.Dst.Port()}
		}
		f := &netlink.ConntrackFlow{FamilyType: family, Forward: tuple(e.Orig), Reverse: tuple(e.Reply), TimeOut: 600}
		if err := netlink.ConntrackCreate(netlink.ConntrackTable, netlink.InetFamily(family), f); err != nil {
			t.Fatalf("create %s: %v", e, err)
		}
	}
}

// kernelDump prints both families' tables as netlink reads them.
func kernelDump(t *testing.T) string {
	t.Helper()
	var es []Entry
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, fam)
		if err != nil {
			t.Fatalf("list family %d: %v", fam, err)
		}
		for _, f := range flows {
			es = append(es, entryFrom(f))
		}
	}
	return Format(es)
}

// asNetlinkReadsIt zeroes SCTP ports in a dump, which is how netlink
// (v1.3.1) reads SCTP entries.
func asNetlinkReadsIt(t *testing.T, dump string) string {
	t.Helper()
	es, err := ParseEntries(dump)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if e.Proto == "SCTP" {
			zero := func(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr(), 0) }
			es[i].Orig = Tuple{zero(e.Orig.Src), zero(e.Orig.Dst)}
			es[i].Reply = Tuple{zero(e.Reply.Src), zero(e.Reply.Dst)}
		}
	}
	return Format(es)
}

// toolDump prints the table as `conntrack -L` reads it, which has SCTP
// ports too; ok is false without the binary.
func toolDump(t *testing.T) (dump string, ok bool) {
	t.Helper()
	if _, err := exec.LookPath("conntrack"); err != nil {
		return "", false
	}
	var lines []string
	for _, fam := range []string{"ipv4", "ipv6"} {
		out, err := exec.Command("conntrack", "-L", "-f", fam).Output()
		if err != nil {
			t.Fatalf("conntrack -L -f %s: %v", fam, err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l == "" {
				continue
			}
			// "udp 17 599 src=.. dst=.. sport=.. dport=.. [UNREPLIED] src=.. ... mark=0 use=1"
			fields := strings.Fields(l)
			keep := []string{fields[0]}
			for _, f := range fields[1:] {
				for _, k := range []string{"src=", "dst=", "sport=", "dport="} {
					if strings.HasPrefix(f, k) {
						keep = append(keep, f)
					}
				}
			}
			lines = append(lines, strings.Join(keep, " "))
		}
	}
	es, err := ParseEntries(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return Format(es), true
}

// The fake's scenarios on the kernel's table, each in a fresh namespace:
// the same entries must go, checked against the whole remaining table.
func TestLinuxScenarios(t *testing.T) {
	entries, err := ParseEntries(table)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		netnstest.Enter(t)
		create(t, entries)
		if got, want := kernelDump(t), asNetlinkReadsIt(t, table); got != want {
			t.Fatalf("%s: table as created:\n%s\nwant:\n%s", sc.name, got, want)
		}
		n, err := NewLinux().DeleteFlows(sc.flows)
		if got := errString(err); got != sc.wantErr {
			t.Errorf("%s: error:\n%s\nwant:\n%s", sc.name, got, sc.wantErr)
		}
		if n != sc.wantDeleted {
			t.Errorf("%s: deleted %d, want %d", sc.name, n, sc.wantDeleted)
		}
		if got, want := kernelDump(t), asNetlinkReadsIt(t, sc.wantDump()); got != want {
			t.Errorf("%s: kernel table:\n%s\nwant:\n%s", sc.name, got, want)
		}
		if got, ok := toolDump(t); ok && got != sc.wantDump() {
			t.Errorf("%s: conntrack -L:\n%s\nwant:\n%s", sc.name, got, sc.wantDump())
		}
	}
}
