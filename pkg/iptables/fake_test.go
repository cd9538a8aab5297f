package iptables

import (
	"slices"
	"strings"
	"testing"
)

func fakeWorld(fam Family) (*Fake, world) {
	f := NewFake(fam)
	return f, world{Interface: f, foreign: f.AddForeign, raw: f.mem}
}

func TestFakeSync(t *testing.T) {
	for _, fam := range []Family{IPv4, IPv6} {
		for _, sc := range syncCases(fam) {
			t.Run(string(fam)+"/"+sc.name, func(t *testing.T) {
				f, w := fakeWorld(fam)
				if sc.setup != nil {
					if err := sc.setup(w); err != nil {
						t.Fatal(err)
					}
					sc.setup = nil
				}
				logStart := len(f.Log())
				n, err := sc.run(w)
				if err != nil {
					t.Fatal(err)
				}
				if n != sc.wantWrites {
					t.Errorf("first sync: %d writes, want %d; log:\n%s", n, sc.wantWrites, strings.Join(f.Log()[logStart:], "\n"))
				}
				if sc.wantLog != nil {
					if got := f.Log()[logStart : logStart+n]; !slices.Equal(got, sc.wantLog) {
						t.Errorf("writes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(sc.wantLog, "\n"))
					}
				}
				if got := f.DumpAll(); got != sc.wantAll {
					t.Errorf("all tables after sync:\n%s\nwant:\n%s", got, sc.wantAll)
				}
				if err := deleteAll(w); err != nil {
					t.Fatal(err)
				}
				if got := f.DumpAll(); got != sc.wantAllAfterDelete {
					t.Errorf("all tables after delete:\n%s\nwant:\n%s", got, sc.wantAllAfterDelete)
				}
			})
		}
	}
}

// A rule set that reaches outside what ipvs-proxy owns is refused whole.
func TestSyncRefuses(t *testing.T) {
	ok := portable(IPv4)
	with := func(edit func(*Chain)) RuleSet {
		rs := portable(IPv4)
		edit(&rs.Chains[1])
		return rs
	}
	for _, tc := range []struct {
		name string
		rs   RuleSet
		want string
	}{
		{"other family", portable(IPv6), "rule set for IPv6 given to IPv4 iptables"},
		{"chain without the prefix", with(func(c *Chain) { c.Name = "KUBE-SERVICES" }), "chain KUBE-SERVICES in table filter: name lacks the prefix IPVS-PROXY-"},
		{"table not owned", with(func(c *Chain) { c.Table = "raw" }), `chain IPVS-PROXY-INPUT: table "raw" is not one ipvs-proxy owns chains in`},
		{"jump from a non-builtin chain", with(func(c *Chain) { c.JumpFrom = "KUBE-FORWARD" }), "chain IPVS-PROXY-INPUT in table filter: KUBE-FORWARD is not a builtin chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, w := fakeWorld(IPv4)
			if err := addForeign(w); err != nil {
				t.Fatal(err)
			}
			n, err := f.Sync(tc.rs)
			if err == nil || err.Error() != tc.want || n != 0 {
				t.Errorf("Sync: %d writes, err %v; want 0 and %q", n, err, tc.want)
			}
			if got := f.DumpAll(); got != foreignDump {
				t.Errorf("tables changed:\n%s", got)
			}
			if n, err := f.Sync(ok); err != nil || n != 7 {
				t.Errorf("valid sync after refusal: %d writes, err %v", n, err)
			}
		})
	}
}

// The fake itself refuses writes outside ownership, so that a bug in Sync
// shows up as an error in the fake's tests.
func TestFakeGuardsOwnership(t *testing.T) {
	f, w := fakeWorld(IPv4)
	if err := addForeign(w); err != nil {
		t.Fatal(err)
	}
	m := f.mem
	for name, err := range map[string]error{
		"append to foreign chain": m.appendRule("nat", "KUBE-POSTROUTING", []string{"-j", "RETURN"}),
		"non-jump in builtin":     m.appendRule("nat", "POSTROUTING", []string{"-j", "MASQUERADE"}),
		"delete foreign rule":     m.deleteRule("nat", "POSTROUTING", []string{"-o", "eth9", "-j", "MASQUERADE"}),
		"flush builtin":           m.flushChain("nat", "POSTROUTING"),
		"delete foreign chain":    m.deleteChain("nat", "KUBE-POSTROUTING"),
		"create foreign chain":    m.newChain("nat", "KUBE-NEW"),
		"jump to a missing chain": m.insertRule("nat", "POSTROUTING", 1, jumpArgs("IPVS-PROXY-NONE")),
		"rule in a missing chain": m.appendRule("nat", "IPVS-PROXY-NONE", []string{"-j", "RETURN"}),
		"foreign chain via fake":  f.AddForeign("nat", "IPVS-PROXY-X", "-j", "RETURN"),
		"foreign rule, bad table": f.AddForeign("security", "INPUT", "-j", "RETURN"),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if got := f.DumpAll(); got != foreignDump {
		t.Errorf("tables changed:\n%s", got)
	}
	// Like the kernel: a referenced or non-empty chain cannot be deleted.
	_ = m.newChain("nat", "IPVS-PROXY-A")
	_ = m.appendRule("nat", "IPVS-PROXY-A", []string{"-j", "RETURN"})
	_ = m.insertRule("nat", "POSTROUTING", 1, jumpArgs("IPVS-PROXY-A"))
	if err := m.deleteChain("nat", "IPVS-PROXY-A"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("delete non-empty chain: %v", err)
	}
	_ = m.flushChain("nat", "IPVS-PROXY-A")
	if err := m.deleteChain("nat", "IPVS-PROXY-A"); err == nil || !strings.Contains(err.Error(), "in use by POSTROUTING") {
		t.Errorf("delete referenced chain: %v", err)
	}
}
