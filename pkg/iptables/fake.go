package iptables

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Fake is one family's iptables in memory, driven by the same Sync, Delete
// and Dump code as the Linux implementation. Like the kernel it refuses
// rules in missing chains, jumps to missing chains, and deleting a chain
// that is referenced or not empty. Beyond the kernel, it refuses any write
// to a chain ipvs-proxy does not own, other than adding or removing a jump
// to an owned chain: such a write is a bug.
type Fake struct {
	engine
	mem *memory
	// policies are the builtin chains' policies Load was given, by
	// "TABLE CHAIN"; the fake does not act on them.
	policies map[string]string
}

var _ Interface = &Fake{}

// NewFake returns empty tables: builtin chains, no rules.
func NewFake(fam Family) *Fake {
	name := "iptables"
	if fam == IPv6 {
		name = "ip6tables"
	}
	return NewFakeBinary(name)
}

// NewFakeBinary is NewFake for the family of the binary, "iptables-nft",
// "ip6tables", ..., whose name Remover's report lines carry.
func NewFakeBinary(binary string) *Fake {
	m := &memory{tables: map[string]map[string][][]string{}, failOn: map[string]error{}}
	for t := range builtinChains {
		m.tables[t] = emptyTable(t)
	}
	return &Fake{engine: engine{fam: familyOf(binary), name: binary, b: m}, mem: m}
}

func emptyTable(table string) map[string][][]string {
	t := map[string][][]string{}
	for _, c := range builtinChains[table] {
		t[c] = nil
	}
	return t
}

// FailOn makes every later write to the chain fail with err, as a held
// lock or a kernel refusal would; nil clears it.
func (f *Fake) FailOn(table, chain string, err error) {
	f.mem.mu.Lock()
	defer f.mem.mu.Unlock()
	f.mem.failOn[table+" "+chain] = err
}

// Load replaces each table in save, iptables-save output (counters and
// blank lines may be left out or added), as iptables-restore without
// --noflush would: the way a test puts another program's rules in place.
// Builtin chains' policies are kept for Save.
func (f *Fake) Load(save string) error {
	var lines []string
	for line := range strings.Lines(save) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line+"\n")
		}
	}
	save = noCounters.ReplaceAllString(strings.Join(lines, ""), "$0 [0:0]")
	tables, err := parseSave(save)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	m := f.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, chains := range tables {
		if _, ok := builtinChains[name]; !ok {
			return fmt.Errorf("load: unknown table %s", name)
		}
		t := emptyTable(name)
		for c, rules := range chains {
			t[c] = rules
		}
		m.tables[name] = t
	}
	f.policies = savePolicies(save)
	return nil
}

// noCounters matches a chain line that lacks iptables-save's counters.
var noCounters = regexp.MustCompile(`(?m)^:\S+ \S+$`)

// Save prints tables as iptables-save does, without counters: builtin
// chains in the kernel's order, then user chains by name, then every rule,
// chain by chain. A test compares it with what the kernel's iptables-save
// prints, counters removed.
func (f *Fake) Save(tables ...string) string {
	m := f.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, table := range tables {
		t := m.tables[table]
		var user []string
		for c := range t {
			if !isBuiltin(table, c) {
				user = append(user, c)
			}
		}
		slices.Sort(user)
		chains := append(slices.Clone(builtinChains[table]), user...)
		b.WriteString("*" + table + "\n")
		for _, c := range chains {
			policy := "-"
			if isBuiltin(table, c) {
				policy = cmp.Or(f.policies[table+" "+c], "ACCEPT")
			}
			fmt.Fprintf(&b, ":%s %s\n", c, policy)
		}
		for _, c := range chains {
			for _, r := range t[c] {
				fmt.Fprintf(&b, "-A %s %s\n", c, JoinArgs(r))
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// AddForeign appends a rule that is not ipvs-proxy's, creating the chain
// if it is neither builtin nor there yet.
func (f *Fake) AddForeign(table, chain string, args ...string) error {
	m := f.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tables[table]
	if !ok {
		return fmt.Errorf("no table %s", table)
	}
	if isOwned(chain) {
		return fmt.Errorf("chain %s is not foreign", chain)
	}
	if _, ok := t[chain]; !ok {
		t[chain] = nil
	}
	t[chain] = append(t[chain], slices.Clone(args))
	return nil
}

// DumpAll prints every chain and rule, foreign ones included, in Dump's
// format but with builtin chains in their real order.
func (f *Fake) DumpAll() string {
	return f.mem.dumpAll()
}

// Log lists the writes made so far, as iptables command lines.
func (f *Fake) Log() []string {
	f.mem.mu.Lock()
	defer f.mem.mu.Unlock()
	out := make([]string, len(f.mem.log))
	for i, w := range f.mem.log {
		out[i] = "-t " + w.table + " " + w.cmd
	}
	return out
}

// memory is the fake's backend, and the Linux backend's snapshot of the
// tables during a transaction.
type memory struct {
	mu     sync.Mutex
	tables map[string]map[string][][]string
	log    []write
	// released are the chains, "TABLE CHAIN", that release allows
	// removing although ipvs-proxy does not own them.
	released map[string]bool
	// failOn is the Fake's FailOn.
	failOn map[string]error
}

// write is one change made, as an iptables command line without the
// table, which is also how iptables-restore takes it.
type write struct{ table, cmd string }

func (m *memory) dumpAll() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := dumpState{}
	for table, chains := range m.tables {
		for c, rules := range chains {
			if isBuiltin(table, c) {
				for _, r := range rules {
					d.addBuiltinRule(table, c, r)
				}
			} else {
				d.addChain(table, c, rules)
			}
		}
	}
	return d.format(false)
}

func (m *memory) chain(table, chain string) ([][]string, error) {
	rules, ok := m.tables[table][chain]
	if !ok {
		return nil, fmt.Errorf("no chain %s in table %s", chain, table)
	}
	return rules, nil
}

// owns reports whether writes may change chain: ipvs-proxy's own, or one
// released for removal.
func (m *memory) owns(table, chain string) bool {
	return isOwned(chain) || m.released[table+" "+chain]
}

func (m *memory) release(table string, chains []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.released = map[string]bool{}
	for _, c := range chains {
		m.released[table+" "+c] = true
	}
	return nil
}

// checkWrite enforces ownership: owned chains take anything, builtin
// chains only jumps to owned chains.
func (m *memory) checkWrite(table, chain string, args []string) error {
	if _, err := m.chain(table, chain); err != nil {
		return err
	}
	if !m.owns(table, chain) && !(isBuiltin(table, chain) && args != nil && m.owns(table, target(args))) {
		return fmt.Errorf("write to chain %s in table %s, which ipvs-proxy does not own", chain, table)
	}
	if err := m.failOn[table+" "+chain]; err != nil {
		return err
	}
	if t := target(args); isOwned(t) {
		if _, ok := m.tables[table][t]; !ok {
			return fmt.Errorf("jump to missing chain %s", t)
		}
	}
	return nil
}

func (m *memory) record(table, format string, a ...any) {
	m.log = append(m.log, write{table, fmt.Sprintf(format, a...)})
}

func (m *memory) userChains(table string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tables[table]
	if !ok {
		return nil, fmt.Errorf("no table %s", table)
	}
	var out []string
	for c := range t {
		if !isBuiltin(table, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (m *memory) rules(table, chain string) ([][]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rules, err := m.chain(table, chain)
	out := make([][]string, len(rules))
	for i, r := range rules {
		out[i] = slices.Clone(r)
	}
	return out, err
}

func (m *memory) newChain(table, chain string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tables[table]
	switch {
	case !ok:
		return fmt.Errorf("no table %s", table)
	case !isOwned(chain):
		return fmt.Errorf("create chain %s, which ipvs-proxy does not own", chain)
	}
	if _, ok := t[chain]; ok {
		return fmt.Errorf("chain %s already exists in table %s", chain, table)
	}
	t[chain] = nil
	m.record(table, "-N %s", chain)
	return nil
}

// put writes args at position pos (1-based) of the chain: inserted, or in
// place of the rule there when replace is set. pos 0 appends.
func (m *memory) put(table, chain string, pos int, args []string, replace bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkWrite(table, chain, args); err != nil {
		return err
	}
	rules := m.tables[table][chain]
	switch {
	case pos == 0:
		m.tables[table][chain] = append(rules, slices.Clone(args))
		m.record(table, "-A %s %s", chain, JoinArgs(args))
		return nil
	case pos < 1 || pos > len(rules)+1 || (replace && pos > len(rules)):
		return fmt.Errorf("index %d out of range in chain %s", pos, chain)
	case replace:
		rules[pos-1] = slices.Clone(args)
		m.record(table, "-R %s %d %s", chain, pos, JoinArgs(args))
	default:
		m.tables[table][chain] = slices.Insert(rules, pos-1, slices.Clone(args))
		m.record(table, "-I %s %d %s", chain, pos, JoinArgs(args))
	}
	return nil
}

func (m *memory) appendRule(table, chain string, args []string) error {
	return m.put(table, chain, 0, args, false)
}

func (m *memory) insertRule(table, chain string, pos int, args []string) error {
	return m.put(table, chain, pos, args, false)
}

func (m *memory) replaceRule(table, chain string, pos int, args []string) error {
	return m.put(table, chain, pos, args, true)
}

func (m *memory) deleteRuleAt(table, chain string, pos int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkWrite(table, chain, nil); err != nil {
		return err
	}
	rules := m.tables[table][chain]
	if pos < 1 || pos > len(rules) {
		return fmt.Errorf("index %d out of range in chain %s", pos, chain)
	}
	m.tables[table][chain] = slices.Delete(rules, pos-1, pos)
	m.record(table, "-D %s %d", chain, pos)
	return nil
}

func (m *memory) deleteRule(table, chain string, args []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkWrite(table, chain, args); err != nil {
		return err
	}
	rules := m.tables[table][chain]
	i := slices.IndexFunc(rules, func(r []string) bool { return slices.Equal(r, args) })
	if i < 0 {
		return nil
	}
	m.tables[table][chain] = slices.Delete(rules, i, i+1)
	m.record(table, "-D %s %s", chain, JoinArgs(args))
	return nil
}

func (m *memory) flushChain(table, chain string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkWrite(table, chain, nil); err != nil {
		return err
	}
	m.tables[table][chain] = nil
	m.record(table, "-F %s", chain)
	return nil
}

func (m *memory) deleteChain(table, chain string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rules, ok := m.tables[table][chain]
	if !ok {
		return nil
	}
	if err := m.checkWrite(table, chain, nil); err != nil {
		return err
	}
	if len(rules) > 0 {
		return fmt.Errorf("chain %s in table %s is not empty", chain, table)
	}
	for c, rules := range m.tables[table] {
		for _, r := range rules {
			if target(r) == chain {
				return fmt.Errorf("chain %s in table %s is in use by %s", chain, table, c)
			}
		}
	}
	delete(m.tables[table], chain)
	m.record(table, "-X %s", chain)
	return nil
}
