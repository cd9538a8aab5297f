//go:build linux

package kubeproxy

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// lockWait bounds, in seconds, the wait for the xtables lock.
const lockWait = 10

type linuxIPTables struct {
	name string
	ipt  *iptables.IPTables
	// legacy marks an iptables-legacy binary, legacyTables the tables the
	// kernel has for it (/proc/net/ip_tables_names).
	legacy       bool
	legacyTables []string
}

// NewLinuxIPTables wraps one binary, "iptables-nft", "ip6tables-legacy", ...
func NewLinuxIPTables(binary string) (IPTables, error) {
	proto := iptables.ProtocolIPv4
	if strings.HasPrefix(binary, "ip6tables") {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.New(iptables.IPFamily(proto), iptables.Path(binary), iptables.Timeout(lockWait))
	if err != nil {
		return nil, fmt.Errorf("set up %s: %w", binary, err)
	}
	l := &linuxIPTables{name: binary, ipt: ipt}
	if strings.HasSuffix(binary, "-legacy") {
		l.legacy, l.legacyTables = true, legacyTables(proto)
	}
	return l, nil
}

// HostIPTables returns every binary kube-proxy may have written with. It
// picked nft or legacy to match the host, so both are cleaned: nft through
// iptables-nft, legacy through iptables-legacy, but only where legacy
// tables exist (listing them would otherwise load the legacy modules).
// Without the -nft and -legacy names, plain iptables stands for whichever
// it is. A binary that is missing is skipped, not an error.
func HostIPTables() ([]IPTables, []error) {
	var out []IPTables
	var errs []error
	for _, fam := range []string{"iptables", "ip6tables"} {
		var bins []string
		for _, b := range []string{fam + "-nft", fam + "-legacy"} {
			if _, err := exec.LookPath(b); err == nil {
				bins = append(bins, b)
			}
		}
		if len(bins) == 0 {
			if _, err := exec.LookPath(fam); err != nil {
				continue
			}
			bins = []string{fam}
		}
		for _, b := range bins {
			if strings.HasSuffix(b, "-legacy") && len(legacyTables(familyOf(b))) == 0 {
				continue
			}
			ipt, err := NewLinuxIPTables(b)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, ipt)
		}
	}
	return out, errs
}

func familyOf(binary string) iptables.Protocol {
	if strings.HasPrefix(binary, "ip6tables") {
		return iptables.ProtocolIPv6
	}
	return iptables.ProtocolIPv4
}

// legacyTables reads which legacy tables the kernel has; the file is
// absent when the legacy modules are not loaded.
func legacyTables(proto iptables.Protocol) []string {
	path := "/proc/net/ip_tables_names"
	if proto == iptables.ProtocolIPv6 {
		path = "/proc/net/ip6_tables_names"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

func (l *linuxIPTables) Name() string { return l.name }

func (l *linuxIPTables) ListChains(table string) ([]string, error) {
	if l.legacy && !slices.Contains(l.legacyTables, table) {
		return nil, nil // no such legacy table, so nothing of kube-proxy's in it
	}
	c, err := l.ipt.ListChains(table)
	return c, mapErr(err)
}

func (l *linuxIPTables) List(table, chain string) ([]string, error) {
	r, err := l.ipt.List(table, chain)
	return r, mapErr(err)
}

func (l *linuxIPTables) Delete(table, chain string, rulespec ...string) error {
	return mapErr(l.ipt.Delete(table, chain, rulespec...))
}

func (l *linuxIPTables) ClearChain(table, chain string) error {
	return mapErr(l.ipt.ClearChain(table, chain))
}

func (l *linuxIPTables) DeleteChain(table, chain string) error {
	return mapErr(l.ipt.DeleteChain(table, chain))
}

// mapErr keeps go-iptables' message (it has the command and stderr) and
// marks "no such rule or chain" as ErrNotFound.
func mapErr(err error) error {
	var e *iptables.Error
	if errors.As(err, &e) && e.IsNotExist() {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
