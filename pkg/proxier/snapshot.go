package proxier

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"k8s.io/apimachinery/pkg/types"
)

// Snapshot is everything a full sync reads from the kernel. At 5,000
// Services reading it takes seconds; ReadKernel may run on another
// goroutine while SyncServices goes on, and the resync of the snapshot
// (BeginResync) then leaves alone what those syncs wrote meanwhile (see
// BeginRead).
type Snapshot struct {
	hostAddrs []netif.HostAddress
	// addrs are the dummy link's addresses, as a set: made here, off the
	// sync loop when the read is.
	addrs  map[netip.Addr]bool
	kernel []ipvs.VirtualServer
	// byKey is where each of kernel is, for a resync to look them up
	// without building it in the loop.
	byKey vsIndex
	// members are the owned sets' members, and present the sets the
	// kernel has.
	members setMembers
	present map[string]bool
	err     error
}

// vsIndex is where each virtual server of a list is, by key: an index
// rather than a copy, which at 5,000 Services was 0.8 MB more of a
// snapshot.
type vsIndex map[ipvs.ServiceKey]int32

// lookup finds k's virtual server in vss, which idx indexes.
func (idx vsIndex) lookup(vss []ipvs.VirtualServer, k ipvs.ServiceKey) (ipvs.VirtualServer, bool) {
	i, ok := idx[k]
	if !ok {
		return ipvs.VirtualServer{}, false
	}
	return vss[i], true
}

// ReadKernel reads a Snapshot. It uses only the kernel interfaces, which
// are safe for concurrent use, and no proxier state.
func (p *Proxier) ReadKernel() Snapshot {
	var s Snapshot
	if s.hostAddrs, s.err = p.link.HostAddresses(); s.err != nil {
		return s
	}
	addrs, err := p.link.Addresses()
	if s.err = err; err != nil {
		return s
	}
	s.addrs = make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		s.addrs[a] = true
	}
	if s.kernel, s.err = p.ipvs.List(); s.err != nil {
		return s
	}
	s.byKey = make(vsIndex, len(s.kernel))
	for i, vs := range s.kernel {
		s.byKey[vs.ServiceKey] = int32(i)
	}
	s.present = make(map[string]bool, len(ownedSets))
	s.members = make(setMembers, len(ownedSets))
	var errs []error
	for i, set := range ownedSets {
		// Packed set by set: the entries of one set are garbage before
		// the next is read.
		es, err := p.sets.Entries(set.Name)
		switch {
		case errors.Is(err, ipset.ErrNotFound):
		case err != nil:
			errs = append(errs, err)
		default:
			s.present[set.Name] = true
			l := make(memberList, len(es))
			for j, e := range es {
				l[j] = newMember(set.Name, e)
			}
			// Sorted already, unless pkg/ipset's order and
			// compareMembers part.
			if !slices.IsSortedFunc(l, compareMembers) {
				slices.SortFunc(l, compareMembers)
			}
			s.members[i] = l
		}
	}
	if len(errs) > 0 {
		s.err = fmt.Errorf("read kernel sets: %w", errors.Join(errs...))
	}
	return s
}

// since is what was written after BeginRead: the snapshot being read may
// not show it, so the resync of that snapshot must not undo it.
type since struct {
	// keys are the virtual servers written, but those of the snapshot
	// once a resync has it (useSnapshotKeys): those are marked in
	// snapKeys, by their place in the snapshot. A resync diffs every key
	// it holds, and at 10,000 Services a map of them all, grown step by
	// step, was 3.2 MB of garbage in the test VM.
	keys     map[ipvs.ServiceKey]bool
	snapKeys []bool
	snap     vsIndex
	// addrs are the dummy link's addresses written, until a resync has
	// its snapshot (useSnapshot reads them, and nothing after): nil then.
	addrs   map[netip.Addr]bool
	members map[member]bool
	// names are the Services SyncServices was given: their input is newer
	// than a resync's.
	names map[types.NamespacedName]bool
	// foreign are the addresses a live read (checkNewAddrs) found another
	// tool's: newer than the snapshot, which cannot free them.
	foreign map[netip.Addr]bool
}

// BeginRead starts recording what SyncServices writes, for the resync
// (BeginResync) of a snapshot read from now on.
func (p *Proxier) BeginRead() {
	p.since = &since{keys: map[ipvs.ServiceKey]bool{}, addrs: map[netip.Addr]bool{}, members: map[member]bool{},
		names: map[types.NamespacedName]bool{}, foreign: map[netip.Addr]bool{}}
}

// useSnapshotKeys records the keys of snap's virtual servers by their
// place in it from now on, and stops recording addresses.
func (s *since) useSnapshotKeys(snap Snapshot) {
	s.snap, s.snapKeys, s.addrs = snap.byKey, make([]bool, len(snap.kernel)), nil
}

func (s *since) touchName(n types.NamespacedName) {
	if s != nil {
		s.names[n] = true
	}
}

func (s *since) touchKey(k ipvs.ServiceKey) {
	switch i, inSnap := s.snapIndex(k); {
	case s == nil:
	case inSnap:
		s.snapKeys[i] = true
	default:
		s.keys[k] = true
	}
}

// hasKey says whether k was written since the read.
func (s *since) hasKey(k ipvs.ServiceKey) bool {
	if i, inSnap := s.snapIndex(k); inSnap {
		return s.hasAt(i, k)
	}
	return s != nil && s.keys[k]
}

// hasAt is hasKey for the snapshot's virtual server at i, whose key is
// k, without looking its place up.
func (s *since) hasAt(i int32, k ipvs.ServiceKey) bool {
	return s.snapKeys[i] || s.keys[k] // keys: written before the resync had the snapshot
}

func (s *since) snapIndex(k ipvs.ServiceKey) (int32, bool) {
	if s == nil || s.snap == nil {
		return 0, false
	}
	i, ok := s.snap[k]
	return i, ok
}

func (s *since) touchAddr(a netip.Addr) {
	if s != nil && s.addrs != nil {
		s.addrs[a] = true
	}
}

func (s *since) foundForeign(a netip.Addr) {
	if s != nil {
		s.foreign[a] = true
	}
}

func (s *since) touchMember(m member) {
	if s != nil {
		s.members[m] = true
	}
}
