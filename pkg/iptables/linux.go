//go:build linux

package iptables

import (
	"errors"
	"fmt"
	"slices"

	"github.com/coreos/go-iptables/iptables"
)

// lockWait bounds, in seconds, the wait for the xtables lock, so that a
// stuck iptables elsewhere delays a sync instead of hanging it.
const lockWait = 10

// NewLinux returns the Interface for one family over the iptables (or
// ip6tables) binary, in whichever mode (nft or legacy) the host uses.
func NewLinux(fam Family) (Interface, error) {
	var proto iptables.Protocol
	switch fam {
	case IPv4:
		proto = iptables.ProtocolIPv4
	case IPv6:
		proto = iptables.ProtocolIPv6
	default:
		return nil, fmt.Errorf("unknown iptables family %q", fam)
	}
	ipt, err := iptables.New(iptables.IPFamily(proto), iptables.Timeout(lockWait))
	if err != nil {
		return nil, fmt.Errorf("set up %s iptables: %w", fam, err)
	}
	return &engine{fam: fam, b: &linux{ipt: ipt}}, nil
}

type linux struct {
	ipt *iptables.IPTables
}

func (l *linux) userChains(table string) ([]string, error) {
	names, err := l.ipt.ListChains(table)
	if err != nil {
		return nil, err
	}
	// ListChains also names the builtin chains (from the -P lines).
	return slices.DeleteFunc(names, func(n string) bool { return isBuiltin(table, n) }), nil
}

// rules reads `iptables -t table -S chain`. Arguments are compared after
// undoing the quoting, so `--comment "a b"` reads back as ["--comment",
// "a b"]; any other rewriting by iptables must already be in the form
// Desired writes (see rules.go), or Sync would rewrite the rule each time.
func (l *linux) rules(table, chain string) ([][]string, error) {
	lines, err := l.ipt.List(table, chain)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, line := range lines {
		args, err := SplitArgs(line)
		if err != nil {
			return nil, err
		}
		switch {
		case len(args) >= 2 && (args[0] == "-P" || args[0] == "-N"):
		case len(args) >= 2 && args[0] == "-A" && args[1] == chain:
			out = append(out, args[2:])
		default:
			return nil, fmt.Errorf("unexpected line in iptables -S %s: %q", chain, line)
		}
	}
	return out, nil
}

func (l *linux) newChain(table, chain string) error { return l.ipt.NewChain(table, chain) }

func (l *linux) appendRule(table, chain string, args []string) error {
	return l.ipt.Append(table, chain, args...)
}

func (l *linux) insertRule(table, chain string, pos int, args []string) error {
	return l.ipt.Insert(table, chain, pos, args...)
}

func (l *linux) replaceRule(table, chain string, pos int, args []string) error {
	return l.ipt.Replace(table, chain, pos, args...)
}

func (l *linux) deleteRuleAt(table, chain string, pos int) error {
	return l.ipt.DeleteById(table, chain, pos)
}

func (l *linux) deleteRule(table, chain string, args []string) error {
	return ignoreNotExist(l.ipt.Delete(table, chain, args...))
}

// flushChain runs -F through ClearChain, which would create a missing
// chain; removeChains deletes it right after, so that does no harm.
func (l *linux) flushChain(table, chain string) error { return l.ipt.ClearChain(table, chain) }

func (l *linux) deleteChain(table, chain string) error {
	return ignoreNotExist(l.ipt.DeleteChain(table, chain))
}

// ignoreNotExist turns "no such rule or chain" into success: another
// actor (an admin, a second cleanup) got there first.
func ignoreNotExist(err error) error {
	var e *iptables.Error
	if errors.As(err, &e) && e.IsNotExist() {
		return nil
	}
	return err
}
