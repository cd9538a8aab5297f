package proxier

import (
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
)

// scratch holds what syncServices fills and drops, kept from one call to
// the next. A periodic resync calls it once per chunk of Services,
// hundreds of times at thousands of them, and making these anew each time
// was a third of the resync's garbage (BenchmarkResyncStep), which the Go
// collector then marks while changes wait. Nothing in it outlives a call.
type scratch struct {
	states            []model.ServiceState
	built             map[types.NamespacedName]*model.ServiceState
	read              map[ipvs.ServiceKey]*ipvs.VirtualServer
	foreign, touched  map[ipvs.ServiceKey]bool
	desired, current  map[ipvs.ServiceKey]ipvs.VirtualServer
	addrs, want, have map[netip.Addr]bool
	foreignAddrs      map[netip.Addr]bool
	oldStates         map[types.NamespacedName]model.ServiceState
}

// scratchKeep is the most entries a scratch map may have held and still
// be kept: one that grew past it (a full sync's, or a burst's) is let go,
// so that the node does not hold its memory, nor clear it on every sync.
const scratchKeep = 1024

// take readies the scratch for a sync of n Services. states has room for
// n, so pointers into it stay good for the call.
func (s *scratch) take(n int) {
	s.states = slices.Grow(s.states[:0], n)
	fresh(&s.built)
	fresh(&s.read)
	fresh(&s.foreign)
	fresh(&s.touched)
	fresh(&s.desired)
	fresh(&s.current)
	fresh(&s.addrs)
	fresh(&s.want)
	fresh(&s.have)
	fresh(&s.foreignAddrs)
	fresh(&s.oldStates)
}

// release empties the scratch after a sync, so that it holds on to no
// state the sync dropped.
func (s *scratch) release() {
	clear(s.states[:cap(s.states)])
	if cap(s.states) > scratchKeep {
		s.states = nil
	}
	release(&s.built)
	release(&s.read)
	release(&s.foreign)
	release(&s.touched)
	release(&s.desired)
	release(&s.current)
	release(&s.addrs)
	release(&s.want)
	release(&s.have)
	release(&s.foreignAddrs)
	release(&s.oldStates)
}

func fresh[K comparable, V any](m *map[K]V) {
	if *m == nil {
		*m = map[K]V{}
	}
}

func release[K comparable, V any](m *map[K]V) {
	if len(*m) > scratchKeep {
		*m = nil
	} else {
		clear(*m)
	}
}
