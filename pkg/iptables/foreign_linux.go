//go:build linux

package iptables

import (
	"os"
	"os/exec"
	"strings"
)

// HostRemovers returns a Remover for every iptables binary another proxy
// may have written with. kube-proxy picked nft or legacy to match the
// host, so both are returned: nft through iptables-nft, legacy through
// iptables-legacy, but only where legacy tables exist, and then only
// those tables (reading others would load the legacy modules). Without
// the -nft and -legacy names, plain iptables stands for whichever it is.
// A binary that is missing is skipped, not an error.
func HostRemovers() ([]Remover, []error) {
	var out []Remover
	var errs []error
	for _, fam := range []string{"iptables", "ip6tables"} {
		var bins []string
		for _, b := range []string{fam + "-nft", fam + "-legacy"} {
			if _, err := exec.LookPath(b + "-restore"); err == nil {
				bins = append(bins, b)
			}
		}
		if len(bins) == 0 {
			if _, err := exec.LookPath(fam + "-restore"); err != nil {
				continue
			}
			bins = []string{fam}
		}
		for _, b := range bins {
			var tables []string
			if strings.HasSuffix(b, "-legacy") {
				if tables = legacyTables(familyOf(b)); len(tables) == 0 {
					continue
				}
			}
			r, err := newLinuxRemover(b, tables)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, r)
		}
	}
	return out, errs
}

// NewLinuxRemover is the Remover of one binary, "iptables-nft",
// "ip6tables-legacy", ...
func NewLinuxRemover(binary string) (Remover, error) {
	var tables []string
	if strings.HasSuffix(binary, "-legacy") {
		tables = legacyTables(familyOf(binary))
	}
	return newLinuxRemover(binary, tables)
}

func newLinuxRemover(binary string, tables []string) (Remover, error) {
	e, err := newLinux(binary)
	if err != nil {
		return nil, err
	}
	e.b.(*linux).tables = tables
	return e, nil
}

// legacyTables reads which legacy tables the kernel has; the file is
// absent when the legacy modules are not loaded.
func legacyTables(fam Family) []string {
	path := "/proc/net/ip_tables_names"
	if fam == IPv6 {
		path = "/proc/net/ip6_tables_names"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}
