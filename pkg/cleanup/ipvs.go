package cleanup

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// cleanIPVS deletes the virtual servers attributed to kube-proxy. It
// reports whether none is left on the link's addresses; if one may be, the
// link must stay, or a later run could no longer tell it is kube-proxy's.
func cleanIPVS(c *Cleaner, r *report) bool {
	// A link of another kind under the name is not kube-proxy's, and the
	// virtual servers on its addresses not kube-proxy's either: both stay
	// (deleteLink says so), as kube-proxy's own clean-up leaves them.
	if state, err := c.Link.Link(); err == nil && state != nil && state.Type != "dummy" {
		return true
	}
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
	var ops []ipvs.Op
	for _, vs := range ipvs.Sorted(vss) {
		if slices.Contains(linkAddrs, vs.Addr.Unmap()) {
			ops = append(ops, ipvs.Op{Kind: ipvs.OpDeleteService, Service: vs.Service})
		}
	}
	if len(ops) == 0 {
		return true
	}
	linkClear := true
	for i, err := range c.IPVS.Write(ops) {
		switch {
		case err == nil:
			r.did("ipvs: delete %s", ops[i].Service.ServiceKey)
		case !errors.Is(err, ipvs.ErrNotFound):
			r.fail(fmt.Errorf("ipvs: %w", err))
			linkClear = false
		}
	}
	return linkClear
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
