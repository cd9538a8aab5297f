package netif

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Fake is an in-memory dummy link that answers like the kernel where
// ipvs-proxy depends on it: adding to a missing link fails, deleting from a
// missing link or deleting an absent address succeeds, and deleting the
// link drops its addresses. SetLinkType makes it another program's link of
// another type, which it refuses as the Linux implementation does.
type Fake struct {
	mu     sync.Mutex
	name   string
	exists bool
	typ    string // while it exists: "dummy", or what SetLinkType set
	addrs  map[netip.Prefix]bool
	host   []HostAddress

	// Writes counts, and Log names, every request the Linux implementation
	// would send to the kernel as a write: AddAddress and DeleteAddress on an
	// existing link always, EnsureLink and DeleteLink only when they change
	// something (their first step is a read). A sync that finds nothing to do
	// leaves both unchanged.
	Writes int
	Log    []string
	// FailOn makes AddAddress and DeleteAddress of this address fail, to
	// test that one failure does not stop the others.
	FailOn map[netip.Addr]error
}

var _ Interface = &Fake{}

// NewFake returns a fake whose link does not exist yet.
func NewFake(linkName string) *Fake {
	return &Fake{name: linkName, addrs: map[netip.Prefix]bool{}, FailOn: map[netip.Addr]error{}}
}

// SetHostAddresses sets what HostAddresses returns.
func (f *Fake) SetHostAddresses(hs []HostAddress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.host = slices.Clone(hs)
}

// SetLinkType makes the link exist with type typ, as netlink names it
// ("veth", "bridge"), keeping its addresses: with a type other than
// "dummy", it stands for another program's link under the name, with the
// addresses that program put there (add them before). No write is counted.
func (f *Fake) SetLinkType(typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exists, f.typ = true, typ
}

func (f *Fake) write(what string) {
	f.Writes++
	f.Log = append(f.Log, what)
}

// refused is the Linux implementation's refusal of a link of another type
// (f.mu held).
func (f *Fake) refused() error {
	if f.exists && f.typ != "dummy" {
		return notDummy(f.name, f.typ, "dummy")
	}
	return nil
}

func (f *Fake) EnsureLink() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refused(); err != nil {
		return err
	}
	if !f.exists {
		f.exists, f.typ = true, "dummy"
		f.write("create link " + f.name)
	}
	return nil
}

func (f *Fake) DeleteLink() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refused(); err != nil {
		return err
	}
	if f.exists {
		f.exists = false
		clear(f.addrs)
		f.write("delete link " + f.name)
	}
	return nil
}

func (f *Fake) Addresses() ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refused(); err != nil {
		return nil, err
	}
	out := []netip.Addr{}
	for p := range f.addrs {
		out = append(out, p.Addr())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

func (f *Fake) AddAddress(a netip.Addr) error {
	return f.address("add", "to", a, true)
}

func (f *Fake) DeleteAddress(a netip.Addr) error {
	return f.address("delete", "from", a, false)
}

// address is AddAddress and DeleteAddress. A missing link fails an add and
// is success for a delete, as in the kernel; a link of another type fails
// both, before any check of the address, as the Linux implementation does.
func (f *Fake) address(verb, prep string, a netip.Addr, add bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refused(); err != nil {
		return fmt.Errorf("%s address %s %s %s: %w", verb, a, prep, f.name, err)
	}
	p, err := hostPrefix(a)
	if err != nil {
		return fmt.Errorf("%s address %s %s %s: %w", verb, a, prep, f.name, err)
	}
	switch {
	case !f.exists && add:
		err = errors.New("link not found")
	case !f.exists:
	default:
		f.write(verb + " " + p.String())
		switch err = f.FailOn[p.Addr()]; {
		case err != nil:
		case add:
			f.addrs[p] = true
		default:
			delete(f.addrs, p)
		}
	}
	if err != nil {
		return fmt.Errorf("%s address %s %s %s: %w", verb, p, prep, f.name, err)
	}
	return nil
}

func (f *Fake) AddAddresses(as []netip.Addr) []error { return each(as, f.AddAddress) }

func (f *Fake) DeleteAddresses(as []netip.Addr) []error { return each(as, f.DeleteAddress) }

func each(as []netip.Addr, call func(netip.Addr) error) []error {
	errs := make([]error, len(as))
	for i, a := range as {
		errs[i] = call(a)
	}
	return errs
}

func (f *Fake) HostAddresses() ([]HostAddress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Like the kernel read, the dummy's own addresses are never host addresses.
	out := []HostAddress{}
	for _, h := range f.host {
		if h.Link != f.name {
			out = append(out, h)
		}
	}
	sortHostAddresses(out)
	return out, nil
}

func (f *Fake) Link() (*LinkState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists {
		return nil, nil
	}
	return &LinkState{Type: f.typ}, nil
}

func (f *Fake) Dump() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists {
		return Format(f.name, nil, nil), nil
	}
	ps := make([]netip.Prefix, 0, len(f.addrs))
	for p := range f.addrs {
		ps = append(ps, p)
	}
	return Format(f.name, &LinkState{Type: f.typ}, ps), nil
}
