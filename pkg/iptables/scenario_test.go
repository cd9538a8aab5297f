package iptables

import (
	"fmt"
	"strings"
)

// world is one family's iptables under test: the Interface, a way to add
// another agent's rules, and direct access to the backend to set up drift
// in owned chains that Sync must repair.
type world struct {
	Interface
	foreign func(table, chain string, args ...string) error
	raw     backend
}

// portable is a rule set whose matches every kernel has (the ipvs match
// needs xt_ipvs), in two tables, so the kernel test can run anywhere.
func portable(fam Family) RuleSet {
	src, dst := "10.244.0.0/16", "10.96.0.0/12"
	if fam == IPv6 {
		src, dst = "fd00:10:244::/56", "fd00:10:96::/108"
	}
	return RuleSet{Family: fam, Chains: []Chain{{
		Table: "nat", Name: "IPVS-PROXY-POSTROUTING", JumpFrom: "POSTROUTING", Rules: [][]string{
			{"-m", "comment", "--comment", "ipvs-proxy: local", "-m", "addrtype", "--src-type", "LOCAL", "-j", "MASQUERADE"},
			{"!", "-s", src, "-m", "comment", "--comment", "ipvs-proxy: outside", "-j", "MASQUERADE"},
		},
	}, {
		Table: "filter", Name: "IPVS-PROXY-INPUT", JumpFrom: "INPUT", Rules: [][]string{
			{"-d", dst, "-p", "tcp", "-m", "comment", "--comment", "ipvs-proxy: node ports", "-m", "tcp", "--dport", "30000:32767", "-j", "ACCEPT"},
		},
	}}}
}

// addForeign puts another agent's rules in place: one in each builtin
// chain we jump from, and a chain of its own jumped to from POSTROUTING.
func addForeign(w world) error {
	for _, r := range []Rule{
		{"nat", "POSTROUTING", []string{"-o", "eth9", "-j", "MASQUERADE"}},
		{"nat", "KUBE-POSTROUTING", []string{"-m", "comment", "--comment", "kubernetes postrouting rules", "-j", "RETURN"}},
		{"nat", "POSTROUTING", []string{"-j", "KUBE-POSTROUTING"}},
		{"filter", "INPUT", []string{"-p", "tcp", "-m", "tcp", "--dport", "22", "-j", "ACCEPT"}},
	} {
		if err := w.foreign(r.Table, r.Chain, r.Args...); err != nil {
			return fmt.Errorf("add foreign %s: %w", r, err)
		}
	}
	return nil
}

const foreignDump = `-t filter -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-t nat -N KUBE-POSTROUTING
-t nat -A POSTROUTING -o eth9 -j MASQUERADE
-t nat -A POSTROUTING -j KUBE-POSTROUTING
-t nat -A KUBE-POSTROUTING -m comment --comment "kubernetes postrouting rules" -j RETURN
`

// syncCase: set up, Sync rs and expect wantWrites and a Dump equal to
// rs.String(); a second Sync must write nothing; Delete must leave
// exactly what the setup put there that is not ipvs-proxy's.
type syncCase struct {
	name       string
	rs         RuleSet
	needsIPVS  bool // uses -m ipvs
	setup      func(w world) error
	wantWrites int
	// Fake only: all tables after the first Sync, its writes, and all
	// tables after Delete.
	wantAll, wantAllAfterDelete string
	wantLog                     []string
}

func syncCases(fam Family) []syncCase {
	rs := portable(fam)
	c0, c1 := rs.Chains[0], rs.Chains[1] // nat, filter
	return []syncCase{{
		name:       "empty tables",
		rs:         rs,
		wantWrites: 7, // 2 chains, 3 rules, 2 jumps
		wantAll:    rs.String(),
	}, {
		name:               "Desired rules",
		rs:                 Desired(Config{LocalCIDRs: prefixes("10.244.0.0/16", "fd00:10:244::/56")}, fam),
		needsIPVS:          true,
		wantWrites:         27, // 5 chains, 5+2+1+4+5 rules, 5 jumps
		wantAll:            Desired(Config{LocalCIDRs: prefixes("10.244.0.0/16", "fd00:10:244::/56")}, fam).String(),
		wantAllAfterDelete: "",
	}, {
		name:       "foreign rules and chains are left alone; a missing jump goes first",
		rs:         rs,
		setup:      addForeign,
		wantWrites: 7,
		wantAll: `-t filter -N IPVS-PROXY-INPUT
-t filter -A INPUT -m comment --comment ipvs-proxy -j IPVS-PROXY-INPUT
-t filter -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
` + joinLines(ruleLines("filter", c1)) + `-t nat -N IPVS-PROXY-POSTROUTING
-t nat -N KUBE-POSTROUTING
-t nat -A POSTROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-POSTROUTING
-t nat -A POSTROUTING -o eth9 -j MASQUERADE
-t nat -A POSTROUTING -j KUBE-POSTROUTING
` + joinLines(ruleLines("nat", c0)) + `-t nat -A KUBE-POSTROUTING -m comment --comment "kubernetes postrouting rules" -j RETURN
`,
		wantAllAfterDelete: foreignDump,
	}, {
		name: "drift is repaired in place; an existing jump stays where it is",
		rs:   rs,
		setup: func(w world) error {
			if err := addForeign(w); err != nil {
				return err
			}
			b, t, n := w.raw, c0.Table, c0.Name
			return firstErr(
				b.newChain(t, n),
				b.appendRule(t, n, []string{"-m", "comment", "--comment", "old", "-j", "MASQUERADE"}),
				b.appendRule(t, n, c0.Rules[1]),
				b.appendRule(t, n, []string{"-j", "RETURN"}),
				b.appendRule(t, "POSTROUTING", jumpArgs(n)),
				b.appendRule(t, "POSTROUTING", jumpArgs(n)),
				b.insertRule(t, "POSTROUTING", 1, []string{"-m", "comment", "--comment", "old", "-j", n}),
			)
		},
		// nat: replace rule 1, delete rule 3, delete 2 jumps; filter: 3.
		wantWrites: 7,
		wantLog: []string{
			"-t nat -R IPVS-PROXY-POSTROUTING 1 " + JoinArgs(c0.Rules[0]),
			"-t nat -D IPVS-PROXY-POSTROUTING 3",
			"-t nat -D POSTROUTING -m comment --comment old -j IPVS-PROXY-POSTROUTING",
			"-t nat -D POSTROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-POSTROUTING",
			"-t filter -N IPVS-PROXY-INPUT",
			"-t filter -A IPVS-PROXY-INPUT " + JoinArgs(c1.Rules[0]),
			"-t filter -I INPUT 1 -m comment --comment ipvs-proxy -j IPVS-PROXY-INPUT",
		},
		wantAll: `-t filter -N IPVS-PROXY-INPUT
-t filter -A INPUT -m comment --comment ipvs-proxy -j IPVS-PROXY-INPUT
-t filter -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
` + joinLines(ruleLines("filter", c1)) + `-t nat -N IPVS-PROXY-POSTROUTING
-t nat -N KUBE-POSTROUTING
-t nat -A POSTROUTING -o eth9 -j MASQUERADE
-t nat -A POSTROUTING -j KUBE-POSTROUTING
-t nat -A POSTROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-POSTROUTING
` + joinLines(ruleLines("nat", c0)) + `-t nat -A KUBE-POSTROUTING -m comment --comment "kubernetes postrouting rules" -j RETURN
`,
		wantAllAfterDelete: foreignDump,
	}, {
		name: "a shorter rule set replaces and deletes; an owned chain no longer named goes",
		rs:   RuleSet{Family: fam, Chains: []Chain{{Table: "nat", Name: c0.Name, JumpFrom: "POSTROUTING", Rules: c0.Rules[1:]}}},
		setup: func(w world) error {
			_, err := w.Sync(rs)
			return err
		},
		// rule 1 replaced, rule 2 deleted; filter: jump, flush, delete chain.
		wantWrites: 5,
		wantLog: []string{
			"-t nat -R IPVS-PROXY-POSTROUTING 1 " + JoinArgs(c0.Rules[1]),
			"-t nat -D IPVS-PROXY-POSTROUTING 2",
			"-t filter -D INPUT -m comment --comment ipvs-proxy -j IPVS-PROXY-INPUT",
			"-t filter -F IPVS-PROXY-INPUT",
			"-t filter -X IPVS-PROXY-INPUT",
		},
		wantAll: "-t nat -N IPVS-PROXY-POSTROUTING\n-t nat -A POSTROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-POSTROUTING\n" +
			joinLines(ruleLines("nat", Chain{Name: c0.Name, Rules: c0.Rules[1:]})),
	}, {
		name: "an empty rule set removes everything owned, nothing else",
		rs:   RuleSet{Family: fam},
		setup: func(w world) error {
			_, err := w.Sync(rs)
			return firstErr(err, addForeign(w))
		},
		wantWrites:         6, // per table: delete the jump, flush, delete the chain
		wantAll:            foreignDump,
		wantAllAfterDelete: foreignDump,
	}}
}

func ruleLines(table string, c Chain) []string {
	var out []string
	for _, r := range c.Rules {
		out = append(out, Rule{Table: table, Chain: c.Name, Args: r}.String())
	}
	return out
}

func joinLines(ls []string) string { return strings.Join(ls, "\n") + "\n" }

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// run performs the case on w and returns the first Sync's write count, or
// an error naming the first thing that went wrong.
func (sc syncCase) run(w world) (int, error) {
	if sc.setup != nil {
		if err := sc.setup(w); err != nil {
			return 0, fmt.Errorf("setup: %w", err)
		}
	}
	n, err := w.Sync(sc.rs)
	if err != nil {
		return n, fmt.Errorf("sync: %w", err)
	}
	if got, err := w.Dump(); err != nil || got != sc.rs.String() {
		return n, fmt.Errorf("dump after sync (err %v):\n%s\nwant:\n%s", err, got, sc.rs.String())
	}
	if again, err := w.Sync(sc.rs); err != nil || again != 0 {
		return n, fmt.Errorf("second sync: %d writes, err %v; want 0", again, err)
	}
	return n, nil
}

// deleteAll runs Delete twice (the second finds nothing) and checks Dump.
func deleteAll(w world) error {
	for i := range 2 {
		if err := w.Delete(); err != nil {
			return fmt.Errorf("delete #%d: %w", i+1, err)
		}
	}
	if got, err := w.Dump(); err != nil || got != "" {
		return fmt.Errorf("dump after delete (err %v):\n%s", err, got)
	}
	return nil
}
