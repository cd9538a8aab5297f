package kubeproxy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// DumpIPTables prints tables in the form of iptables-save without counters
// or comments, user chains sorted by name, so that the fake and the kernel
// print the same text for the same rules:
//
//	*nat
//	:PREROUTING ACCEPT
//	:DOCKER -
//	-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
//	COMMIT
func DumpIPTables(ipt IPTables, tables ...string) (string, error) {
	var b strings.Builder
	for _, table := range tables {
		chains, err := ipt.ListChains(table)
		if err != nil {
			return "", fmt.Errorf("dump %s %s: %w", ipt.Name(), table, err)
		}
		var builtin, user []string
		for _, c := range chains {
			if isBuiltin(table, c) {
				builtin = append(builtin, c)
			} else {
				user = append(user, c)
			}
		}
		slices.Sort(user)
		fmt.Fprintf(&b, "*%s\n", table)
		var rules []string
		for _, c := range append(builtin, user...) {
			lines, err := ipt.List(table, c)
			if err != nil {
				return "", fmt.Errorf("dump %s %s: %w", ipt.Name(), table, err)
			}
			policy := "-"
			for _, line := range lines {
				switch f := strings.Fields(line); {
				case len(f) == 3 && f[0] == "-P":
					policy = f[2]
				case len(f) > 0 && f[0] == "-A":
					rules = append(rules, stripCounters(line))
				}
			}
			fmt.Fprintf(&b, ":%s %s\n", c, policy)
		}
		for _, r := range rules {
			b.WriteString(r + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String(), nil
}

// stripCounters drops the " -c PKTS BYTES" go-iptables appends when
// iptables-nft prints counters, so that dumps compare as rules.
func stripCounters(line string) string { return counters.ReplaceAllString(line, "") }

var counters = regexp.MustCompile(` -c [0-9]+ [0-9]+$`)
