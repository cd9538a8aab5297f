package cleanup

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// cleanIPVS deletes the virtual servers attributed to kube-proxy. It
// reports whether none is left on the link's addresses; if one may be, the
// link must stay, or a later run could no longer tell it is kube-proxy's.
func cleanIPVS(c *Cleaner, r *report) bool {
	linkAddrs, err := c.Link.Addresses()
	if err != nil {
		r.fail(fmt.Errorf("ipvs: read the addresses of kube-proxy's link: %w", err))
		return false
	}
	vss, err := c.IPVS.List()
	if err != nil {
		r.fail(fmt.Errorf("ipvs: list virtual servers: %w", err))
		return false
	}
	var host []netip.Addr
	if c.NodePorts != nil {
		hs, err := c.Link.HostAddresses()
		if err != nil {
			// The link's own virtual servers can still go; node IPs wait.
			r.fail(fmt.Errorf("ipvs: read node addresses, so no NodePort is removed: %w", err))
		}
		for _, h := range hs {
			host = append(host, h.Addr.Unmap())
		}
	}
	linkClear := true
	var ops []ipvs.Op
	var whys []string
	var onLinks []bool
	for _, vs := range ipvs.Sorted(vss) {
		onLink := slices.Contains(linkAddrs, vs.Addr.Unmap())
		var why string
		switch {
		case c.Keep != nil && c.Keep(vs.ServiceKey):
			linkClear = linkClear && !onLink
			continue
		case onLink:
		case c.NodePorts != nil && slices.Contains(host, vs.Addr.Unmap()) && c.NodePorts.matches(vs):
			why = " (NodePort)"
		default:
			continue
		}
		ops = append(ops, ipvs.Op{Kind: ipvs.OpDeleteService, Service: vs.Service})
		whys, onLinks = append(whys, why), append(onLinks, onLink)
	}
	if len(ops) == 0 {
		return linkClear
	}
	for i, err := range c.IPVS.Write(ops) {
		switch {
		case err == nil:
			r.did("ipvs: delete %s%s", ops[i].Service.ServiceKey, whys[i])
		case !errors.Is(err, ipvs.ErrNotFound):
			r.fail(fmt.Errorf("ipvs: %w", err))
			linkClear = linkClear && !onLinks[i]
		}
	}
	return linkClear
}

// matches tells a kube-proxy NodePort from anything else on a node IP.
func (m *NodePortMatch) matches(vs ipvs.VirtualServer) bool {
	if vs.Port < m.First || vs.Port > m.Last || len(vs.Destinations) == 0 {
		return false
	}
	for _, d := range vs.Destinations {
		if !slices.ContainsFunc(m.ClusterCIDRs, func(p netip.Prefix) bool { return p.Contains(d.Addr.Unmap()) }) {
			return false
		}
	}
	return true
}

// deleteLink deletes kube-proxy's dummy link; a link of another kind under
// that name is not kube-proxy's and stays.
func deleteLink(l Link, name string, r *report) {
	state, err := l.Link()
	switch {
	case err != nil:
		r.fail(fmt.Errorf("link: read link: %w", err))
	case state == nil:
	case state.Type != "dummy":
		r.fail(fmt.Errorf("link: %s is a %s link, not kube-proxy's dummy: left in place", name, state.Type))
	default:
		if err := l.DeleteLink(); err != nil {
			r.fail(fmt.Errorf("link: delete %s: %w", name, err))
			return
		}
		r.did("link: delete %s", name)
	}
}
