//go:build linux

package iptables

import (
	"testing"

	"github.com/coreos/go-iptables/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/test/netnstest"
)

func linuxWorld(t *testing.T, fam Family) world {
	t.Helper()
	i, err := NewLinux(fam)
	if err != nil {
		netnstest.Skipf(t, "no %s iptables: %v", fam, err)
	}
	ipt := foreignIPTables(t, fam)
	foreign := func(table, chain string, args ...string) error {
		if !isBuiltin(table, chain) {
			if ok, err := ipt.ChainExists(table, chain); err != nil || !ok {
				if err := ipt.NewChain(table, chain); err != nil {
					return err
				}
			}
		}
		return ipt.Append(table, chain, args...)
	}
	return world{Interface: i, foreign: foreign, raw: i.(*engine).b}
}

// foreignIPTables is another agent's iptables: the iptables command, run
// once per change, beside ipvs-proxy's save and restore.
func foreignIPTables(t *testing.T, fam Family) *iptables.IPTables {
	t.Helper()
	proto := iptables.ProtocolIPv4
	if fam == IPv6 {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.New(iptables.IPFamily(proto), iptables.Timeout(lockWait))
	if err != nil {
		netnstest.Skipf(t, "no %s iptables: %v", fam, err)
	}
	return ipt
}

// dumpAll prints the owned tables whole, as Fake.DumpAll does.
func dumpAll(b backend) (string, error) {
	d := dumpState{}
	for _, table := range ownedTables {
		users, err := b.userChains(table)
		if err != nil {
			return "", err
		}
		for _, c := range append(builtinChains[table], users...) {
			rules, err := b.rules(table, c)
			if err != nil {
				return "", err
			}
			if isBuiltin(table, c) {
				for _, r := range rules {
					d.addBuiltinRule(table, c, r)
				}
			} else {
				d.addChain(table, c, rules)
			}
		}
	}
	return d.format(false), nil
}

// ipvsMatchWorks reports whether the kernel has the ipvs match (xt_ipvs).
func ipvsMatchWorks(t *testing.T, fam Family) bool {
	netnstest.Enter(t)
	w := linuxWorld(t, fam)
	_, err := w.Sync(RuleSet{Family: fam, Chains: []Chain{{Table: "nat", Name: ChainPrefix + "PROBE",
		Rules: [][]string{{"-m", "ipvs", "--vdir", "ORIGINAL", "-j", "RETURN"}}}}})
	return err == nil
}

// The fake's scenarios on the kernel: same writes, same Dump, and the same
// whole tables (foreign rules included) after Sync and after Delete.
func TestLinuxSync(t *testing.T) {
	for _, fam := range []Family{IPv4, IPv6} {
		hasIPVS := ipvsMatchWorks(t, fam)
		for _, sc := range syncCases(fam) {
			if sc.needsIPVS && !hasIPVS {
				t.Logf("%s/%s: skipped, the kernel has no ipvs match", fam, sc.name)
				continue
			}
			netnstest.Enter(t)
			w := linuxWorld(t, fam)
			f, fw := fakeWorld(fam)
			if sc.setup != nil {
				if err := sc.setup(fw); err != nil {
					t.Fatalf("%s/%s: fake setup: %v", fam, sc.name, err)
				}
			}
			fakeWrites, err := syncCase{rs: sc.rs}.run(fw)
			if err != nil {
				t.Fatalf("%s/%s: fake: %v", fam, sc.name, err)
			}
			n, err := sc.run(w)
			if err != nil {
				t.Errorf("%s/%s: %v", fam, sc.name, err)
				continue
			}
			if n != fakeWrites || n != sc.wantWrites {
				t.Errorf("%s/%s: %d writes, fake %d, want %d", fam, sc.name, n, fakeWrites, sc.wantWrites)
			}
			if got, err := dumpAll(w.raw); err != nil || got != f.DumpAll() {
				t.Errorf("%s/%s: kernel tables after sync (err %v):\n%s\nfake:\n%s", fam, sc.name, err, got, f.DumpAll())
			}
			if err := deleteAll(w); err != nil {
				t.Errorf("%s/%s: %v", fam, sc.name, err)
			}
			_ = f.Delete()
			if got, err := dumpAll(w.raw); err != nil || got != f.DumpAll() {
				t.Errorf("%s/%s: kernel tables after delete (err %v):\n%s\nfake:\n%s", fam, sc.name, err, got, f.DumpAll())
			}
		}
	}
}
