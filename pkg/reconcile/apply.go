package reconcile

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Addresses is the part of the dummy interface Apply writes to. Each call
// writes many addresses, in as few round trips as it can, and returns each
// one's error.
type Addresses interface {
	AddAddresses([]netip.Addr) []error
	DeleteAddresses([]netip.Addr) []error
}

// Counts are the writes a sync made, by kind, for metrics and for tests
// that an unchanged world costs nothing.
type Counts struct {
	AddressesAdded, AddressesDeleted                            int
	ServicesAdded, ServicesUpdated, ServicesDeleted             int
	DestinationsAdded, DestinationsUpdated, DestinationsDeleted int
	// Members of the node-endpoint kernel sets (the proxier writes these).
	SetMembersAdded, SetMembersDeleted int
}

// Writes is the total number of kernel writes.
func (c Counts) Writes() int {
	return c.AddressesAdded + c.AddressesDeleted + c.ServicesAdded + c.ServicesUpdated + c.ServicesDeleted +
		c.DestinationsAdded + c.DestinationsUpdated + c.DestinationsDeleted + c.SetMembersAdded + c.SetMembersDeleted
}

// Add sums two counts.
func (c Counts) Add(o Counts) Counts {
	return Counts{
		c.AddressesAdded + o.AddressesAdded, c.AddressesDeleted + o.AddressesDeleted,
		c.ServicesAdded + o.ServicesAdded, c.ServicesUpdated + o.ServicesUpdated, c.ServicesDeleted + o.ServicesDeleted,
		c.DestinationsAdded + o.DestinationsAdded, c.DestinationsUpdated + o.DestinationsUpdated, c.DestinationsDeleted + o.DestinationsDeleted,
		c.SetMembersAdded + o.SetMembersAdded, c.SetMembersDeleted + o.SetMembersDeleted,
	}
}

// Apply makes the plan's writes, the IPVS ones in one Write so that a
// large plan (a cold start) costs few round trips to the kernel. Each write
// stands alone: one that fails is reported and the rest go on, so one
// broken Service never holds up the others; the next sync retries what
// failed. "Already exists" on an add and "not found" on a delete mean the
// kernel is already as wanted.
func Apply(vs ipvs.Interface, addrs Addresses, p Plan) (Counts, []error) {
	var c Counts
	var errs []error
	tally := func(err error, ok error, n *int) {
		switch {
		case err == nil:
			*n++
		case errors.Is(err, ok):
		default:
			errs = append(errs, err)
		}
	}
	ops := make([]ipvs.Op, 0, p.Len())
	for _, s := range p.AddServices {
		ops = append(ops, ipvs.Op{Kind: ipvs.OpAddService, Service: s})
	}
	for _, d := range p.AddDestinations {
		ops = append(ops, destOp(ipvs.OpAddDestination, d))
	}
	for _, s := range p.UpdateServices {
		ops = append(ops, ipvs.Op{Kind: ipvs.OpUpdateService, Service: s})
	}
	for _, d := range p.UpdateDestinations {
		ops = append(ops, destOp(ipvs.OpUpdateDestination, d))
	}
	for _, d := range p.DeleteDestinations {
		ops = append(ops, destOp(ipvs.OpDeleteDestination, d))
	}
	for _, k := range p.DeleteServices {
		ops = append(ops, ipvs.Op{Kind: ipvs.OpDeleteService, Service: ipvs.Service{ServiceKey: k}})
	}
	if len(ops) > 0 {
		failed := map[ipvs.ServiceKey]bool{}
		for i, err := range vs.Write(ops) {
			o := ops[i]
			switch o.Kind {
			case ipvs.OpAddService:
				if err != nil && !errors.Is(err, ipvs.ErrExists) {
					failed[o.Service.ServiceKey] = true
				}
				tally(err, ipvs.ErrExists, &c.ServicesAdded)
			case ipvs.OpAddDestination:
				if failed[o.Service.ServiceKey] {
					continue // its virtual server is not there; that error is reported
				}
				tally(err, ipvs.ErrExists, &c.DestinationsAdded)
			case ipvs.OpUpdateService:
				tally(err, nil, &c.ServicesUpdated)
			case ipvs.OpUpdateDestination:
				tally(err, nil, &c.DestinationsUpdated)
			case ipvs.OpDeleteDestination:
				tally(err, ipvs.ErrNotFound, &c.DestinationsDeleted)
			case ipvs.OpDeleteService:
				tally(err, ipvs.ErrNotFound, &c.ServicesDeleted)
			}
		}
	}

	// Addresses go after the virtual servers, as kube-proxy's do: a VIP
	// without its virtual server would hand its traffic to host sockets.
	if len(p.AddAddresses) > 0 {
		for i, err := range addrs.AddAddresses(p.AddAddresses) {
			tally(wrap(err, "add address %s", p.AddAddresses[i]), ipvs.ErrExists, &c.AddressesAdded)
		}
	}
	if len(p.DeleteAddresses) > 0 {
		for i, err := range addrs.DeleteAddresses(p.DeleteAddresses) {
			tally(wrap(err, "delete address %s", p.DeleteAddresses[i]), ipvs.ErrNotFound, &c.AddressesDeleted)
		}
	}
	return c, errs
}

func destOp(k ipvs.OpKind, d DestOp) ipvs.Op {
	return ipvs.Op{Kind: k, Service: ipvs.Service{ServiceKey: d.Key}, Dest: d.Dest}
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
