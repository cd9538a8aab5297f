package iptables

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// chainLine is ":NAME POLICY [PACKETS:BYTES]"; a user chain's policy is "-".
var chainLine = regexp.MustCompile(`^:(\S+) (\S+) \[\d+:\d+\]$`)

// savePolicies reads the builtin chains' policies from iptables-save
// output that parseSave has accepted, by "TABLE CHAIN".
func savePolicies(text string) map[string]string {
	out := map[string]string{}
	table := ""
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if t, ok := strings.CutPrefix(line, "*"); ok {
			table = t
		} else if m := chainLine.FindStringSubmatch(line); m != nil && m[2] != "-" {
			out[table+" "+m[1]] = m[2]
		}
	}
	return out
}

// parseSave reads iptables-save output into each table's chains, builtin
// and user, with their rules as the arguments after "-A CHAIN". Anything
// it does not know is an error: guessing could make Sync act on a wrong
// picture of the tables.
func parseSave(text string) (map[string]map[string][][]string, error) {
	tables := map[string]map[string][][]string{}
	var name string                  // the table being read; "" between tables
	var chains map[string][][]string // its chains
	n := 0
	for line := range strings.Lines(text) {
		n++
		line = strings.TrimSuffix(line, "\n")
		bad := func(format string, a ...any) error {
			return fmt.Errorf("line %d %q: %s", n, line, fmt.Sprintf(format, a...))
		}
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			if name != "" {
				return nil, bad("table %s has no COMMIT", name)
			}
			name = line[1:]
			if _, dup := tables[name]; dup || name == "" {
				return nil, bad("empty or repeated table name")
			}
			chains = map[string][][]string{}
			tables[name] = chains
		case line == "COMMIT":
			if name == "" {
				return nil, bad("COMMIT outside a table")
			}
			name = ""
		case strings.HasPrefix(line, ":"):
			m := chainLine.FindStringSubmatch(line)
			if name == "" || m == nil {
				return nil, bad("not a chain line in a table")
			}
			if _, dup := chains[m[1]]; dup {
				return nil, bad("repeated chain")
			}
			chains[m[1]] = nil
		case strings.HasPrefix(line, "-A "):
			args, err := SplitArgs(line)
			if err != nil {
				return nil, bad("%v", err)
			}
			if name == "" || len(args) < 2 {
				return nil, bad("not a rule in a table")
			}
			if _, ok := chains[args[1]]; !ok {
				return nil, bad("rule in undeclared chain %s", args[1])
			}
			chains[args[1]] = append(chains[args[1]], args[2:])
		default:
			return nil, bad("not a table, chain, rule, COMMIT or comment")
		}
	}
	if name != "" {
		return nil, fmt.Errorf("table %s has no COMMIT", name)
	}
	return tables, nil
}

// restoreInput prints writes as iptables-restore --noflush input: one
// *table ... COMMIT block per table written to, tables in name order,
// each table's writes in the order made.
func restoreInput(writes []write) string {
	var tables []string
	for _, w := range writes {
		if !slices.Contains(tables, w.table) {
			tables = append(tables, w.table)
		}
	}
	slices.Sort(tables)
	var b strings.Builder
	for _, t := range tables {
		b.WriteString("*" + t + "\n")
		for _, w := range writes {
			if w.table == t {
				b.WriteString(w.cmd + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}
