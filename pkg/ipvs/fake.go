package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Fake is an in-memory IPVS table that behaves like the kernel where
// ipvs-proxy depends on it: adding what exists fails, deleting or updating
// what is absent fails, and a virtual server's destinations go with it.
type Fake struct {
	mu  sync.Mutex
	vss map[ServiceKey]*VirtualServer
	// Writes counts every call that changed (or tried to change) the table.
	Writes int
	// FailOn makes any write that touches this key fail, to test that one
	// broken virtual server does not stop the others.
	FailOn map[ServiceKey]error
}

var _ Interface = &Fake{}

func NewFake() *Fake { return &Fake{vss: map[ServiceKey]*VirtualServer{}} }

// Dump prints the table the way `status` does, without counters.
func (f *Fake) Dump() string {
	vss, _ := f.List()
	return Format(vss, nil, false)
}

func (f *Fake) List() ([]VirtualServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]VirtualServer, 0, len(f.vss))
	for _, vs := range f.vss {
		c := *vs
		c.Destinations = slices.Clone(vs.Destinations)
		out = append(out, c)
	}
	return Sorted(out), nil
}

func (f *Fake) Services() ([]Service, error) {
	vss, _ := f.List()
	out := make([]Service, len(vss))
	for i, vs := range vss {
		out[i] = vs.Service
	}
	return out, nil
}

func (f *Fake) Get(key ServiceKey) (VirtualServer, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, ok := f.vss[key]
	if !ok {
		return VirtualServer{}, false, nil
	}
	c := *vs
	c.Destinations = slices.Clone(vs.Destinations)
	return c, true, nil
}

func (f *Fake) write(key ServiceKey) error {
	f.Writes++
	return f.FailOn[key]
}

func (f *Fake) AddService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(s.ServiceKey); err != nil {
		return err
	}
	if _, ok := f.vss[s.ServiceKey]; ok {
		return fmt.Errorf("add service %s: %w", s.ServiceKey, ErrExists)
	}
	f.vss[s.ServiceKey] = &VirtualServer{Service: s}
	return nil
}

func (f *Fake) UpdateService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(s.ServiceKey); err != nil {
		return err
	}
	vs, ok := f.vss[s.ServiceKey]
	if !ok {
		return fmt.Errorf("update service %s: %w", s.ServiceKey, ErrNotFound)
	}
	vs.Service = s
	return nil
}

func (f *Fake) DeleteService(key ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(key); err != nil {
		return err
	}
	if _, ok := f.vss[key]; !ok {
		return fmt.Errorf("delete service %s: %w", key, ErrNotFound)
	}
	delete(f.vss, key)
	return nil
}

func (f *Fake) AddDestination(key ServiceKey, d Destination) error {
	return f.changeDestination(key, d, func(vs *VirtualServer, i int) error {
		if i >= 0 {
			return ErrExists
		}
		vs.Destinations = append(vs.Destinations, Destination{Addr: d.Addr, Port: d.Port, Weight: d.Weight})
		return nil
	})
}

func (f *Fake) UpdateDestination(key ServiceKey, d Destination) error {
	return f.changeDestination(key, d, func(vs *VirtualServer, i int) error {
		if i < 0 {
			return ErrNotFound
		}
		vs.Destinations[i].Weight = d.Weight
		return nil
	})
}

func (f *Fake) DeleteDestination(key ServiceKey, d Destination) error {
	return f.changeDestination(key, d, func(vs *VirtualServer, i int) error {
		if i < 0 {
			return ErrNotFound
		}
		vs.Destinations = slices.Delete(vs.Destinations, i, i+1)
		return nil
	})
}

func (f *Fake) Write(ops []Op) []error { return WriteEach(f, ops) }

// SetCounters sets a destination's connection counters, as traffic would.
func (f *Fake) SetCounters(key ServiceKey, dst netip.AddrPort, active, inactive uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if vs, ok := f.vss[key]; ok {
		for i := range vs.Destinations {
			if vs.Destinations[i].AddrPort() == dst {
				vs.Destinations[i].ActiveConns, vs.Destinations[i].InactiveConns = active, inactive
			}
		}
	}
}

func (f *Fake) changeDestination(key ServiceKey, d Destination, change func(*VirtualServer, int) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(key); err != nil {
		return err
	}
	vs, ok := f.vss[key]
	if !ok {
		return fmt.Errorf("destination %s of %s: %w", d.AddrPort(), key, ErrNotFound)
	}
	i := slices.IndexFunc(vs.Destinations, func(x Destination) bool { return x.AddrPort() == d.AddrPort() })
	if err := change(vs, i); err != nil {
		return fmt.Errorf("destination %s of %s: %w", d.AddrPort(), key, err)
	}
	return nil
}
