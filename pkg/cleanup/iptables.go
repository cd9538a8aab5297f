package cleanup

import (
	"fmt"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
)

// cleanIPTables removes kube-proxy's rules and chains from one binary's
// tables: jumps from builtin chains first, then every owned chain is
// flushed (which also drops the jumps between them), then deleted.
func cleanIPTables(ipt iptables.Remover, r *report) {
	for _, table := range cleanedTables {
		where := ipt.Name() + " " + table
		removed, errs := ipt.RemoveChains(table, func(chain string) bool { return isOwnedChain(table, chain) })
		for _, line := range removed {
			r.did("%s: %s", where, line)
		}
		for _, err := range errs {
			r.fail(fmt.Errorf("%s: %w", where, err))
		}
	}
}
