package reconcile

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

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

// Apply makes the plan's writes, the IPVS ones in Writes of up to
// writeChunk ops, so that a large plan (a cold start) costs few round trips
// to the kernel. Each write
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
	keyed := func(k ipvs.ServiceKey) func(error, error, *int) {
		return func(err, ok error, n *int) {
			if err != nil && !errors.Is(err, ok) {
				err = &KeyError{Key: k, Err: err}
			}
			tally(err, ok, n)
		}
	}
	failed := map[ipvs.ServiceKey]bool{}
	for ops := range opChunks(p) {
		for i, err := range vs.Write(ops) {
			o := ops[i]
			switch o.Kind {
			case ipvs.OpAddService:
				if err != nil && !errors.Is(err, ipvs.ErrExists) {
					failed[o.Service.ServiceKey] = true
				}
				keyed(o.Service.ServiceKey)(err, ipvs.ErrExists, &c.ServicesAdded)
			case ipvs.OpAddDestination:
				if failed[o.Service.ServiceKey] {
					continue // its virtual server is not there; that error is reported
				}
				keyed(o.Service.ServiceKey)(err, ipvs.ErrExists, &c.DestinationsAdded)
			case ipvs.OpUpdateService:
				keyed(o.Service.ServiceKey)(err, nil, &c.ServicesUpdated)
			case ipvs.OpUpdateDestination:
				keyed(o.Service.ServiceKey)(err, nil, &c.DestinationsUpdated)
			case ipvs.OpDeleteDestination:
				keyed(o.Service.ServiceKey)(err, ipvs.ErrNotFound, &c.DestinationsDeleted)
			case ipvs.OpDeleteService:
				keyed(o.Service.ServiceKey)(err, ipvs.ErrNotFound, &c.ServicesDeleted)
			}
		}
	}

	// Addresses go after the virtual servers, as kube-proxy's do: a VIP
	// without its virtual server would hand its traffic to host sockets.
	if len(p.AddAddresses) > 0 {
		for i, err := range addrs.AddAddresses(p.AddAddresses) {
			tally(addrError(err, "add", p.AddAddresses[i]), ipvs.ErrExists, &c.AddressesAdded)
		}
	}
	if kept := KeptAddresses(p, errs); len(kept) > 0 {
		p.DeleteAddresses = slices.DeleteFunc(slices.Clone(p.DeleteAddresses), func(a netip.Addr) bool { return kept[a] })
	}
	if len(p.DeleteAddresses) > 0 {
		for i, err := range addrs.DeleteAddresses(p.DeleteAddresses) {
			tally(addrError(err, "delete", p.DeleteAddresses[i]), ipvs.ErrNotFound, &c.AddressesDeleted)
		}
	}
	return c, errs
}

// KeptAddresses are the addresses the plan deletes that Apply keeps on the
// link because a virtual server on them failed to be deleted (errs):
// off the link, that virtual server would be no one's to the next sweep
// (neither on the link nor recorded), and its address taken for another
// tool's. On the link, the next resync deletes both.
func KeptAddresses(p Plan, errs []error) map[netip.Addr]bool {
	var kept map[netip.Addr]bool
	for _, err := range errs {
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key.FWMark != 0 || !slices.Contains(p.DeleteServices, ke.Key) {
			continue
		}
		if kept == nil {
			kept = map[netip.Addr]bool{}
		}
		kept[ke.Key.Addr] = true
	}
	return kept
}

// writeChunk is how many IPVS ops one Write gets: a cold start's 55,000
// would otherwise all be held at once, as ops and as requests.
const writeChunk = 4096

// opChunks yields the plan's IPVS ops in Apply's order, writeChunk at a
// time; the slice is reused.
func opChunks(p Plan) func(yield func([]ipvs.Op) bool) {
	return func(yield func([]ipvs.Op) bool) {
		ops := make([]ipvs.Op, 0, min(writeChunk, p.Len()))
		put := func(o ipvs.Op) bool {
			ops = append(ops, o)
			if len(ops) < writeChunk {
				return true
			}
			ok := yield(ops)
			ops = ops[:0]
			return ok
		}
		svc := func(k ipvs.OpKind, s ipvs.Service) ipvs.Op { return ipvs.Op{Kind: k, Service: s} }
		key := func(k ipvs.OpKind, key ipvs.ServiceKey) ipvs.Op { return svc(k, ipvs.Service{ServiceKey: key}) }
		if !putAll(put, ipvs.OpAddService, p.AddServices, svc) ||
			!putAll(put, ipvs.OpAddDestination, p.AddDestinations, destOp) ||
			!putAll(put, ipvs.OpUpdateService, p.UpdateServices, svc) ||
			!putAll(put, ipvs.OpUpdateDestination, p.UpdateDestinations, destOp) ||
			!putAll(put, ipvs.OpDeleteDestination, p.DeleteDestinations, destOp) ||
			!putAll(put, ipvs.OpDeleteService, p.DeleteServices, key) {
			return
		}
		if len(ops) > 0 {
			yield(ops)
		}
	}
}

// putAll puts one op of kind k for each item, in order, until put says stop.
func putAll[T any](put func(ipvs.Op) bool, k ipvs.OpKind, items []T, op func(ipvs.OpKind, T) ipvs.Op) bool {
	for _, it := range items {
		if !put(op(k, it)) {
			return false
		}
	}
	return true
}

func destOp(k ipvs.OpKind, d DestOp) ipvs.Op {
	return ipvs.Op{Kind: k, Service: ipvs.Service{ServiceKey: d.Key}, Dest: d.Dest}
}

// KeyError is a failed write of one virtual server or one of its real
// servers, so that the caller can tell which Service it was.
type KeyError struct {
	Key ipvs.ServiceKey
	Err error
}

func (e *KeyError) Error() string { return e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// AddrError is a failed write of one VIP on the dummy interface.
type AddrError struct {
	Addr netip.Addr
	Err  error
}

func (e *AddrError) Error() string { return e.Err.Error() }
func (e *AddrError) Unwrap() error { return e.Err }

// FailedAddresses are the addresses whose add or delete failed among errs.
func FailedAddresses(errs []error) map[netip.Addr]bool {
	var failed map[netip.Addr]bool
	for _, err := range errs {
		var ae *AddrError
		if !errors.As(err, &ae) {
			continue
		}
		if failed == nil {
			failed = map[netip.Addr]bool{}
		}
		failed[ae.Addr] = true
	}
	return failed
}

// FailedKeys are the virtual servers some write of which failed among errs.
func FailedKeys(errs []error) map[ipvs.ServiceKey]bool {
	failed := map[ipvs.ServiceKey]bool{}
	for _, err := range errs {
		var ke *KeyError
		if errors.As(err, &ke) {
			failed[ke.Key] = true
		}
	}
	return failed
}

func addrError(err error, verb string, a netip.Addr) error {
	if err == nil {
		return nil
	}
	return &AddrError{Addr: a, Err: fmt.Errorf("%s address %s: %w", verb, a, err)}
}
