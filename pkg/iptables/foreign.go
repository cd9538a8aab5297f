package iptables

import (
	"fmt"
	"slices"
	"strings"
)

// Remover is one iptables binary's tables (one family, nft or legacy) as
// `ipvs-proxy cleanup` needs them to remove another proxy's leftovers. It
// is the only way this package writes outside IPVS-PROXY-*, and it only
// deletes: the chains a caller names and the jumps to them from builtin
// chains, never another rule or chain.
type Remover interface {
	// Name labels report lines: "iptables", "ip6tables-legacy", ...
	Name() string
	// RemoveChains removes the user chains of table for which match is
	// true, as removeChains does: the jumps to them from builtin chains,
	// then their rules, then the chains. removed has one line per rule or
	// chain deleted ("delete rule -A PREROUTING ...", "delete chain
	// KUBE-SERVICES"); on a table without such chains it writes nothing.
	RemoveChains(table string, match func(chain string) bool) (removed []string, errs []error)
}

var (
	_ Remover = &engine{}
	_ Remover = &Fake{}
)

func (e *engine) Name() string { return e.name }

func (e *engine) RemoveChains(table string, match func(chain string) bool) (removed []string, errs []error) {
	if !slices.Contains(removableTables, table) {
		return nil, []error{fmt.Errorf("table %q is not one chains are removed from", table)}
	}
	err := e.batched(func() error {
		names, err := e.b.userChains(table)
		if err != nil {
			return fmt.Errorf("list chains: %w", err)
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !match(n) })
		if len(names) == 0 {
			return nil
		}
		if err := e.b.release(table, names); err != nil {
			return err
		}
		_, removed, errs = e.removeChains(table, names)
		return nil
	})
	if err != nil {
		// A failed commit applied none of the table's writes.
		if _, batched := e.b.(transaction); batched {
			removed = nil
		}
		errs = append(errs, err)
	}
	return removed, errs
}

// removableTables are the tables RemoveChains works in: those another
// proxy writes to. raw is left out, since nothing of kube-proxy's is there
// and listing it can load a module.
var removableTables = []string{"nat", "filter", "mangle"}

// familyOf is the family an iptables binary's name says: ip6tables* is
// IPv6, the rest IPv4.
func familyOf(binary string) Family {
	if strings.HasPrefix(binary, "ip6tables") {
		return IPv6
	}
	return IPv4
}
