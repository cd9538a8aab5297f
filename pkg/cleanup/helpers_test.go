package cleanup

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
)

// loadRules returns a fake loaded with a testdata file or with text.
func loadRules(t *testing.T, name, rules string) *iptables.Fake {
	t.Helper()
	if file, ok := strings.CutPrefix(rules, "file:"); ok {
		b, err := os.ReadFile("testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		rules = string(b)
	}
	f := iptables.NewFakeBinary(name)
	if err := f.Load(rules); err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return f
}

// saved prints the tables the cleanup looks at, as iptables-save does
// without counters.
func saved(f *iptables.Fake) string { return f.Save(cleanedTables...) }

// failOn makes writes to each "TABLE CHAIN" fail.
func failOn(f *iptables.Fake, chains map[string]error) {
	for k, err := range chains {
		table, chain, _ := strings.Cut(k, " ")
		f.FailOn(table, chain, err)
	}
}

// matchesSet reports whether a rule in fs matches on the ipset name, which
// is what makes the kernel refuse to destroy it.
func matchesSet(fs ...*iptables.Fake) func(name string) bool {
	return func(name string) bool {
		for _, f := range fs {
			if strings.Contains(saved(f), " --match-set "+name+" ") {
				return true
			}
		}
		return false
	}
}

// fakeSets holds sets of other programs' names.
func fakeSets(names ...string) *ipset.Fake {
	s := ipset.NewFake()
	s.AddForeign(names...)
	return s
}

// loadIPVS adds virtual servers given one a line:
// "TCP 10.96.0.1:443 -> 192.168.1.10:6443 10.244.1.2:6443".
func loadIPVS(t *testing.T, f *ipvs.Fake, spec string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(spec), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		vip := netip.MustParseAddrPort(fields[1])
		key := ipvs.ServiceKey{Addr: vip.Addr(), Proto: ipvs.Protocol(fields[0]), Port: vip.Port()}
		if err := f.AddService(ipvs.Service{ServiceKey: key, Scheduler: "rr"}); err != nil {
			t.Fatal(err)
		}
		for _, d := range fields[2:] {
			if d == "->" {
				continue
			}
			ap := netip.MustParseAddrPort(d)
			if err := f.AddDestination(key, ipvs.Destination{Addr: ap.Addr(), Port: ap.Port(), Weight: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ipvsDump is what ipvs.Fake.Dump prints for the given lines of entries
// ("TCP  10.96.0.1:443 rr" and "  -> 10.244.1.5:8080 Masq 1"), so that the
// expected state in a test reads like ipvsadm -Ln.
func ipvsDump(spec string) string {
	var vss []ipvs.VirtualServer
	for _, line := range strings.Split(strings.TrimSpace(spec), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "->":
			ap := netip.MustParseAddrPort(f[1])
			w, _ := strconv.Atoi(f[3])
			vs := &vss[len(vss)-1]
			vs.Destinations = append(vs.Destinations, ipvs.Destination{Addr: ap.Addr(), Port: ap.Port(), Weight: int32(w)})
		default:
			ap := netip.MustParseAddrPort(f[1])
			key := ipvs.ServiceKey{Addr: ap.Addr(), Proto: ipvs.Protocol(f[0]), Port: ap.Port()}
			vss = append(vss, ipvs.VirtualServer{Service: ipvs.Service{ServiceKey: key, Scheduler: f[2]}})
		}
	}
	return ipvs.Format(vss, nil, false)
}

// newLink returns kube-proxy's dummy link holding addrs, on a host whose
// other addresses are host ("eth0 192.168.1.10").
func newLink(t *testing.T, addrs, host []string) *netif.Fake {
	t.Helper()
	l := netif.NewFake("kube-ipvs0")
	if err := l.EnsureLink(); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := l.AddAddress(netip.MustParseAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	var hs []netif.HostAddress
	for _, h := range host {
		link, addr, _ := strings.Cut(h, " ")
		hs = append(hs, netif.HostAddress{Link: link, Addr: netip.MustParseAddr(addr)})
	}
	l.SetHostAddresses(hs)
	return l
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func errStrings(errs []error) string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return joinLines(out)
}

// joinLines prints one item a line.
func joinLines(items []string) string {
	var b strings.Builder
	for _, s := range items {
		b.WriteString(s + "\n")
	}
	return b.String()
}

// diff prints got and want when they differ.
func diff(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n--- got\n%s--- want\n%s", what, got, want)
	}
}
