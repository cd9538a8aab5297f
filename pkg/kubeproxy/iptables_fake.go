package kubeproxy

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// FakeIPTables is one binary's tables in memory. It answers like the kernel
// where the cleanup depends on it: a chain that still has rules or is still
// jumped to cannot be deleted, a rule must exist to be deleted, and Load
// refuses a jump to a chain that does not exist.
type FakeIPTables struct {
	mu     sync.Mutex
	name   string
	tables map[string]*fakeTable
	// Writes counts every call that changed, or tried to change, a table.
	Writes int
	// FailOn makes every write to a chain fail; the key is "TABLE CHAIN".
	FailOn map[string]error
}

type fakeTable struct {
	policy map[string]string     // builtin chain → policy
	chains map[string][][]string // every chain → its rules' arguments
}

var _ IPTables = &FakeIPTables{}

// NewFakeIPTables returns tables holding only the builtin chains.
func NewFakeIPTables(name string) *FakeIPTables {
	f := &FakeIPTables{name: name, tables: map[string]*fakeTable{}, FailOn: map[string]error{}}
	for table := range builtinChains {
		f.tables[table] = newFakeTable(table)
	}
	return f
}

func newFakeTable(table string) *fakeTable {
	t := &fakeTable{policy: map[string]string{}, chains: map[string][][]string{}}
	for _, c := range builtinChains[table] {
		t.policy[c], t.chains[c] = "ACCEPT", nil
	}
	return t
}

// targets are the non-chain targets the test rule sets use.
var targets = []string{"ACCEPT", "DROP", "RETURN", "REJECT", "MASQUERADE", "MARK", "SNAT", "DNAT", "LOG", "CONNMARK", "CT", "NOTRACK"}

// Load replaces each table in save, the output of iptables-save, as
// iptables-restore without --noflush would.
func (f *FakeIPTables) Load(save string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t *fakeTable
	var table string
	sc := bufio.NewScanner(strings.NewReader(save))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		bad := func(why string) error { return fmt.Errorf("load line %d %q: %s", n, line, why) }
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if _, ok := builtinChains[table]; !ok {
				return bad("unknown table")
			}
			t = newFakeTable(table)
		case t == nil:
			return bad("outside a table")
		case line == "COMMIT":
			f.tables[table], t = t, nil
		case strings.HasPrefix(line, ":"):
			fields := strings.Fields(line[1:])
			if len(fields) < 2 {
				return bad("bad chain line")
			}
			if _, ok := t.policy[fields[0]]; ok {
				t.policy[fields[0]] = fields[1]
			} else {
				t.chains[fields[0]] = nil
			}
		default:
			args, err := splitArgs(line)
			if err != nil || len(args) < 2 || args[0] != "-A" {
				return bad("not a rule")
			}
			chain, rule := args[1], args[2:]
			if _, ok := t.chains[chain]; !ok {
				return bad("no such chain")
			}
			if tg := jumpTarget(rule); tg != "" && !slices.Contains(targets, tg) {
				if _, ok := t.chains[tg]; !ok || isBuiltin(table, tg) {
					return bad("jump to a chain that does not exist")
				}
			}
			t.chains[chain] = append(t.chains[chain], rule)
		}
	}
	if t != nil {
		return fmt.Errorf("load: table %s has no COMMIT", table)
	}
	return sc.Err()
}

// Dump prints every table but raw; see DumpIPTables.
func (f *FakeIPTables) Dump() string {
	d, err := DumpIPTables(f, cleanedTables...)
	if err != nil {
		return "error: " + err.Error()
	}
	return d
}

// MatchesSet reports whether a rule matches on the ipset name, which is
// what makes the kernel refuse to destroy it.
func (f *FakeIPTables) MatchesSet(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tables {
		for _, rules := range t.chains {
			for _, r := range rules {
				if i := slices.Index(r, "--match-set"); i >= 0 && i+1 < len(r) && r[i+1] == name {
					return true
				}
			}
		}
	}
	return false
}

func (f *FakeIPTables) Name() string { return f.name }

func (f *FakeIPTables) table(name string) (*fakeTable, error) {
	t, ok := f.tables[name]
	if !ok {
		return nil, fmt.Errorf("%s: can't initialize table %q: table does not exist", f.name, name)
	}
	return t, nil
}

func (f *FakeIPTables) ListChains(table string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(table)
	if err != nil {
		return nil, err
	}
	var user []string
	for c := range t.chains {
		if !isBuiltin(table, c) {
			user = append(user, c)
		}
	}
	slices.Sort(user)
	return append(slices.Clone(builtinChains[table]), user...), nil
}

func (f *FakeIPTables) List(table, chain string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(table)
	if err != nil {
		return nil, err
	}
	rules, ok := t.chains[chain]
	if !ok {
		return nil, fmt.Errorf("list %s %s: %w", table, chain, ErrNotFound)
	}
	head := "-N " + chain
	if p, ok := t.policy[chain]; ok {
		head = "-P " + chain + " " + p
	}
	out := []string{head}
	for _, r := range rules {
		out = append(out, "-A "+chain+" "+formatArgs(r))
	}
	return out, nil
}

// write counts a write and returns the table, or the error to fail with.
func (f *FakeIPTables) write(table, chain string) (*fakeTable, error) {
	f.Writes++
	if err := f.FailOn[table+" "+chain]; err != nil {
		return nil, err
	}
	return f.table(table)
}

func (f *FakeIPTables) Delete(table, chain string, rulespec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.write(table, chain)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(t.chains[chain], func(r []string) bool { return slices.Equal(r, rulespec) })
	if i < 0 {
		return fmt.Errorf("delete rule from %s %s: %w", table, chain, ErrNotFound)
	}
	t.chains[chain] = slices.Delete(t.chains[chain], i, i+1)
	return nil
}

func (f *FakeIPTables) ClearChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.write(table, chain)
	if err != nil {
		return err
	}
	t.chains[chain] = nil
	return nil
}

func (f *FakeIPTables) DeleteChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.write(table, chain)
	if err != nil {
		return err
	}
	rules, ok := t.chains[chain]
	switch {
	case !ok:
		return fmt.Errorf("delete chain %s %s: %w", table, chain, ErrNotFound)
	case isBuiltin(table, chain):
		return fmt.Errorf("delete chain %s %s: builtin chain", table, chain)
	case len(rules) > 0:
		return fmt.Errorf("delete chain %s %s: directory not empty", table, chain)
	}
	for from, rules := range t.chains {
		for _, r := range rules {
			if jumpTarget(r) == chain {
				return fmt.Errorf("delete chain %s %s: too many links (referenced from %s)", table, chain, from)
			}
		}
	}
	delete(t.chains, chain)
	return nil
}
