//go:build linux

package cleanup

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/test/netnstest"
)

// kubeProxySetTypes are the types kube-proxy gives its sets (ipsetInfo in
// pkg/proxy/ipvs/proxier.go), so the kernel takes the testdata's matches.
var kubeProxySetTypes = map[string]string{
	"LOOP-BACK": "hash:ip,port,ip", "CLUSTER-IP": "hash:ip,port", "EXTERNAL-IP": "hash:ip,port",
	"EXTERNAL-IP-LOCAL": "hash:ip,port", "LOAD-BALANCER": "hash:ip,port", "LOAD-BALANCER-FW": "hash:ip,port",
	"LOAD-BALANCER-LOCAL": "hash:ip,port", "LOAD-BALANCER-SOURCE-IP": "hash:ip,port,ip",
	"LOAD-BALANCER-SOURCE-CIDR": "hash:ip,port,net", "NODE-PORT-TCP": "bitmap:port",
	"NODE-PORT-LOCAL-TCP": "bitmap:port", "NODE-PORT-UDP": "bitmap:port", "NODE-PORT-LOCAL-UDP": "bitmap:port",
	"NODE-PORT-SCTP-HASH": "hash:ip,port", "NODE-PORT-LOCAL-SCTP-HASH": "hash:ip,port",
	"HEALTH-CHECK-NODE-PORT": "bitmap:port", "IPVS-IPS": "hash:ip",
}

// createSets makes kube-proxy's sets of both families, and two of others,
// with the ipset binary, so that the netlink code under test is not also
// the code that prepares the test.
func createSets(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("ipset"); err != nil {
		netnstest.Skipf(t, "no ipset binary to prepare the sets with")
	}
	var names []string
	for base, typ := range kubeProxySetTypes {
		for _, six := range []bool{false, true} {
			name, args := "KUBE-"+base, []string{typ}
			if six {
				name = ipv6SetName(name)
			}
			switch {
			case typ == "bitmap:port":
				args = append(args, "range", "0-65535")
			case six:
				args = append(args, "family", "inet6")
			}
			names = append(names, name)
			runOrSkip(t, "ipset", append([]string{"create", name}, args...)...)
		}
	}
	runOrSkip(t, "ipset", "create", "KUBE-MYAPP-ALLOW", "hash:net")
	runOrSkip(t, "ipset", "create", "cali40all-ipam-pools", "hash:net")
	return append(names, "KUBE-MYAPP-ALLOW", "cali40all-ipam-pools")
}

func runOrSkip(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		netnstest.Skipf(t, "%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// restore loads rules into the kernel. A kernel without xt_ipvs cannot take
// the "-m ipvs" rule; it is then left out of both the kernel's and the
// fake's input, and the test says so.
func restore(t *testing.T, binary, rules string) string {
	t.Helper()
	load := func(text string) error {
		cmd := exec.Command(binary + "-restore")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("%s-restore: %v: %s", binary, err, out)
		}
		return err
	}
	if load(rules) == nil {
		return rules
	}
	var kept []string
	for _, l := range strings.Split(rules, "\n") {
		if !strings.Contains(l, "-m ipvs ") {
			kept = append(kept, l)
		}
	}
	rules = strings.Join(kept, "\n")
	if err := load(rules); err != nil {
		netnstest.Skipf(t, "kernel does not take the test rules")
	}
	t.Logf("%s: this kernel has no xt_ipvs; the -m ipvs rule is left out", binary)
	return rules
}

// The same node on the kernel and on the fakes: the dumps before, the
// report lines and the dumps after must be the same text.
func TestLinuxMatchesFake(t *testing.T) {
	netnstest.Enter(t)
	sets := createSets(t)
	var kernel []iptables.Remover
	var fake []*iptables.Fake
	for _, tc := range []struct{ binary, file string }{
		{"iptables-nft", "kube-proxy-ipvs.rules"},
		{"ip6tables-nft", "kube-proxy-ipvs6.rules"},
	} {
		ipt, err := iptables.NewLinuxRemover(tc.binary)
		if err != nil {
			netnstest.Skipf(t, "no %s: %v", tc.binary, err)
		}
		b, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		rules := restore(t, tc.binary, string(b))
		f := loadRules(t, tc.binary, rules)
		diff(t, tc.binary+" loaded, kernel vs fake", kernelSaved(t, tc.binary), saved(f))
		kernel, fake = append(kernel, ipt), append(fake, f)
	}
	fakeSets := fakeSets(sets...)
	fakeSets.InUse = matchesSet(fake...)
	diff(t, "sets created, kernel vs fake", kernelSetNames(t), joinLines(fakeSets.Names()))

	kc := &Cleaner{IPTables: kernel, IPSets: NewLinuxIPSets()}
	fc := &Cleaner{IPTables: []iptables.Remover{fake[0], fake[1]}, IPSets: fakeSets}
	kRemoved, kErrs := kc.Run()
	fRemoved, fErrs := fc.Run()
	diff(t, "removed, kernel vs fake", joinLines(kRemoved), joinLines(fRemoved))
	if len(kErrs)+len(fErrs) != 0 {
		t.Errorf("errors: kernel %v, fake %v", kErrs, fErrs)
	}
	for i := range kernel {
		diff(t, kernel[i].Name()+" left, kernel vs fake", kernelSaved(t, kernel[i].Name()), saved(fake[i]))
	}
	diff(t, "sets left, kernel", kernelSetNames(t), "KUBE-MYAPP-ALLOW\ncali40all-ipam-pools\n")

	if removed, errs := kc.Run(); len(removed)+len(errs) != 0 {
		t.Errorf("second run on the kernel: removed %q, errors %v", removed, errs)
	}
}

// kernelSaved is what binary-save prints of the tables the cleanup looks
// at, read into a fake so that it prints in saved's order and without
// counters.
func kernelSaved(t *testing.T, binary string) string {
	t.Helper()
	out, err := exec.Command(binary + "-save").Output()
	if err != nil {
		t.Fatalf("%s-save: %v", binary, err)
	}
	f := iptables.NewFakeBinary(binary)
	if err := f.Load(string(out)); err != nil {
		t.Fatalf("%s-save: %v", binary, err)
	}
	return saved(f)
}

// kernelSetNames is `ipset list -n`, sorted, one a line.
func kernelSetNames(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ipset", "list", "-n").Output()
	if err != nil {
		t.Fatalf("ipset list -n: %v", err)
	}
	names := strings.Fields(string(out))
	slices.Sort(names)
	return joinLines(names)
}

// The kernel refuses to destroy a set a rule matches on; the netlink
// wrapper must say so in words. A missing set is no error.
func TestLinuxIPSetErrors(t *testing.T) {
	netnstest.Enter(t)
	runOrSkip(t, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port")
	if _, err := exec.LookPath("iptables-nft-restore"); err != nil {
		netnstest.Skipf(t, "no iptables-nft: %v", err)
	}
	restore(t, "iptables-nft", "*filter\n:MINE - [0:0]\n-A MINE -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\nCOMMIT\n")
	s := NewLinuxIPSets()
	isIt := func(name string) bool { return name == "KUBE-CLUSTER-IP" }
	destroyed, errs := s.DestroySets(isIt)
	if len(destroyed) != 0 || len(errs) != 1 || errs[0].Error() != "destroy ipset KUBE-CLUSTER-IP: set is in use by a kernel component" {
		t.Errorf("destroy a set in use: destroyed %q, errors %v", destroyed, errs)
	}
	restore(t, "iptables-nft", "*filter\n:MINE - [0:0]\nCOMMIT\n")
	if destroyed, errs := s.DestroySets(isIt); len(destroyed) != 1 || len(errs) != 0 {
		t.Errorf("destroy a set no longer in use: destroyed %q, errors %v", destroyed, errs)
	}
	if destroyed, errs := s.DestroySets(isIt); len(destroyed)+len(errs) != 0 {
		t.Errorf("destroy a missing set: destroyed %q, errors %v", destroyed, errs)
	}
	if names := kernelSetNames(t); names != "" {
		t.Errorf("sets left: %q", names)
	}
}
