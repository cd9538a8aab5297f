package proxier

import (
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
)

// Cleanup removes what ipvs-proxy owns: virtual servers on the dummy link's
// addresses, in the record or with ipvs-proxy's marks, then the link. Nothing else is touched; in
// particular there is no flush. A link of another type under the name is
// another program's: it stays, with the virtual servers on its addresses
// that are neither recorded nor marked, and Cleanup says so in an error.
func Cleanup(kipvs ipvs.Interface, link netif.Interface, owned *Owned) (removed []string, errs []error) {
	state, err := link.Link()
	if err != nil {
		return nil, []error{err}
	}
	foreign := state != nil && state.Type != "dummy"
	onLink := map[netip.Addr]bool{}
	if !foreign {
		addrs, err := link.Addresses()
		if err != nil {
			return nil, []error{err}
		}
		for _, a := range addrs {
			onLink[a] = true
		}
	}
	all, err := kipvs.List()
	if err != nil {
		return nil, []error{err}
	}
	var ops []ipvs.Op
	for _, vs := range all {
		if onLink[vs.Addr] || owned.Has(vs.ServiceKey) || vs.FWMark != 0 { // List reads only our marks
			ops = append(ops, ipvs.Op{Kind: ipvs.OpDeleteService, Service: ipvs.Service{ServiceKey: vs.ServiceKey}})
		}
	}
	for i, err := range kipvs.Write(ops) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, fmt.Sprintf("ipvs: delete %s", ops[i].Service.ServiceKey))
	}
	if len(errs) > 0 {
		return removed, errs // keep the link: its addresses say what is still ours
	}
	if foreign {
		return removed, []error{fmt.Errorf("link: the dummy link's name is taken by a %s link, not ipvs-proxy's: left in place, with the virtual servers on its addresses", state.Type)}
	}
	if err := link.DeleteLink(); err != nil {
		return removed, []error{err}
	}
	removed = append(removed, "link: delete the dummy link")
	return removed, nil
}
