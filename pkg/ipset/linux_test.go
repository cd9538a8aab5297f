//go:build linux

package ipset

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// enterNewNetns moves the test's goroutine into a new, empty network
// namespace, whose ipsets are its own, and back when the test ends; or
// skips the test. Everything in between must run on this goroutine: no
// t.Run, no t.Parallel. Commands started meanwhile run in the namespace.
func enterNewNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		netnstest.Skipf(t, "needs root to create a network namespace and ipsets")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		netnstest.Skipf(t, "cannot open the current network namespace: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		netnstest.Skipf(t, "cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			// The thread stays locked, so Go ends it with the goroutine.
			t.Errorf("restore the network namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
	if _, _, err := netlink.IpsetProtocol(); err != nil {
		netnstest.Skipf(t, "the kernel answers no ipset requests: %v", err)
	}
}

// captureLog collects what netlink logs (it uses the standard logger), so
// a test can require that ipvs-proxy's calls log nothing.
func captureLog(t *testing.T) *bytes.Buffer {
	var b bytes.Buffer
	prev, flags := log.Writer(), log.Flags()
	log.SetOutput(&b)
	t.Cleanup(func() { log.SetOutput(prev); log.SetFlags(flags) })
	return &b
}

// foreignSets makes sets that are not ipvs-proxy's, with members, through
// netlink directly, and returns a check that they are still there intact.
func foreignSets(t *testing.T) func() {
	t.Helper()
	port := uint16(53)
	proto := uint8(17)
	member := &netlink.IPSetEntry{IP: net.ParseIP("10.96.0.10"), Port: &port, Protocol: &proto}
	for name, typ := range map[string]string{"KUBE-CLUSTER-IP": "hash:ip,port", "my-set": "hash:ip"} {
		if err := netlink.IpsetCreate(name, typ, netlink.IpsetCreateOptions{}); err != nil {
			t.Fatalf("create foreign set %s: %v", name, err)
		}
	}
	if err := netlink.IpsetAdd("KUBE-CLUSTER-IP", member); err != nil {
		t.Fatal(err)
	}
	if err := netlink.IpsetAdd("my-set", &netlink.IPSetEntry{IP: net.ParseIP("192.0.2.1")}); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		for name, want := range map[string]string{"KUBE-CLUSTER-IP": "10.96.0.10", "my-set": "192.0.2.1"} {
			res, err := netlink.IpsetList(name)
			if err != nil || len(res.Entries) != 1 || !res.Entries[0].IP.Equal(net.ParseIP(want)) {
				t.Errorf("foreign set %s changed: %+v (err %v), want one member %s", name, res, err, want)
			}
		}
	}
}

// The same scenarios as the fake's, on the kernel: the dumps and every
// error text must match, and so must `ipset save` where the binary exists.
func TestLinuxMatchesFake(t *testing.T) {
	enterNewNetns(t)
	logged := captureLog(t)
	foreignIntact := foreignSets(t)
	l := NewLinux()
	for _, sc := range scenarios {
		got, gotErrs, err := sc.run(l)
		fake, fakeErrs, ferr := sc.run(NewFake())
		switch {
		case err != nil:
			t.Errorf("%s: kernel: %v", sc.name, err)
		case ferr != nil:
			t.Errorf("%s: fake: %v", sc.name, ferr)
		case got != fake || got != sc.wantDump:
			t.Errorf("%s: kernel dump:\n%s\nfake dump:\n%s", sc.name, got, fake)
		case !slices.Equal(gotErrs, fakeErrs):
			t.Errorf("%s: kernel errors:\n%s\nfake errors:\n%s", sc.name, strings.Join(gotErrs, "\n"), strings.Join(fakeErrs, "\n"))
		}
		if saved, ok := ipsetSave(t); ok && saved != got {
			t.Errorf("%s: ipset save, as a dump:\n%s\nour dump:\n%s", sc.name, saved, got)
		}
		destroyAll(t, l)
	}
	foreignIntact()
	if logged.Len() != 0 {
		t.Errorf("netlink logged:\n%s", logged)
	}
}

// Sets that are not ipvs-proxy's are neither dumped nor destroyed, even
// when named like kube-proxy's.
func TestLinuxLeavesForeignSets(t *testing.T) {
	enterNewNetns(t)
	foreignIntact := foreignSets(t)
	l := NewLinux()
	if err := l.Ensure(keepSet); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"KUBE-CLUSTER-IP", "my-set"} {
		if err := l.Destroy(name); err == nil || !strings.Contains(err.Error(), "is not ipvs-proxy's") {
			t.Errorf("destroy %s: %v, want a refusal", name, err)
		}
	}
	if got, err := l.Dump(); err != nil || got != "set IPVS-PROXY-T-KEEP hash:ip,port family inet\n" {
		t.Errorf("dump: %v\n%s", err, got)
	}
	destroyAll(t, l)
	if got, err := l.Dump(); err != nil || got != "" {
		t.Errorf("dump after destroying ours: %v\n%s", err, got)
	}
	foreignIntact()
}

// A set that an iptables rule matches on cannot be destroyed: ErrInUse,
// as the fake's InUse answers.
func TestLinuxDestroyInUse(t *testing.T) {
	enterNewNetns(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		netnstest.Skipf(t, "no iptables binary to make a rule that uses the set")
	}
	l := NewLinux()
	if err := l.Ensure(keepSet); err != nil {
		t.Fatal(err)
	}
	rule := []string{"-w", "-A", "INPUT", "-m", "set", "--match-set", keep, "dst,dst", "-j", "ACCEPT"}
	if out, err := exec.Command("iptables", rule...).CombinedOutput(); err != nil {
		netnstest.Skipf(t, "cannot add a rule matching on the set: %v: %s", err, out)
	}
	err := l.Destroy(keep)
	if !errors.Is(err, ErrInUse) || err.Error() != "destroy ipset IPVS-PROXY-T-KEEP: set is in use by a kernel component" {
		t.Errorf("destroy of a set in use: %v", err)
	}
	rule[1] = "-D"
	if out, err := exec.Command("iptables", rule...).CombinedOutput(); err != nil {
		t.Fatalf("delete the rule: %v: %s", err, out)
	}
	if err := l.Destroy(keep); err != nil {
		t.Errorf("destroy once unused: %v", err)
	}
}

// A set the ipset binary made (the newest revision, with bucketsize) under
// one of our names is taken as it is, and its members, written in ipset's
// own spelling, read back as the Entries that String spells the same way.
func TestLinuxReadsSetsMadeByIpset(t *testing.T) {
	enterNewNetns(t)
	if _, err := exec.LookPath("ipset"); err != nil {
		netnstest.Skipf(t, "no ipset binary")
	}
	logged := captureLog(t)
	members := []string{"fd00:10:244::2,tcp:8080,fd00:10:244::3", "fd00:10:244::2,sctp:9,fd00:10:244::2"}
	script := "create " + hairpin6 + " hash:ip,port,ip family inet6\n"
	for _, m := range members {
		script += "add " + hairpin6 + " " + m + "\n"
	}
	cmd := exec.Command("ipset", "restore")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ipset restore: %v: %s", err, out)
	}
	l := NewLinux()
	if err := l.Ensure(hairpin6Set); err != nil {
		t.Errorf("ensure over the same kind of set: %v", err)
	}
	err := l.Ensure(Set{Name: hairpin6, Type: HashIPPort, IPv6: true})
	if err == nil || err.Error() != "ensure ipset IPVS-PROXY-T-HAIRPIN6: exists as hash:ip,port,ip family inet6, want hash:ip,port family inet6 (destroy it to change it)" {
		t.Errorf("ensure over another type: %v", err)
	}
	got, err := l.Entries(hairpin6)
	want := []Entry{entry(members[1]), entry(members[0])}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("entries %v (err %v), want %v", got, err, want)
	}
	if err := l.Del(hairpin6, want[0]); err != nil {
		t.Errorf("delete: %v", err)
	}
	saved, _ := ipsetSave(t)
	dump, err := l.Dump()
	if err != nil || dump != saved || dump != "set IPVS-PROXY-T-HAIRPIN6 hash:ip,port,ip family inet6\n  "+members[0]+"\n" {
		t.Errorf("dump: %v\n%s\nipset save as a dump:\n%s", err, dump, saved)
	}
	// Not an error, but noise in the proxy's log: netlink v1.3.1 does not
	// know the bucketsize and initval attributes of newer revisions.
	if logged.Len() > 0 {
		t.Logf("netlink logged, reading a set the ipset binary made:\n%s", logged)
	}
	destroyAll(t, l)
}

// ipsetSave returns `ipset save` in Dump's format, ipvs-proxy's sets only,
// or false if there is no ipset binary.
func ipsetSave(t *testing.T) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("ipset"); err != nil {
		return "", false
	}
	out, err := exec.Command("ipset", "list", "-o", "save").CombinedOutput()
	if err != nil {
		t.Fatalf("ipset list -o save: %v: %s", err, out)
	}
	var sets []Contents
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		switch {
		case len(f) < 3 || checkName(f[1]) != nil:
		case f[0] == "create":
			s := Set{Name: f[1], Type: Type(f[2])}
			if i := slices.Index(f, "family"); i > 0 && i+1 < len(f) {
				s.IPv6 = f[i+1] == "inet6"
			}
			s.SkbInfo = slices.Contains(f, "skbinfo")
			sets = append(sets, Contents{Set: s})
		case f[0] == "add" && len(sets) > 0 && sets[len(sets)-1].Set.Name == f[1]:
			e := entry(f[2])
			if i := slices.Index(f, "skbmark"); i > 0 && i+1 < len(f) {
				// ipset prints the mark alone when the mask is the whole.
				e = entry(f[2] + " skbmark " + f[i+1])
			}
			if sets[len(sets)-1].Set.Type == HashIPPortNet && e.IP2.IsValid() {
				// ipset prints a host net without its length.
				e.Net, e.IP2 = netip.PrefixFrom(e.IP2, e.IP2.BitLen()), netip.Addr{}
			}
			sets[len(sets)-1].Entries = append(sets[len(sets)-1].Entries, e)
		default:
			t.Fatalf("ipset save: unexpected line %q", line)
		}
	}
	return Format(sets), true
}

func destroyAll(t *testing.T, l Interface) {
	t.Helper()
	dump, err := l.Dump()
	if err != nil {
		t.Fatalf("clean up: %v", err)
	}
	for line := range strings.Lines(dump) {
		if name, ok := strings.CutPrefix(line, "set "); ok {
			if err := l.Destroy(strings.Fields(name)[0]); err != nil {
				t.Fatalf("clean up: %v", err)
			}
		}
	}
}

// A set larger than one netlink message reads back whole: the kernel
// splits the member dump, and netlink's IpsetList must join the parts.
func TestLinuxLargeSet(t *testing.T) {
	enterNewNetns(t)
	l, f := NewLinux(), NewFake()
	for _, i := range []Interface{l, f} {
		if err := i.Ensure(hairpin6Set); err != nil {
			t.Fatal(err)
		}
		for n := range 3000 {
			a := netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(n), 14: byte(n >> 8)})
			if err := i.Add(hairpin6, Entry{IP: a, Proto: "tcp", Port: uint16(n), IP2: a}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := l.Entries(hairpin6)
	want, _ := f.Entries(hairpin6)
	if err != nil || len(got) != 3000 || !slices.Equal(got, want) {
		t.Errorf("entries: %d (err %v), want the fake's %d", len(got), err, len(want))
	}
	dump, err := l.Dump()
	if fdump, _ := f.Dump(); err != nil || dump != fdump {
		t.Errorf("dumps differ (err %v): kernel %d bytes, fake %d bytes", err, len(dump), len(fdump))
	}
}

// netlink v1.3.1 asserts that every error is a syscall.Errno; guard turns
// the resulting panic into an error instead of a crashed proxy.
func TestGuard(t *testing.T) {
	var wrapped error = fmt.Errorf("wrapped: %w", syscall.ENOENT)
	err := guard(func() error { _ = wrapped.(syscall.Errno); return nil })
	if err == nil || !strings.HasPrefix(err.Error(), "netlink ipset call failed: interface conversion") {
		t.Errorf("guard: %v, want the panic as an error", err)
	}
	if err := guard(func() error { return syscall.ENOENT }); err != syscall.ENOENT {
		t.Errorf("guard passes errors through: %v", err)
	}
}

// TestLinuxMemberWritesShareOneSocket: Add and Del, the writes of a
// change-by-change sync, use the one batch socket, which the first write
// opens, and never a socket a call. (They once had value receivers, so a
// marked member written before any AddAll opened a socket in a copy of
// the struct, each time, and leaked it.)
func TestLinuxMemberWritesShareOneSocket(t *testing.T) {
	enterNewNetns(t)
	l := NewLinux()
	defer destroyAll(t, l)
	set := Set{Name: "IPVS-PROXY-TEST-MARKS", Type: HashIPPort, SkbInfo: true}
	if err := l.Ensure(set); err != nil {
		t.Fatal(err)
	}
	fds := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	before := fds()
	for i := range 50 {
		e := Entry{IP: netip.AddrFrom4([4]byte{10, 96, 0, byte(i)}), Proto: "tcp", Port: 80, Mark: 0x4000_0000 | uint32(i)}
		if err := l.Add(set.Name, e); err != nil {
			t.Fatal(err)
		}
		if err := l.Del(set.Name, e); err != nil {
			t.Fatal(err)
		}
	}
	if opened := fds() - before; opened > 1 {
		t.Errorf("100 member writes left %d more open files, want at most 1 (the batch socket)", opened)
	}
}
