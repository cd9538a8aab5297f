//go:build conformance

package node

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// The node's proxy state as text, for comparisons in full: the IPVS table,
// the iptables chains of both families and the ipsets.

// ipvsTable is the whole of `ipvsadm -Ln` without headers, spacing and
// counters: one block per virtual server, blocks and real servers sorted.
func ipvsTable() string {
	out, err := exec.Command("ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ipvsadm: %v: %s", err, out)
	}
	return formatTable(parseTable(string(out)))
}

// table maps a virtual server's line to its real servers' lines.
type table map[string][]string

func parseTable(ipvsadm string) table {
	tb := table{}
	vs := ""
	for _, line := range strings.Split(ipvsadm, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) < 3 || f[0] == "IP" || f[0] == "Prot" || f[1] == "RemoteAddress:Port":
		case f[0] == "->":
			tb[vs] = append(tb[vs], "  -> "+strings.Join(f[1:4], " "))
		default:
			vs = strings.Join(f, " ")
			tb[vs] = tb[vs][:0:0]
		}
	}
	return tb
}

func formatTable(tb table) string {
	var blocks []string
	for vs, rs := range tb {
		rs = slices.Clone(rs)
		slices.Sort(rs)
		blocks = append(blocks, strings.Join(append([]string{vs}, rs...), "\n"))
	}
	slices.Sort(blocks)
	return strings.Join(blocks, "\n")
}

// withRealServer is tb with dst (ip:port) added, with the same forwarding
// and weight, to every virtual server that has a real server on oldIP.
func withRealServer(tb table, oldIP, newIP string) table {
	out := table{}
	for vs, rs := range tb {
		out[vs] = slices.Clone(rs)
		for _, r := range rs {
			if strings.HasPrefix(r, "  -> "+oldIP+":") {
				out[vs] = append(out[vs], strings.Replace(r, "  -> "+oldIP+":", "  -> "+newIP+":", 1))
			}
		}
	}
	return out
}

// chains lists every chain iptables-save and ip6tables-save print, one
// "command table chain" a line, sorted (names only: no policies, counters
// or rules).
func chains() string {
	var out []string
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		data, err := exec.Command(save).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%s: %v: %s", save, err, data)
		}
		tbl := ""
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				tbl = line[1:]
			case strings.HasPrefix(line, ":"):
				out = append(out, save+" "+tbl+" "+strings.Fields(line)[0][1:])
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// sortedLines is the lines of every text, sorted, without empty ones.
func sortedLines(texts ...string) string {
	var lines []string
	for _, t := range texts {
		for _, l := range strings.Split(t, "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// ipsets lists the names of the node's ipsets, sorted.
func ipsets() string {
	data, err := exec.Command("ipset", "list", "-n").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ipset list -n: %v: %s", err, data)
	}
	names := strings.Fields(string(data))
	slices.Sort(names)
	return strings.Join(names, "\n")
}
