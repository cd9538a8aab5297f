package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/vishvananda/netlink"
)

// e2eSetPrefix names this test's sets. Only they are compared: a proxy
// that another test started may own other IPVS-PROXY-* sets.
const e2eSetPrefix = ipset.Prefix + "E2E-"

// TestGuestIPSetMatchesFake makes the same calls on the kernel's ipsets
// (netlink, the VM's root namespace) and on the fake, and requires the
// same error text from each call and the same dump after each; at the end
// the dump must also equal `ipset save`'s, and a set that is not
// ipvs-proxy's must be untouched.
func TestGuestIPSetMatchesFake(t *testing.T) {
	guest(t)
	hp := ipset.Set{Name: e2eSetPrefix + "HAIRPIN", Type: ipset.HashIPPortIP}
	hp6 := ipset.Set{Name: e2eSetPrefix + "HAIRPIN6", Type: ipset.HashIPPortIP, IPv6: true}
	ks := ipset.Set{Name: e2eSetPrefix + "KEEP", Type: ipset.HashIPPort}
	ks6 := ipset.Set{Name: e2eSetPrefix + "KEEP6", Type: ipset.HashIPPort, IPv6: true}
	const foreign = "E2E-FOREIGN"
	kernel, fake := ipset.NewLinux(), ipset.NewFake()
	clean := func() {
		for _, s := range []ipset.Set{hp, hp6, ks, ks6} {
			if err := kernel.Destroy(s.Name); err != nil {
				t.Errorf("clean up: %v", err)
			}
		}
		_ = netlink.IpsetDestroy(foreign)
	}
	clean() // a previous run's, if it was killed
	t.Cleanup(clean)

	port, udp := uint16(53), uint8(17)
	foreignMember := &netlink.IPSetEntry{IP: net.ParseIP("10.96.0.10"), Port: &port, Protocol: &udp}
	if err := netlink.IpsetCreate(foreign, "hash:ip,port", netlink.IpsetCreateOptions{}); err != nil {
		t.Fatalf("create foreign set: %v", err)
	}
	if err := netlink.IpsetAdd(foreign, foreignMember); err != nil {
		t.Fatalf("fill foreign set: %v", err)
	}

	ensure := func(s ipset.Set) func(ipset.Interface) error {
		return func(i ipset.Interface) error { return i.Ensure(s) }
	}
	add := func(s ipset.Set, e string) func(ipset.Interface) error {
		return func(i ipset.Interface) error { return i.Add(s.Name, parseSetEntry(e)) }
	}
	del := func(s ipset.Set, e string) func(ipset.Interface) error {
		return func(i ipset.Interface) error { return i.Del(s.Name, parseSetEntry(e)) }
	}
	destroy := func(name string) func(ipset.Interface) error {
		return func(i ipset.Interface) error { return i.Destroy(name) }
	}
	missing := ipset.Set{Name: e2eSetPrefix + "MISSING", Type: ipset.HashIPPort}
	for n, st := range []struct {
		do      func(ipset.Interface) error
		wantErr bool
	}{
		{do: ensure(hp)}, {do: ensure(hp6)}, {do: ensure(ks)}, {do: ensure(ks6)}, {do: ensure(hp)},
		{do: add(hp, "10.244.0.2,tcp:8080,10.244.0.2")},
		{do: add(hp, "10.244.0.2,tcp:8080,10.244.0.2")}, // already present
		{do: add(hp, "10.244.0.2,udp:53,10.244.0.2")},
		{do: add(hp, "10.244.0.10,sctp:9,10.244.0.11")},
		{do: add(hp6, "fd00:10:244::2,tcp:8080,fd00:10:244::2")},
		{do: add(ks, "10.244.0.3,tcp:80")},
		{do: add(ks, "10.244.0.3,udp:80")},
		{do: add(ks6, "fd00:10:244::3,udp:53")},
		{do: del(ks, "10.244.0.3,tcp:80")},
		{do: del(ks, "10.244.0.3,tcp:80")},                                   // absent
		{do: del(hp6, "fd00:10:244::9,tcp:1,fd00:10:244::9")},                // never there
		{do: del(missing, "10.244.0.3,tcp:80")},                              // no such set
		{do: add(hp, "fd00:10:244::2,tcp:80,fd00:10:244::2"), wantErr: true}, // other family
		{do: add(hp, "10.244.0.2,tcp:80"), wantErr: true},                    // other shape
		{do: add(ks6, "fd00:10:244::2,tcp:80,fd00:10:244::2"), wantErr: true},
		{do: add(missing, "10.244.0.3,tcp:80"), wantErr: true},
		{do: add(hp, "10.244.0.2,icmp:0,10.244.0.2"), wantErr: true},
		{do: ensure(ipset.Set{Name: hp.Name, Type: ipset.HashIPPort}), wantErr: true},
		{do: ensure(ipset.Set{Name: ks.Name, Type: ipset.HashIPPort, IPv6: true}), wantErr: true},
		{do: destroy(foreign), wantErr: true},
		{do: destroy(ks6.Name)}, {do: destroy(ks6.Name)},
	} {
		errKernel, errFake := st.do(kernel), st.do(fake)
		if fmt.Sprint(errKernel) != fmt.Sprint(errFake) || (errKernel != nil) != st.wantErr {
			t.Errorf("step %d: kernel error %v, fake error %v; want an error: %t", n, errKernel, errFake, st.wantErr)
		}
		compare(t, fmt.Sprintf("ipset dump after step %d", n), e2eSets(t, kernel), e2eSets(t, fake))
	}

	want := `set IPVS-PROXY-E2E-HAIRPIN hash:ip,port,ip family inet
  10.244.0.2,tcp:8080,10.244.0.2
  10.244.0.2,udp:53,10.244.0.2
  10.244.0.10,sctp:9,10.244.0.11
set IPVS-PROXY-E2E-HAIRPIN6 hash:ip,port,ip family inet6
  fd00:10:244::2,tcp:8080,fd00:10:244::2
set IPVS-PROXY-E2E-KEEP hash:ip,port family inet
  10.244.0.3,udp:80
`
	compare(t, "ipset dump", e2eSets(t, kernel), want)
	if _, err := exec.LookPath("ipset"); err == nil {
		compare(t, "ipset save", ipsetSaveDump(t), want)
	} else {
		t.Log("no ipset binary: not compared with ipset save")
	}
	for _, s := range []ipset.Set{hp, hp6, ks} {
		got, err := kernel.Entries(s.Name)
		wantEntries, _ := fake.Entries(s.Name)
		if err != nil || !slices.Equal(got, wantEntries) {
			t.Errorf("entries of %s: %v (err %v), want %v", s.Name, got, err, wantEntries)
		}
	}
	// The sets ipvs-proxy creates hold up to 2^20 members, not the
	// kernel's default 65,536, which the shared sets of a large cluster
	// reach (the foreign set, made with no limit given, has the default).
	for name, want := range map[string]uint32{hp.Name: 1 << 20, hp6.Name: 1 << 20, ks.Name: 1 << 20, foreign: 65536} {
		res, err := netlink.IpsetList(name)
		if err != nil {
			t.Errorf("list %s: %v", name, err)
		} else if res.MaxElements != want {
			t.Errorf("maxelem of %s: %d, want %d", name, res.MaxElements, want)
		}
	}
	res, err := netlink.IpsetList(foreign)
	if err != nil || len(res.Entries) != 1 || !res.Entries[0].IP.Equal(foreignMember.IP) {
		t.Errorf("foreign set %s changed: %+v (err %v)", foreign, res, err)
	}
	if d, err := kernel.Dump(); err != nil || strings.Contains(d, foreign) {
		t.Errorf("dump shows the foreign set, or fails (%v):\n%s", err, d)
	}
}

// e2eSets is i's dump, this test's sets only.
func e2eSets(t *testing.T, i ipset.Interface) string {
	t.Helper()
	d, err := i.Dump()
	if err != nil {
		t.Fatalf("ipset dump: %v", err)
	}
	var b strings.Builder
	keep := false
	for line := range strings.Lines(d) {
		if rest, ok := strings.CutPrefix(line, "set "); ok {
			keep = strings.HasPrefix(rest, e2eSetPrefix)
		}
		if keep {
			b.WriteString(line)
		}
	}
	return b.String()
}

// ipsetSaveDump is `ipset save` in ipset.Format's text, this test's sets only.
func ipsetSaveDump(t *testing.T) string {
	t.Helper()
	var sets []ipset.Contents
	for line := range strings.Lines(run(t, "ipset save", "ipset", "list", "-o", "save")) {
		f := strings.Fields(line)
		switch {
		case len(f) < 3 || !strings.HasPrefix(f[1], e2eSetPrefix):
		case f[0] == "create":
			s := ipset.Set{Name: f[1], Type: ipset.Type(f[2])}
			if i := slices.Index(f, "family"); i > 0 && i+1 < len(f) {
				s.IPv6 = f[i+1] == "inet6"
			}
			sets = append(sets, ipset.Contents{Set: s})
		case f[0] == "add" && len(sets) > 0 && sets[len(sets)-1].Set.Name == f[1]:
			sets[len(sets)-1].Entries = append(sets[len(sets)-1].Entries, parseSetEntry(f[2]))
		default:
			t.Fatalf("ipset save: unexpected line %q", line)
		}
	}
	return ipset.Format(sets)
}

// parseSetEntry reads ipset's spelling "ip,proto:port[,ip2]", the inverse
// of ipset.Entry.String; parts that do not parse stay zero.
func parseSetEntry(s string) ipset.Entry {
	parts := strings.Split(s, ",")
	var e ipset.Entry
	e.IP, _ = netip.ParseAddr(parts[0])
	if len(parts) > 1 {
		proto, port, _ := strings.Cut(parts[1], ":")
		n, _ := strconv.ParseUint(port, 10, 16)
		e.Proto, e.Port = proto, uint16(n)
	}
	if len(parts) > 2 {
		e.IP2, _ = netip.ParseAddr(parts[2])
	}
	return e
}
