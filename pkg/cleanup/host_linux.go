//go:build linux

package cleanup

import (
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
)

// HostIPTables returns every iptables binary kube-proxy may have written
// with: both families, nft and legacy (see iptables.HostRemovers).
func HostIPTables() ([]iptables.Remover, []error) { return iptables.HostRemovers() }

// NewLinuxIPSets returns the kernel's ipsets.
func NewLinuxIPSets() ipset.Remover { return ipset.NewLinuxRemover() }
