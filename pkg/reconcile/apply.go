package reconcile

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Addresses is the part of the dummy interface Apply writes to.
type Addresses interface {
	AddAddress(netip.Addr) error
	DeleteAddress(netip.Addr) error
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

// Apply makes the plan's writes. Each write stands alone: one that fails is
// reported and the rest go on, so one broken Service never holds up the
// others; the next sync retries what failed. "Already exists" on an add and
// "not found" on a delete mean the kernel is already as wanted.
func Apply(vs ipvs.Interface, addrs Addresses, p Plan) (Counts, []error) {
	var c Counts
	var errs []error
	do := func(err error, ok error, n *int) {
		switch {
		case err == nil:
			*n++
		case errors.Is(err, ok):
		default:
			errs = append(errs, err)
		}
	}
	for _, a := range p.AddAddresses {
		do(wrap(addrs.AddAddress(a), "add address %s", a), ipvs.ErrExists, &c.AddressesAdded)
	}
	failed := map[ipvs.ServiceKey]bool{}
	for _, s := range p.AddServices {
		err := vs.AddService(s)
		if err != nil && !errors.Is(err, ipvs.ErrExists) {
			failed[s.ServiceKey] = true
		}
		do(err, ipvs.ErrExists, &c.ServicesAdded)
	}
	for _, d := range p.AddDestinations {
		if failed[d.Key] {
			continue // its virtual server is not there; the error is already reported
		}
		do(vs.AddDestination(d.Key, d.Dest), ipvs.ErrExists, &c.DestinationsAdded)
	}
	for _, s := range p.UpdateServices {
		do(vs.UpdateService(s), nil, &c.ServicesUpdated)
	}
	for _, d := range p.UpdateDestinations {
		do(vs.UpdateDestination(d.Key, d.Dest), nil, &c.DestinationsUpdated)
	}
	for _, d := range p.DeleteDestinations {
		do(vs.DeleteDestination(d.Key, d.Dest), ipvs.ErrNotFound, &c.DestinationsDeleted)
	}
	for _, k := range p.DeleteServices {
		do(vs.DeleteService(k), ipvs.ErrNotFound, &c.ServicesDeleted)
	}
	// Addresses go last, after their virtual servers: a VIP without a
	// virtual server would hand its traffic to host sockets.
	for _, a := range p.DeleteAddresses {
		do(wrap(addrs.DeleteAddress(a), "delete address %s", a), ipvs.ErrNotFound, &c.AddressesDeleted)
	}
	return c, errs
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
