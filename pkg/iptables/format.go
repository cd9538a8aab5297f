package iptables

import (
	"fmt"
	"slices"
	"strings"
)

// dumpState is what Dump shows of one family: per table, the user chains
// with their rules and the builtin chains' rules of interest.
type dumpState map[string]*tableState

type tableState struct {
	user    map[string][][]string
	builtin map[string][][]string
}

func (d dumpState) table(t string) *tableState {
	if d[t] == nil {
		d[t] = &tableState{user: map[string][][]string{}, builtin: map[string][][]string{}}
	}
	return d[t]
}

func (d dumpState) addChain(table, chain string, rules [][]string) {
	d.table(table).user[chain] = rules
}

func (d dumpState) addBuiltinRule(table, chain string, args []string) {
	t := d.table(table)
	t.builtin[chain] = append(t.builtin[chain], args)
}

// format prints, per table in name order: the user chains' -N lines, the
// builtin chains' rules, then the user chains' rules, each chain in name
// order and its rules in kernel order. sortBuiltin sorts the builtin
// chains' rules: in Dump these are only our jumps, whose position among
// other agents' rules is not ours to fix.
func (d dumpState) format(sortBuiltin bool) string {
	var b strings.Builder
	tables := make([]string, 0, len(d))
	for t := range d {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, table := range tables {
		t := d[table]
		users := make([]string, 0, len(t.user))
		for c := range t.user {
			users = append(users, c)
		}
		slices.Sort(users)
		for _, c := range users {
			fmt.Fprintf(&b, "-t %s -N %s\n", table, c)
		}
		for _, c := range builtinChains[table] {
			rules := t.builtin[c]
			if sortBuiltin {
				rules = slices.Clone(rules)
				slices.SortFunc(rules, func(x, y []string) int { return strings.Compare(JoinArgs(x), JoinArgs(y)) })
			}
			for _, r := range rules {
				b.WriteString(Rule{Table: table, Chain: c, Args: r}.String() + "\n")
			}
		}
		for _, c := range users {
			for _, r := range t.user[c] {
				b.WriteString(Rule{Table: table, Chain: c, Args: r}.String() + "\n")
			}
		}
	}
	return b.String()
}

// JoinArgs prints arguments as iptables -S does: an argument is quoted
// only when it needs to be, with " and \ escaped inside the quotes.
func JoinArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\"'\\") {
			out[i] = a
			continue
		}
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`)
		out[i] = `"` + r.Replace(a) + `"`
	}
	return strings.Join(out, " ")
}

// SplitArgs splits a line of iptables -S output into arguments, undoing
// its quoting: "a b" is one argument, and \x inside quotes is x.
func SplitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case quoted && c == '"':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '"':
			quoted, inArg = true, true
		case c == ' ' || c == '\t':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}
