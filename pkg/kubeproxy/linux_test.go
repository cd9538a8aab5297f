//go:build linux

package kubeproxy

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

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
		t.Skip("no ipset binary to prepare the sets with")
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
		t.Skipf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
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
		t.Skipf("kernel does not take the test rules")
	}
	t.Logf("%s: this kernel has no xt_ipvs; the -m ipvs rule is left out", binary)
	return rules
}

// The same node on the kernel and on the fakes: the dumps before, the
// report lines and the dumps after must be the same text.
func TestLinuxMatchesFake(t *testing.T) {
	netnstest.Enter(t)
	sets := createSets(t)
	var kernel, fake []IPTables
	for _, tc := range []struct{ binary, file string }{
		{"iptables-nft", "kube-proxy-ipvs.rules"},
		{"ip6tables-nft", "kube-proxy-ipvs6.rules"},
	} {
		ipt, err := NewLinuxIPTables(tc.binary)
		if err != nil {
			t.Skipf("no %s: %v", tc.binary, err)
		}
		b, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		rules := restore(t, tc.binary, string(b))
		f := loadRules(t, tc.binary, rules)
		kd, err := DumpIPTables(ipt, cleanedTables...)
		if err != nil {
			t.Fatal(err)
		}
		diff(t, tc.binary+" loaded, kernel vs fake", kd, f.Dump())
		kernel, fake = append(kernel, ipt), append(fake, f)
	}
	fakeSets := NewFakeIPSets(sets...)
	fakeSets.InUse = func(name string) bool {
		return fake[0].(*FakeIPTables).MatchesSet(name) || fake[1].(*FakeIPTables).MatchesSet(name)
	}
	kernelSets := NewLinuxIPSets()
	ks, err := kernelSets.List()
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "sets created, kernel vs fake", joinLines(ks), fakeSets.Dump())

	kc := &Cleaner{IPTables: kernel, IPSets: kernelSets}
	fc := &Cleaner{IPTables: fake, IPSets: fakeSets}
	kRemoved, kErrs := kc.Run()
	fRemoved, fErrs := fc.Run()
	diff(t, "removed, kernel vs fake", joinLines(kRemoved), joinLines(fRemoved))
	if len(kErrs)+len(fErrs) != 0 {
		t.Errorf("errors: kernel %v, fake %v", kErrs, fErrs)
	}
	for i := range kernel {
		kd, err := DumpIPTables(kernel[i], cleanedTables...)
		if err != nil {
			t.Fatal(err)
		}
		diff(t, kernel[i].Name()+" left, kernel vs fake", kd, fake[i].(*FakeIPTables).Dump())
	}
	ks, err = kernelSets.List()
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "sets left, kernel", joinLines(ks), "KUBE-MYAPP-ALLOW\ncali40all-ipam-pools\n")

	if removed, errs := kc.Run(); len(removed)+len(errs) != 0 {
		t.Errorf("second run on the kernel: removed %q, errors %v", removed, errs)
	}
}

// The kernel refuses to destroy a set a rule matches on; the netlink
// wrapper must say so in words. A missing set is no error.
func TestLinuxIPSetErrors(t *testing.T) {
	netnstest.Enter(t)
	runOrSkip(t, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port")
	ipt, err := NewLinuxIPTables("iptables-nft")
	if err != nil {
		t.Skipf("no iptables-nft: %v", err)
	}
	restore(t, "iptables-nft", "*filter\n:MINE - [0:0]\n-A MINE -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\nCOMMIT\n")
	s := NewLinuxIPSets()
	err = s.Destroy("KUBE-CLUSTER-IP")
	if err == nil || err.Error() != "destroy ipset KUBE-CLUSTER-IP: set is in use by a kernel component" {
		t.Errorf("destroy a set in use: %v", err)
	}
	if err := ipt.ClearChain("filter", "MINE"); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy("KUBE-CLUSTER-IP"); err != nil {
		t.Errorf("destroy a set no longer in use: %v", err)
	}
	if err := s.Destroy("KUBE-CLUSTER-IP"); err != nil && !errors.Is(err, ErrNotFound) {
		t.Errorf("destroy a missing set: %v", err)
	}
	if names, err := s.List(); err != nil || len(names) != 0 {
		t.Errorf("sets left: %q, %v", names, err)
	}
}
