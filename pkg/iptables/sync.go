package iptables

import (
	"errors"
	"fmt"
	"slices"
)

// backend is the handful of iptables operations Sync, Delete and Dump are
// built from. The Linux one runs iptables; the fake's keeps tables in
// memory. Sharing everything above this line means the fake's Sync is the
// real Sync.
type backend interface {
	userChains(table string) ([]string, error)
	// rules lists a chain's rules, each as the arguments after "-A CHAIN".
	rules(table, chain string) ([][]string, error)
	newChain(table, chain string) error
	appendRule(table, chain string, args []string) error
	insertRule(table, chain string, pos int, args []string) error
	replaceRule(table, chain string, pos int, args []string) error
	// deleteRuleAt is for owned chains only: positions in a builtin chain
	// can shift under us when another agent inserts a rule.
	deleteRuleAt(table, chain string, pos int) error
	// deleteRule deletes the first rule equal to args; absent is success.
	deleteRule(table, chain string, args []string) error
	flushChain(table, chain string) error
	// deleteChain deletes an empty, unreferenced chain; absent is success.
	deleteChain(table, chain string) error
	// release lets the writes above also remove chains, of table, that
	// are not ipvs-proxy's, and the jumps to them: RemoveChains's, and
	// only until the next release.
	release(table string, chains []string) error
}

// transaction is a backend that batches. Between begin and commit, reads
// come from a snapshot of each table, taken when the table is first
// touched; writes are applied to the snapshot, so that later reads see
// them (removeChains reads builtin chains syncJump wrote to), and queued
// for commit to make all at once.
type transaction interface {
	begin()
	// commit makes the queued writes and ends the transaction, even when
	// it fails.
	commit() error
}

type engine struct {
	fam  Family
	name string // the binary, for Remover's report lines
	b    backend
}

// batched runs f in a transaction if the backend has them. The writes
// queued before f failed are made all the same, as they would be without
// a transaction: one chain that fails does not keep the others from being
// synced.
func (e *engine) batched(f func() error) error {
	tx, ok := e.b.(transaction)
	if !ok {
		return f()
	}
	tx.begin()
	err := f()
	return errors.Join(err, tx.commit())
}

func (e *engine) Sync(rs RuleSet) (int, error) {
	if err := e.validate(rs); err != nil {
		return 0, err
	}
	writes := 0
	err := e.batched(func() (err error) {
		writes, err = e.sync(rs)
		return err
	})
	return writes, err
}

func (e *engine) sync(rs RuleSet) (int, error) {
	existing := map[string][]string{}
	for _, t := range ownedTables {
		names, err := e.b.userChains(t)
		if err != nil {
			return 0, fmt.Errorf("list chains of table %s: %w", t, err)
		}
		existing[t] = names
	}
	writes := 0
	var errs []error
	// One chain that fails does not keep the others from being synced.
	for _, c := range rs.Chains {
		n, err := e.syncChain(c, slices.Contains(existing[c.Table], c.Name))
		writes += n
		if err != nil {
			errs = append(errs, fmt.Errorf("sync chain %s in table %s: %w", c.Name, c.Table, err))
		}
	}
	// Owned chains rs no longer names, e.g. after an upgrade.
	for _, t := range ownedTables {
		var stale []string
		for _, name := range existing[t] {
			if isOwned(name) && !slices.ContainsFunc(rs.Chains, func(c Chain) bool { return c.Table == t && c.Name == name }) {
				stale = append(stale, name)
			}
		}
		n, _, rerrs := e.removeChains(t, stale)
		writes += n
		errs = append(errs, inTable(t, rerrs))
	}
	return writes, errors.Join(errs...)
}

// validate refuses a rule set that would make Sync write outside what
// ipvs-proxy owns.
func (e *engine) validate(rs RuleSet) error {
	if rs.Family != e.fam {
		return fmt.Errorf("rule set for %s given to %s iptables", rs.Family, e.fam)
	}
	for _, c := range rs.Chains {
		switch {
		case !slices.Contains(ownedTables, c.Table):
			return fmt.Errorf("chain %s: table %q is not one ipvs-proxy owns chains in", c.Name, c.Table)
		case !isOwned(c.Name):
			return fmt.Errorf("chain %s in table %s: name lacks the prefix %s", c.Name, c.Table, ChainPrefix)
		case c.JumpFrom != "" && !isBuiltin(c.Table, c.JumpFrom):
			return fmt.Errorf("chain %s in table %s: %s is not a builtin chain", c.Name, c.Table, c.JumpFrom)
		}
	}
	return nil
}

// syncChain fixes rules in place, one position at a time, rather than
// flushing and refilling: a flushed chain would let a new connection
// through without its masquerade rule.
func (e *engine) syncChain(c Chain, exists bool) (int, error) {
	writes := 0
	var cur [][]string
	if exists {
		var err error
		if cur, err = e.b.rules(c.Table, c.Name); err != nil {
			return 0, fmt.Errorf("list rules: %w", err)
		}
	} else {
		if err := e.b.newChain(c.Table, c.Name); err != nil {
			return 0, fmt.Errorf("create chain: %w", err)
		}
		writes++
	}
	// Replacements come before appends, so that -R only ever names a rule
	// that was there before Sync: iptables-nft-restore 1.8.9 crashes
	// replacing a rule added earlier in the same restore.
	for i, want := range c.Rules {
		var err error
		switch {
		case i >= len(cur):
			err = e.b.appendRule(c.Table, c.Name, want)
		case !slices.Equal(cur[i], want):
			err = e.b.replaceRule(c.Table, c.Name, i+1, want)
		default:
			continue
		}
		if err != nil {
			return writes, fmt.Errorf("write rule %d: %w", i+1, err)
		}
		writes++
	}
	for pos := len(cur); pos > len(c.Rules); pos-- {
		if err := e.b.deleteRuleAt(c.Table, c.Name, pos); err != nil {
			return writes, fmt.Errorf("delete rule %d: %w", pos, err)
		}
		writes++
	}
	if c.JumpFrom == "" {
		return writes, nil
	}
	n, err := e.syncJump(c.Table, c.JumpFrom, c.Name)
	return writes + n, err
}

// syncJump leaves exactly one jump from the builtin chain to chain. A
// missing jump is inserted first in the chain; one that exists stays
// where it is, so that two agents that both want to be first do not move
// their rules around on every sync (kube-proxy does the same).
func (e *engine) syncJump(table, from, chain string) (int, error) {
	rules, err := e.b.rules(table, from)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", from, err)
	}
	want := jumpArgs(chain)
	found := false
	var stale [][]string
	for _, r := range rules {
		switch {
		case target(r) != chain:
		case !found && slices.Equal(r, want):
			found = true
		default:
			stale = append(stale, r)
		}
	}
	writes := 0
	if !found {
		if err := e.b.insertRule(table, from, 1, want); err != nil {
			return 0, fmt.Errorf("insert jump from %s: %w", from, err)
		}
		writes++
	}
	for _, r := range stale {
		if err := e.b.deleteRule(table, from, r); err != nil {
			return writes, fmt.Errorf("delete extra jump from %s: %w", from, err)
		}
		writes++
	}
	return writes, nil
}

func (e *engine) Delete() error { return e.batched(e.delete) }

func (e *engine) delete() error {
	var errs []error
	for _, t := range ownedTables {
		names, err := e.b.userChains(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("list chains of table %s: %w", t, err))
			continue
		}
		_, _, rerrs := e.removeChains(t, slices.DeleteFunc(names, func(n string) bool { return !isOwned(n) }))
		errs = append(errs, inTable(t, rerrs))
	}
	return errors.Join(errs...)
}

// removeChains removes the jumps to the chains names from the builtin
// chains, then the chains. All are flushed before any is deleted, in case
// one jumps to another. A jump that cannot be removed leaves every chain
// in place: flushing it would change live traffic and deleting it would
// fail. Past other errors it keeps going, so one stuck chain does not keep
// the rest; a chain that cannot be flushed is not deleted. removed has one
// line per rule or chain deleted, e.g. "delete chain KUBE-SERVICES"; the
// errors do not name the table, which the caller adds.
func (e *engine) removeChains(table string, names []string) (writes int, removed []string, errs []error) {
	if len(names) == 0 {
		return 0, nil, nil
	}
	jumpsLeft := false
	for _, from := range builtinChains[table] {
		rules, err := e.b.rules(table, from)
		if err != nil {
			errs = append(errs, fmt.Errorf("list chain %s: %w", from, err))
			jumpsLeft = true
			continue
		}
		for _, r := range rules {
			if !slices.Contains(names, target(r)) {
				continue
			}
			line := "-A " + from + " " + JoinArgs(r)
			if err := e.b.deleteRule(table, from, r); err != nil {
				errs = append(errs, fmt.Errorf("delete rule %s: %w", line, err))
				jumpsLeft = true
				continue
			}
			writes++
			removed = append(removed, "delete rule "+line)
		}
	}
	if jumpsLeft {
		return writes, removed, append(errs, fmt.Errorf("%d chains left in place because a jump to them could not be removed", len(names)))
	}
	var flushed []string
	for _, n := range names {
		if err := e.b.flushChain(table, n); err != nil {
			errs = append(errs, fmt.Errorf("flush chain %s: %w", n, err))
			continue
		}
		writes++
		flushed = append(flushed, n)
	}
	for _, n := range flushed {
		if err := e.b.deleteChain(table, n); err != nil {
			errs = append(errs, fmt.Errorf("delete chain %s: %w", n, err))
			continue
		}
		writes++
		removed = append(removed, "delete chain "+n)
	}
	return writes, removed, errs
}

// inTable joins errs, each prefixed with the table it happened in.
func inTable(table string, errs []error) error {
	var out []error
	for _, err := range errs {
		out = append(out, fmt.Errorf("table %s: %w", table, err))
	}
	return errors.Join(out...)
}

func (e *engine) Dump() (string, error) {
	var out string
	err := e.batched(func() (err error) {
		out, err = e.dump()
		return err
	})
	return out, err
}

func (e *engine) dump() (string, error) {
	d := dumpState{}
	for _, t := range ownedTables {
		names, err := e.b.userChains(t)
		if err != nil {
			return "", fmt.Errorf("list chains of table %s: %w", t, err)
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !isOwned(n) })
		if len(names) == 0 {
			continue // and so no jumps: iptables refuses a jump to a missing chain
		}
		for _, n := range names {
			rules, err := e.b.rules(t, n)
			if err != nil {
				return "", fmt.Errorf("list chain %s in table %s: %w", n, t, err)
			}
			d.addChain(t, n, rules)
		}
		for _, from := range builtinChains[t] {
			rules, err := e.b.rules(t, from)
			if err != nil {
				return "", fmt.Errorf("list %s in table %s: %w", from, t, err)
			}
			for _, r := range rules {
				if slices.Contains(names, target(r)) {
					d.addBuiltinRule(t, from, r)
				}
			}
		}
	}
	return d.format(true), nil
}
