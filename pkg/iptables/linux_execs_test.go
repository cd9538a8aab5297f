//go:build linux

package iptables

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/netnstest"
)

// execLog records a Linux backend's execs, each as its command line, and
// the input given to each iptables-restore.
type execLog struct {
	cmds, inputs []string
}

func logExecs(i Interface) *execLog {
	l := i.(*engine).b.(*linux)
	x := &execLog{}
	next := l.run
	l.run = func(stdin, name string, args ...string) (string, error) {
		x.cmds = append(x.cmds, strings.Join(append([]string{name}, args...), " "))
		if name == l.restore {
			x.inputs = append(x.inputs, stdin)
		}
		return next(stdin, name, args...)
	}
	return x
}

// check compares the execs since the last check with want and inputs.
func (x *execLog) check(t *testing.T, step string, want, inputs []string) {
	t.Helper()
	if !slices.Equal(x.cmds, want) {
		t.Errorf("%s: execs:\n%s\nwant:\n%s", step, strings.Join(x.cmds, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Equal(x.inputs, inputs) {
		t.Errorf("%s: restore input:\n%s\nwant:\n%s", step, strings.Join(x.inputs, "----\n"), strings.Join(inputs, "----\n"))
	}
	x.cmds, x.inputs = nil, nil
}

// createSets makes the sets Desired's rules name: the kernel refuses a
// rule naming a set that does not exist.
func createSets(t *testing.T, fam Family) {
	t.Helper()
	if _, err := exec.LookPath("ipset"); err != nil {
		netnstest.Skipf(t, "needs the ipset command")
	}
	inet := map[Family]string{IPv4: "inet", IPv6: "inet6"}[fam]
	for name, typ := range map[string]string{
		HairpinSet(fam):          "hash:ip,port,ip",
		KeepSourceSet(fam):       "hash:ip,port",
		VIPSet(fam):              "hash:ip",
		ServicePortsSet(fam):     "hash:ip,port",
		NoLocalEndpointsSet(fam): "hash:ip,port",
		FirewallSet(fam):         "hash:ip,port",
		ExternalVIPSet(fam):      "hash:ip",
		SourceRangesSet(fam):     "hash:ip,port,net",
		ShortCircuitSet(fam):     "hash:ip,port skbinfo",
	} {
		args := append([]string{"create", name}, strings.Fields(typ)...)
		if out, err := exec.Command("ipset", append(args, "family", inet)...).CombinedOutput(); err != nil {
			t.Fatalf("ipset create %s: %v: %s", name, err, out)
		}
	}
}

// withoutIPVSMatch drops -m ipvs from the rules, for a kernel without it.
func withoutIPVSMatch(rs RuleSet) RuleSet {
	for i, c := range rs.Chains {
		rules := make([][]string, len(c.Rules))
		for j, r := range c.Rules {
			for k := range r {
				if slices.Equal(r[k:min(k+len(ipvsMasq), len(r))], ipvsMasq) {
					r = slices.Concat(r[:k], r[k+len(ipvsMasq):])
					break
				}
			}
			rules[j] = r
		}
		rs.Chains[i].Rules = rules
	}
	return rs
}

// Sync costs one iptables-save per table, plus one iptables-restore
// carrying all its writes when there are any.
func TestLinuxSyncExecs(t *testing.T) {
	for _, fam := range []Family{IPv4, IPv6} {
		hasIPVS := ipvsMatchWorks(t, fam)
		netnstest.Enter(t)
		createSets(t, fam)
		w := linuxWorld(t, fam)
		x := logExecs(w.Interface)
		rs := Desired(Config{LocalCIDRs: prefixes("10.244.0.0/16", "fd00:10:244::/56")}, fam)
		if !hasIPVS {
			t.Logf("%s: the kernel has no ipvs match; syncing Desired without it", fam)
			rs = withoutIPVSMatch(rs)
		}
		bin := map[Family]string{IPv4: "iptables", IPv6: "ip6tables"}[fam]
		saves := []string{bin + "-save -t filter", bin + "-save -t mangle", bin + "-save -t nat"}
		restore := bin + "-restore -w 10 --noflush"
		dump := func(step string) {
			t.Helper()
			if got, err := w.Dump(); err != nil || got != rs.String() {
				t.Errorf("%s %s: dump (err %v):\n%s\nwant:\n%s", fam, step, err, got, rs.String())
			}
			x.check(t, string(fam)+" "+step+": dump", saves, nil)
		}

		// Cold: the fake's writes, in one restore.
		f := NewFake(fam)
		fakeWrites, err := f.Sync(rs)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := w.Sync(rs); err != nil || n != fakeWrites || n != 27 {
			t.Errorf("%s cold sync: %d writes, err %v; want 27, as the fake's %d", fam, n, err, fakeWrites)
		}
		x.check(t, string(fam)+" cold sync", append(saves, restore), []string{restoreInput(f.mem.log)})
		dump("after cold sync")

		if n, err := w.Sync(rs); err != nil || n != 0 {
			t.Errorf("%s second sync: %d writes, err %v; want 0", fam, n, err)
		}
		x.check(t, string(fam)+" second sync", saves, nil)

		// Another agent rewrites our first masquerade rule and deletes
		// our jump from filter INPUT: both repairs go in one restore.
		ipt := foreignIPTables(t, fam)
		if err := firstErr(
			ipt.Replace("nat", PostroutingChain, 1, "-j", "RETURN"),
			ipt.Delete("filter", "INPUT", jumpArgs(FilterChain)...),
		); err != nil {
			t.Fatal(err)
		}
		if n, err := w.Sync(rs); err != nil || n != 2 {
			t.Errorf("%s sync after drift: %d writes, err %v; want 2", fam, n, err)
		}
		x.check(t, string(fam)+" sync after drift", append(saves, restore), []string{
			"*filter\n-I INPUT 1 -m comment --comment ipvs-proxy -j IPVS-PROXY-FILTER\nCOMMIT\n" +
				"*nat\n-R IPVS-PROXY-POSTROUTING 1 " + JoinArgs(chainNamed(rs, "nat", PostroutingChain).Rules[0]) + "\nCOMMIT\n",
		})
		dump("after drift")

		if err := w.Delete(); err != nil {
			t.Errorf("%s delete: %v", fam, err)
		}
		x.check(t, string(fam)+" delete", append(saves, restore), []string{`*filter
-D INPUT -m comment --comment ipvs-proxy -j IPVS-PROXY-FILTER
-F IPVS-PROXY-FILTER
-X IPVS-PROXY-FILTER
COMMIT
*mangle
-D PREROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-SHORT-CIRCUIT
-D OUTPUT -m comment --comment ipvs-proxy -j IPVS-PROXY-OUTPUT
-F IPVS-PROXY-OUTPUT
-F IPVS-PROXY-SHORT-CIRCUIT
-X IPVS-PROXY-OUTPUT
-X IPVS-PROXY-SHORT-CIRCUIT
COMMIT
*nat
-D PREROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-PREROUTING
-D POSTROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-POSTROUTING
-F IPVS-PROXY-POSTROUTING
-F IPVS-PROXY-PREROUTING
-X IPVS-PROXY-POSTROUTING
-X IPVS-PROXY-PREROUTING
COMMIT
`})
		if got, err := w.Dump(); err != nil || got != "" {
			t.Errorf("%s dump after delete (err %v):\n%s", fam, err, got)
		}
	}
}

func chainNamed(rs RuleSet, table, name string) Chain {
	for _, c := range rs.Chains {
		if c.Table == table && c.Name == name {
			return c
		}
	}
	panic("no chain " + table + " " + name)
}
