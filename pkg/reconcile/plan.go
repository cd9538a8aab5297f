// Package reconcile compares the desired IPVS state with what the kernel
// holds and applies only the difference. Diff is pure; Apply is the only
// place that writes to the kernel, in a fixed order: for IPVS additions, then
// updates, then deletions, so traffic always has somewhere to go.
package reconcile

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// DestOp is a change to one real server of one virtual server.
type DestOp struct {
	Key  ipvs.ServiceKey
	Dest ipvs.Destination
}

// Plan is every kernel write one sync will make.
type Plan struct {
	AddAddresses       []netip.Addr
	AddServices        []ipvs.Service
	AddDestinations    []DestOp
	UpdateServices     []ipvs.Service
	UpdateDestinations []DestOp
	DeleteDestinations []DestOp
	DeleteServices     []ipvs.ServiceKey
	DeleteAddresses    []netip.Addr
	// Draining are real servers left in place at weight 0 while their
	// connections finish (see Drain). They are not writes: the caller
	// checks them again later.
	Draining []DestOp
}

// Len is the number of writes the plan makes.
func (p Plan) Len() int {
	return len(p.AddAddresses) + len(p.AddServices) + len(p.AddDestinations) + len(p.UpdateServices) +
		len(p.UpdateDestinations) + len(p.DeleteDestinations) + len(p.DeleteServices) + len(p.DeleteAddresses)
}

// Merge appends o's operations to p's.
func (p *Plan) Merge(o Plan) {
	p.AddAddresses = append(p.AddAddresses, o.AddAddresses...)
	p.AddServices = append(p.AddServices, o.AddServices...)
	p.AddDestinations = append(p.AddDestinations, o.AddDestinations...)
	p.UpdateServices = append(p.UpdateServices, o.UpdateServices...)
	p.UpdateDestinations = append(p.UpdateDestinations, o.UpdateDestinations...)
	p.DeleteDestinations = append(p.DeleteDestinations, o.DeleteDestinations...)
	p.DeleteServices = append(p.DeleteServices, o.DeleteServices...)
	p.DeleteAddresses = append(p.DeleteAddresses, o.DeleteAddresses...)
	p.Draining = append(p.Draining, o.Draining...)
}

// String lists the operations in the order Apply makes them, one a line.
func (p Plan) String() string {
	var b strings.Builder
	for _, s := range p.AddServices {
		fmt.Fprintf(&b, "add service %s\n", describe(s))
	}
	for _, d := range p.AddDestinations {
		fmt.Fprintf(&b, "add real server %s weight %d to %s\n", d.Dest.AddrPort(), d.Dest.Weight, d.Key)
	}
	for _, s := range p.UpdateServices {
		fmt.Fprintf(&b, "update service %s\n", describe(s))
	}
	for _, d := range p.UpdateDestinations {
		fmt.Fprintf(&b, "update real server %s weight %d of %s\n", d.Dest.AddrPort(), d.Dest.Weight, d.Key)
	}
	for _, d := range p.DeleteDestinations {
		fmt.Fprintf(&b, "delete real server %s from %s\n", d.Dest.AddrPort(), d.Key)
	}
	for _, k := range p.DeleteServices {
		fmt.Fprintf(&b, "delete service %s\n", k)
	}
	for _, a := range p.AddAddresses {
		fmt.Fprintf(&b, "add address %s\n", a)
	}
	for _, a := range p.DeleteAddresses {
		fmt.Fprintf(&b, "delete address %s\n", a)
	}
	for _, d := range p.Draining {
		fmt.Fprintf(&b, "# draining real server %s of %s: %d active, %d inactive connections\n", d.Dest.AddrPort(), d.Key, d.Dest.ActiveConns, d.Dest.InactiveConns)
	}
	return b.String()
}

func describe(s ipvs.Service) string {
	d := s.ServiceKey.String() + " " + s.Scheduler
	if s.Persistent {
		d += fmt.Sprintf(" persistent %d", s.Timeout)
	}
	return d
}
