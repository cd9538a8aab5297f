package cleanup

import (
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
)

// Cleaner removes kube-proxy's leftovers; see the package doc for exactly
// what. A nil field means that part of the kernel is not there on this host
// (no ip_vs module, no ipset support) and its step is skipped.
type Cleaner struct {
	// IPTables holds one entry per iptables binary kube-proxy may have
	// written with: both families, nft and legacy (see HostIPTables).
	IPTables []iptables.Remover
	IPSets   ipset.Remover
	IPVS     IPVS
	// Link is kube-proxy's dummy link, netif.NewLinux("kube-ipvs0").
	// ipvs-proxy adopts that same link (cmd/ipvs-proxy LinkName), and
	// everything on it is taken as kube-proxy's: give Link and IPVS only
	// when ipvs-proxy's own state goes too, as in `ipvs-proxy cleanup`. Left
	// nil, only kube-proxy's iptables rules and ipsets are removed, which is
	// safe on a node ipvs-proxy already serves.
	Link Link
}

// IPVS is the part of ipvs.Interface the cleanup uses.
type IPVS interface {
	List() ([]ipvs.VirtualServer, error)
	Write(ops []ipvs.Op) []error
}

// kubeProxyLink is the name kube-proxy gives its dummy link, and what
// Cleaner.Link must be.
const kubeProxyLink = "kube-ipvs0"

// Link is the part of netif.Interface the cleanup uses.
type Link interface {
	Addresses() ([]netip.Addr, error)
	Link() (*netif.LinkState, error)
	DeleteLink() error
}

// Run removes what it can and keeps going past errors. removed has one line
// per removal, e.g. "iptables nat: delete chain KUBE-SERVICES", "ipset:
// destroy KUBE-CLUSTER-IP", "ipvs: delete TCP 10.96.0.1:443", "link:
// delete kube-ipvs0"; a second Run on a clean node returns none.
func (c *Cleaner) Run() (removed []string, errs []error) {
	r := &report{}
	// Rules before sets: the kernel will not destroy a set a rule matches on.
	for _, ipt := range c.IPTables {
		cleanIPTables(ipt, r)
	}
	if c.IPSets != nil {
		cleanIPSets(c.IPSets, r)
	}
	// Virtual servers before the link: a virtual server is kube-proxy's by
	// sitting on one of the link's addresses, so the link goes only once
	// none is left there (without IPVS, none can be).
	linkClear := true
	if c.IPVS != nil && c.Link != nil {
		linkClear = cleanIPVS(c, r)
	}
	if c.Link != nil {
		if linkClear {
			deleteLink(c.Link, kubeProxyLink, r)
		} else {
			r.fail(fmt.Errorf("link: left in place while virtual servers may remain on its addresses, which are what marks them as kube-proxy's; run again"))
		}
	}
	return r.removed, r.errs
}

// report collects what Run did and what failed.
type report struct {
	removed []string
	errs    []error
}

func (r *report) did(format string, args ...any) {
	r.removed = append(r.removed, fmt.Sprintf(format, args...))
}

func (r *report) fail(err error) { r.errs = append(r.errs, err) }
