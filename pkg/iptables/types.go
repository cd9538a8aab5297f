// Package iptables owns the few iptables rules ipvs-proxy needs. Their
// number does not depend on the number of Services: per-Service work is
// IPVS's. ipvs-proxy owns the chains named IPVS-PROXY-* and the jumps to
// them from the builtin chains, and never writes anything else. Desired
// builds the rules as a pure function; Interface makes the kernel match.
package iptables

import (
	"net/netip"
	"slices"
	"strings"
)

// Family selects iptables or ip6tables.
type Family string

const (
	IPv4 Family = "IPv4"
	IPv6 Family = "IPv6"
)

// ChainPrefix marks the chains ipvs-proxy owns: any chain with this prefix
// in an owned table is ipvs-proxy's to rewrite or delete.
const ChainPrefix = "IPVS-PROXY-"

// JumpComment is the comment on every jump from a builtin chain, so that
// `iptables -S` tells a reader who put the jump there.
const JumpComment = "ipvs-proxy"

// ownedTables are the only tables Sync, Delete and Dump look at. Desired
// must not use any other: Delete would not find its chains.
var ownedTables = []string{"filter", "mangle", "nat"}

// builtinChains lists each table's builtin chains, in the kernel's order.
var builtinChains = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
}

func isBuiltin(table, chain string) bool { return slices.Contains(builtinChains[table], chain) }

// Config is what the rules depend on.
type Config struct {
	// LocalCIDRs are the pod ranges whose Service traffic keeps its source:
	// --cluster-cidr, or the Node's podCIDRs (--detect-local-mode NodeCIDR).
	// Empty, with no interface below, tells no traffic apart as local.
	LocalCIDRs []netip.Prefix
	// LocalBridge and LocalInterfacePrefix tell local traffic apart by the
	// interface it comes in on instead (BridgeInterface and
	// InterfaceNamePrefix modes); at most one is set, and then LocalCIDRs
	// is not used.
	LocalBridge, LocalInterfacePrefix string
	MasqueradeAll                     bool // --masquerade-all
}

// Rule is one rule; Args are as go-iptables takes them, i.e. what follows
// "-A CHAIN" on the command line, one argument per element.
type Rule struct {
	Table, Chain string
	Args         []string
}

// String prints the rule as a command line, e.g.
// "-t nat -A POSTROUTING -m comment --comment ipvs-proxy -j IPVS-PROXY-POSTROUTING".
func (r Rule) String() string {
	return "-t " + r.Table + " -A " + r.Chain + " " + JoinArgs(r.Args)
}

// Chain is an owned chain with its rules in order.
type Chain struct {
	Table, Name string
	// JumpFrom is the builtin chain that jumps to this one; empty for a
	// chain reached only from other owned chains.
	JumpFrom string
	Rules    [][]string
}

// RuleSet is everything ipvs-proxy wants in one family's tables.
type RuleSet struct {
	Family Family
	Chains []Chain
}

// String prints the rule set as Dump prints the kernel once Sync has
// applied it, so a test can compare the two as text.
func (rs RuleSet) String() string {
	d := dumpState{}
	for _, c := range rs.Chains {
		d.addChain(c.Table, c.Name, c.Rules)
		if c.JumpFrom != "" {
			d.addBuiltinRule(c.Table, c.JumpFrom, jumpArgs(c.Name))
		}
	}
	return d.format(true)
}

// Interface is one family's iptables, restricted to what ipvs-proxy owns.
// It is not safe for concurrent use: one sync loop drives it.
type Interface interface {
	// Sync makes each chain of rs exist and hold exactly its rules, in
	// order, and makes exactly one jump to it from its builtin chain. Owned
	// chains that rs does not name are removed. It touches nothing else and
	// returns the number of writes made: 0 when the kernel already matches.
	Sync(rs RuleSet) (writes int, err error)
	// Delete removes the jumps and the owned chains; absent is success.
	Delete() error
	// Dump prints the owned chains and the jumps to them, in the format of
	// RuleSet.String.
	Dump() (string, error)
}

// jumpArgs is the one jump to an owned chain from its builtin chain.
func jumpArgs(chain string) []string {
	return []string{"-m", "comment", "--comment", JumpComment, "-j", chain}
}

// target returns the chain or extension a rule jumps or goes to.
func target(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" || args[i] == "-g" || args[i] == "--jump" || args[i] == "--goto" {
			return args[i+1]
		}
	}
	return ""
}

func isOwned(chain string) bool { return strings.HasPrefix(chain, ChainPrefix) }
