//go:build linux

package iptables

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// lockWait bounds, in seconds, the wait for the xtables lock, so that a
// stuck iptables elsewhere delays a sync instead of hanging it.
const lockWait = 10

// NewLinux returns the Interface for one family over iptables-save and
// iptables-restore (or ip6tables-…), in whichever mode (nft or legacy)
// the host uses.
func NewLinux(fam Family) (Interface, error) {
	var prefix string
	switch fam {
	case IPv4:
		prefix = "iptables"
	case IPv6:
		prefix = "ip6tables"
	default:
		return nil, fmt.Errorf("unknown iptables family %q", fam)
	}
	// From PATH, as the iptables command: Debian's alternatives switch
	// iptables, iptables-save and iptables-restore together, so these are
	// in the mode the host's iptables is.
	return newLinux(prefix)
}

// newLinux runs binary-save and binary-restore, binary being "iptables",
// "ip6tables-legacy", ...
func newLinux(binary string) (*engine, error) {
	l := &linux{save: binary + "-save", restore: binary + "-restore", run: execRun}
	for _, bin := range []string{l.save, l.restore} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("set up %s: %w", binary, err)
		}
	}
	return &engine{fam: familyOf(binary), name: binary, b: l}, nil
}

// linux reads a table with one iptables-save and makes all the writes of
// a transaction with one iptables-restore: each exec costs about 100 ms
// on a slow machine, so Sync costs two execs, three when it writes.
// Outside a transaction each call runs in one of its own.
type linux struct {
	save, restore string
	// run is a field so that tests can count the execs.
	run func(stdin, name string, args ...string) (string, error)
	// tables, when not nil, are the only tables there are: a legacy
	// binary's, which iptables-legacy-save would otherwise create by
	// loading their modules. The others read as empty.
	tables []string
	// tx is the open transaction: the tables read so far, with the queued
	// writes applied, and those writes in its log. As in the fake, it
	// refuses what the kernel would, and writes outside what ipvs-proxy
	// owns.
	tx *memory
}

func (l *linux) begin() { l.tx = &memory{tables: map[string]map[string][][]string{}} }

// commit sends the queued writes with iptables-restore --noflush. Each
// table's block is applied whole or not at all, so a failure (e.g. a rule
// another agent deleted after the snapshot) leaves that table as it was,
// for the next Sync to retry. -w waits for the xtables lock, which legacy
// iptables-restore takes; iptables-save has no -w and needs none, it
// reads each table in one go.
func (l *linux) commit() error {
	writes := l.tx.log
	l.tx = nil
	if len(writes) == 0 {
		return nil
	}
	in := restoreInput(writes)
	if _, err := l.run(in, l.restore, "-w", strconv.Itoa(lockWait), "--noflush"); err != nil {
		return fmt.Errorf("%s: %w; input:\n%s", l.restore, err, in)
	}
	return nil
}

// in runs f on the transaction's snapshot of table, saving the table on
// first use; outside a transaction, in a transaction of its own.
func (l *linux) in(table string, f func(*memory) error) error {
	if l.tx == nil {
		l.begin()
		err := l.in(table, f)
		return errors.Join(err, l.commit())
	}
	if _, ok := l.tx.tables[table]; !ok && l.tables != nil && !slices.Contains(l.tables, table) {
		l.tx.tables[table] = emptyTable(table)
	}
	if _, ok := l.tx.tables[table]; !ok {
		out, err := l.run("", l.save, "-t", table)
		if err != nil {
			return fmt.Errorf("%s -t %s: %w", l.save, table, err)
		}
		tables, err := parseSave(out)
		if err != nil {
			return fmt.Errorf("%s -t %s: %w", l.save, table, err)
		}
		if tables[table] == nil {
			return fmt.Errorf("%s -t %s: no table %s in the output", l.save, table, table)
		}
		l.tx.tables[table] = tables[table]
	}
	return f(l.tx)
}

// write is in for a write: its chain and arguments go on one restore
// line, where a line break would start another command.
func (l *linux) write(table, chain string, args []string, f func(*memory) error) error {
	if strings.ContainsAny(chain+strings.Join(args, ""), "\r\n") {
		return fmt.Errorf("line break in chain %q or rule %q", chain, args)
	}
	return l.in(table, f)
}

// release is the transaction snapshot's: Remover's calls run in one.
func (l *linux) release(table string, chains []string) error {
	return l.in(table, func(m *memory) error { return m.release(table, chains) })
}

func (l *linux) userChains(table string) (names []string, err error) {
	err = l.in(table, func(m *memory) error {
		names, err = m.userChains(table)
		return err
	})
	return names, err
}

// rules reads the chain from iptables-save output, printed as `iptables
// -S` prints it. Arguments are compared after undoing the quoting, so
// `--comment "a b"` reads back as ["--comment", "a b"]; any other
// rewriting by iptables must already be in the form Desired writes (see
// rules.go), or Sync would rewrite the rule each time.
func (l *linux) rules(table, chain string) (rules [][]string, err error) {
	err = l.in(table, func(m *memory) error {
		rules, err = m.rules(table, chain)
		return err
	})
	return rules, err
}

// newChain queues -N rather than the ":CHAIN - [0:0]" of iptables-save:
// if another agent made the chain since the snapshot, -N fails the
// restore, where ":CHAIN" would flush the chain.
func (l *linux) newChain(table, chain string) error {
	return l.write(table, chain, nil, func(m *memory) error { return m.newChain(table, chain) })
}

func (l *linux) appendRule(table, chain string, args []string) error {
	return l.write(table, chain, args, func(m *memory) error { return m.appendRule(table, chain, args) })
}

func (l *linux) insertRule(table, chain string, pos int, args []string) error {
	return l.write(table, chain, args, func(m *memory) error { return m.insertRule(table, chain, pos, args) })
}

func (l *linux) replaceRule(table, chain string, pos int, args []string) error {
	return l.write(table, chain, args, func(m *memory) error { return m.replaceRule(table, chain, pos, args) })
}

func (l *linux) deleteRuleAt(table, chain string, pos int) error {
	return l.write(table, chain, nil, func(m *memory) error { return m.deleteRuleAt(table, chain, pos) })
}

// deleteRule queues nothing for a rule the snapshot lacks: absent is
// success. One that goes after the snapshot fails the restore.
func (l *linux) deleteRule(table, chain string, args []string) error {
	return l.write(table, chain, args, func(m *memory) error { return m.deleteRule(table, chain, args) })
}

func (l *linux) flushChain(table, chain string) error {
	return l.write(table, chain, nil, func(m *memory) error { return m.flushChain(table, chain) })
}

func (l *linux) deleteChain(table, chain string) error {
	return l.write(table, chain, nil, func(m *memory) error { return m.deleteChain(table, chain) })
}

// execRun execs name with stdin and returns its output; stderr, where
// iptables says what went wrong, goes in the error.
func execRun(stdin, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
