package kubeproxy

import (
	"errors"
	"fmt"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
)

// IPTables is one iptables binary (one family, one of nft or legacy) as the
// cleanup needs it: a thin wrapper over go-iptables.
type IPTables interface {
	// Name labels report lines: "iptables", "ip6tables-legacy", ...
	Name() string
	// ListChains names every chain of table, builtin ones first.
	ListChains(table string) ([]string, error)
	// List prints chain as `iptables -S` does: "-P CHAIN POLICY" or
	// "-N CHAIN", then one "-A CHAIN ..." line per rule.
	List(table, chain string) ([]string, error)
	// Delete deletes the rule with these arguments (those after "-A CHAIN").
	Delete(table, chain string, rulespec ...string) error
	// ClearChain flushes chain, creating it if it does not exist.
	ClearChain(table, chain string) error
	DeleteChain(table, chain string) error
}

// ErrNotFound is what IPTables and IPSets return, wrapped, for a rule, chain
// or set that is not there: someone removed it first, which is success.
var ErrNotFound = errors.New("not found")

// cleanIPTables removes kube-proxy's rules and chains from one binary's
// tables: jumps from builtin chains first, then every owned chain is
// flushed (which also drops the jumps between them), then deleted.
func cleanIPTables(ipt IPTables, r *report) {
	for _, table := range cleanedTables {
		where := ipt.Name() + " " + table
		chains, err := ipt.ListChains(table)
		if err != nil {
			r.fail(fmt.Errorf("%s: list chains: %w", where, err))
			continue
		}
		var owned []string
		for _, c := range chains {
			if !isBuiltin(table, c) && isOwnedChain(table, c) {
				owned = append(owned, c)
			}
		}
		if len(owned) == 0 {
			continue
		}
		ok := true
		for _, c := range chains {
			if isBuiltin(table, c) {
				ok = deleteJumps(ipt, table, c, r) && ok
			}
		}
		if !ok {
			// A jump left behind keeps its target in use: flushing it would
			// change live traffic and deleting it would fail. Leave the
			// table's chains whole; a later run can finish.
			r.fail(fmt.Errorf("%s: %d kube-proxy chains left in place because a jump to them could not be removed", where, len(owned)))
			continue
		}
		var flushed []string
		for _, c := range owned {
			if err := ipt.ClearChain(table, c); err != nil {
				r.fail(fmt.Errorf("%s: flush chain %s: %w", where, c, err))
				continue
			}
			flushed = append(flushed, c)
		}
		for _, c := range flushed {
			err := ipt.DeleteChain(table, c)
			switch {
			case err == nil:
				r.did("%s: delete chain %s", where, c)
			case !errors.Is(err, ErrNotFound):
				r.fail(fmt.Errorf("%s: delete chain %s (a rule of another program may still jump to it): %w", where, c, err))
			}
		}
	}
}

// deleteJumps deletes the rules of a builtin chain that jump to an owned
// chain, and reports whether all of them are gone.
func deleteJumps(ipt IPTables, table, chain string, r *report) bool {
	where := ipt.Name() + " " + table
	lines, err := ipt.List(table, chain)
	if err != nil {
		r.fail(fmt.Errorf("%s: list chain %s: %w", where, chain, err))
		return false
	}
	ok := true
	for _, line := range lines {
		args, isRule, err := parseRule(chain, line)
		if err != nil {
			r.fail(fmt.Errorf("%s: %w", where, err))
			ok = false
			continue
		}
		if !isRule || !isOwnedChain(table, jumpTarget(args)) {
			continue
		}
		err = ipt.Delete(table, chain, args...)
		switch {
		case err == nil:
			r.did("%s: delete rule -A %s %s", where, chain, formatArgs(args))
		case !errors.Is(err, ErrNotFound):
			r.fail(fmt.Errorf("%s: delete rule -A %s %s: %w", where, chain, formatArgs(args), err))
			ok = false
		}
	}
	return ok
}

// parseRule splits an `iptables -S` line of chain. isRule is false for the
// "-P" or "-N" line.
func parseRule(chain, line string) (args []string, isRule bool, err error) {
	fields, err := splitArgs(line)
	if err != nil {
		return nil, false, fmt.Errorf("read rule %q: %w", line, err)
	}
	if len(fields) < 2 || fields[0] != "-A" {
		return nil, false, nil
	}
	if fields[1] != chain {
		return nil, false, fmt.Errorf("read rule %q: it is not in chain %s", line, chain)
	}
	args = fields[2:]
	// Some iptables-nft versions print counters; go-iptables turns them
	// into a trailing "-c PKTS BYTES", which is no part of the rule.
	if n := len(args); n >= 3 && args[n-3] == "-c" {
		args = args[:n-3]
	}
	return args, true, nil
}

// jumpTarget returns the chain or target a rule jumps or goes to, or "".
func jumpTarget(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-j", "--jump", "-g", "--goto":
			return args[i+1]
		}
	}
	return ""
}

// iptables -S spelling, shared with pkg/iptables: both read the same tool.
var (
	splitArgs  = iptables.SplitArgs
	formatArgs = iptables.JoinArgs
)
