package proxier

import (
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
)

// index is what every Service was built to and what it holds once the
// precedence rule (model.Wins) has settled who gets each address:port that
// several Services want, with the reference counts of what they hold.
// Both kinds of sync change it only through update, so a full sync and a
// change-by-change one cannot come to different answers.
type index struct {
	// built is each Service as the model built it. What a Service holds is
	// its built state less the keys it lost; cut has it for the few that
	// lost some, so that the common case keeps one copy (see held).
	built, cut map[types.NamespacedName]model.ServiceState
	// wants lists, for every key some Service wants, those Services best
	// first by the precedence rule.
	wants map[ipvs.ServiceKey][]claim
	// foreign are keys where the kernel holds a virtual server ipvs-proxy
	// did not make: no Service gets them.
	foreign map[ipvs.ServiceKey]bool
	// foreignAddrs are addresses off the dummy link (and not the node's)
	// where the kernel holds a virtual server ipvs-proxy did not make, on
	// any port: no Service gets an externalIP or LoadBalancer IP entry
	// there, so the address never goes on the link, where that virtual
	// server would be taken for ipvs-proxy's (see chosenProblem).
	foreignAddrs map[netip.Addr]bool
	// vipRefs and memberRefs count the held states that want each VIP and
	// each kernel set member.
	vipRefs    map[netip.Addr]int
	memberRefs map[member]int
	// noLocal sums the held states' NoLocal counts.
	noLocal model.NoLocalCounts
	// healthChecks are the held states' health-check node ports.
	healthChecks map[types.NamespacedName]model.HealthCheck
	// before records, when not nil, whether each member whose count moved
	// was in some held state before: see memberWrites.
	before map[member]bool
	// from is the input each built state was built from, by the builder
	// in use (see sameInput).
	from map[types.NamespacedName]model.ServiceInput
	// alloc counts the built states' clusterIPs and health-check node
	// ports, which no chosen address may take (model.Allocated).
	alloc model.Allocated
}

// claim is one Service's want of a key, with what the rule compares.
type claim struct {
	name   types.NamespacedName
	chosen bool
	lb     bool
	prec   model.Precedence
}

// heldChange is a Service whose held state changed, and how.
type heldChange struct {
	name     types.NamespacedName
	old, new model.ServiceState
}

func newIndex(n int) *index {
	return &index{
		built:        make(map[types.NamespacedName]model.ServiceState, n),
		cut:          map[types.NamespacedName]model.ServiceState{},
		wants:        make(map[ipvs.ServiceKey][]claim, n),
		foreign:      map[ipvs.ServiceKey]bool{},
		foreignAddrs: map[netip.Addr]bool{},
		vipRefs:      make(map[netip.Addr]int, n),
		memberRefs:   make(map[member]int, 2*n),
		healthChecks: map[types.NamespacedName]model.HealthCheck{},
		from:         make(map[types.NamespacedName]model.ServiceInput, n),
	}
}

// held is what name holds: its built state less the keys it lost; ok is
// false when it has no built state.
func (x *index) held(name types.NamespacedName) (st model.ServiceState, ok bool) {
	if st, ok := x.cut[name]; ok {
		return st, true
	}
	st, ok = x.built[name]
	return st, ok
}

// heldState is what name holds (nothing when it has no built state).
func (x *index) heldState(name types.NamespacedName) model.ServiceState {
	st, _ := x.held(name)
	return st
}

// allHeld yields every Service's held state.
func (x *index) allHeld() iter.Seq2[types.NamespacedName, model.ServiceState] {
	return func(yield func(types.NamespacedName, model.ServiceState) bool) {
		for name := range x.built {
			if st, _ := x.held(name); !yield(name, st) {
				return
			}
		}
	}
}

// sameInput reports whether in is the very objects name's built state was
// built from (the cache's objects are never changed in place: a change is
// a new object), so that building it again would give that state.
func (x *index) sameInput(name types.NamespacedName, in model.ServiceInput) bool {
	prev, ok := x.from[name]
	if !ok || prev.Service != in.Service || !slices.Equal(prev.Slices, in.Slices) {
		return false
	}
	_, built := x.built[name]
	return built
}

// update sets the built state of the given Services (nil: gone) and marks
// keys and addresses foreign or not, then settles every Service those
// touch, the changed ones and those that gained or lost a key through
// them. It returns the Services whose held state changed, in name order,
// with the reference counts already moved.
func (x *index) update(built map[types.NamespacedName]*model.ServiceState, foreign map[ipvs.ServiceKey]bool, foreignAddrs map[netip.Addr]bool) []heldChange {
	affected := make(map[types.NamespacedName]bool, len(built))
	touch := func(k ipvs.ServiceKey) {
		for _, c := range x.wants[k] {
			affected[c.name] = true
		}
	}
	for k, f := range foreign {
		if x.foreign[k] != f {
			touch(k)
			if f {
				x.foreign[k] = true
			} else {
				delete(x.foreign, k)
			}
		}
	}
	var moved map[netip.Addr]bool
	for a, f := range foreignAddrs {
		if x.foreignAddrs[a] != f {
			if moved == nil {
				moved = map[netip.Addr]bool{}
			}
			moved[a] = true
			if f {
				x.foreignAddrs[a] = true
			} else {
				delete(x.foreignAddrs, a)
			}
		}
	}
	if moved != nil {
		// Rare (another tool's virtual server came or went): worth a
		// look at every key.
		for k := range x.wants {
			if moved[k.Addr] {
				touch(k)
			}
		}
	}
	// The claims move first; the built states are replaced below, once
	// what each Service held before has been read from them.
	reAlloc := false
	for name, st := range built {
		affected[name] = true
		// Before the claims' shortcut: a new health-check port moves no
		// claim. Only a Service whose clusterIPs or health-check port
		// changed moves the counts, since re-settling every chosen
		// address is O(Services).
		if prev, ok := x.built[name]; !ok || gone(st) || !model.SameAllocation(&prev, st) {
			if ok {
				reAlloc = x.alloc.Add(&prev, -1) || reAlloc
			}
			if !gone(st) {
				reAlloc = x.alloc.Add(st, +1) || reAlloc
			}
		}
		if prev, ok := x.built[name]; ok && !gone(st) && sameClaims(&prev, st) {
			continue // a resync's unchanged Service: nothing to move
		}
		for _, e := range x.built[name].Entries {
			touch(e.ServiceKey)
			x.unclaim(e.ServiceKey, name)
		}
		if gone(st) {
			continue
		}
		for _, e := range st.Entries {
			x.claim(e.ServiceKey, claim{name: name, chosen: e.Chosen, lb: e.LoadBalancer, prec: st.Precedence})
			touch(e.ServiceKey)
		}
	}
	if reAlloc {
		// An allocated address or port came or went: every Service with
		// a chosen address is refused again.
		for name, st := range x.built {
			if slices.ContainsFunc(st.Entries, func(e model.Entry) bool { return e.Chosen }) {
				affected[name] = true
			}
		}
	}
	names := slices.Collect(maps.Keys(affected))
	slices.SortFunc(names, model.CompareNames)
	var changes []heldChange
	for _, name := range names {
		old, had := x.held(name)
		st, ok := x.built[name]
		if b, rebuilt := built[name]; rebuilt {
			if ok = !gone(b); ok {
				st = *b
				x.built[name] = st
			} else {
				st = model.ServiceState{}
				delete(x.built, name)
			}
		}
		cut := false
		if ok {
			st, cut = x.settle(name, st)
		}
		if cut {
			x.cut[name] = st
		} else {
			delete(x.cut, name)
		}
		if !ok && !had || ok && had && old.Equal(&st) {
			continue
		}
		x.shift(old, st)
		if st.HealthCheck != nil {
			x.healthChecks[name] = *st.HealthCheck
		} else {
			delete(x.healthChecks, name)
		}
		changes = append(changes, heldChange{name: name, old: old, new: st})
	}
	return changes
}

// sameClaims reports whether b claims exactly what a does, from the same
// entries (not equal ones, which would take comparing them): a resync
// passes unchanged Services' built states as they are. Sound because a
// built state's entries are never written, and each build makes its own.
func sameClaims(a, b *model.ServiceState) bool {
	return len(a.Entries) == len(b.Entries) && (len(a.Entries) == 0 || &a.Entries[0] == &b.Entries[0]) &&
		a.Precedence == b.Precedence
}

// gone reports whether a built state has nothing to hold or report.
func gone(st *model.ServiceState) bool {
	return st == nil || len(st.Entries) == 0 && len(st.Problems) == 0
}

// settle applies the precedence rule and the foreign keys to one built
// state; cut says whether that took a key from it.
func (x *index) settle(name types.NamespacedName, st model.ServiceState) (held model.ServiceState, cut bool) {
	refused := x.alloc.Refused(&st)
	var lost map[ipvs.ServiceKey]string
	for _, e := range st.Entries {
		problem := ""
		switch {
		case refused[e.ServiceKey] != "" && x.wants[e.ServiceKey][0].name == name && !x.foreign[e.ServiceKey]:
			problem = refused[e.ServiceKey]
		case x.foreign[e.ServiceKey]:
			problem = model.ForeignProblem(e)
		case x.refused(e.ServiceKey, e.Chosen):
			problem = chosenProblem(e)
		case x.wants[e.ServiceKey][0].name != name:
			problem = model.TakenProblem(e)
		default:
			continue
		}
		if lost == nil {
			lost = map[ipvs.ServiceKey]string{}
		}
		lost[e.ServiceKey] = problem
	}
	return st.Without(lost), len(lost) > 0
}

// claim inserts c among the key's claimants, best first. Most keys have one.
func (x *index) claim(k ipvs.ServiceKey, c claim) {
	cs := x.wants[k]
	i := 0
	for i < len(cs) && model.Wins(model.Entry{Chosen: cs[i].chosen, LoadBalancer: cs[i].lb}, cs[i].prec, model.Entry{Chosen: c.chosen, LoadBalancer: c.lb}, c.prec) {
		i++
	}
	x.wants[k] = slices.Insert(cs, i, c)
}

func (x *index) unclaim(k ipvs.ServiceKey, name types.NamespacedName) {
	cs := slices.DeleteFunc(x.wants[k], func(c claim) bool { return c.name == name })
	if len(cs) == 0 {
		delete(x.wants, k)
	} else {
		x.wants[k] = cs
	}
}

// shift moves one Service's references from the state it held to the one
// it holds now. A group of members the two states share exactly (most
// changes move an endpoint, and keep the VIPs and their ports) is left
// out rather than counted down and up again: in the test VM those map
// writes were a sixth of a change-by-change sync's CPU.
func (x *index) shift(old, now model.ServiceState) {
	dropSame(&old.VIPs, &now.VIPs)
	dropSame(&old.ExternalVIPs, &now.ExternalVIPs)
	dropSame(&old.Hairpin, &now.Hairpin)
	dropSame(&old.KeepSource, &now.KeepSource)
	dropSame(&old.ServicePorts, &now.ServicePorts)
	dropSame(&old.NoLocalEndpoints, &now.NoLocalEndpoints)
	dropSame(&old.Firewall, &now.Firewall)
	dropSame(&old.SourceRanges, &now.SourceRanges)
	dropSame(&old.ShortCircuit, &now.ShortCircuit)
	x.move(old, -1)
	x.move(now, +1)
}

// dropSame empties both lists when they are equal (in shift's copies).
func dropSame[E comparable](a, b *[]E) {
	if slices.Equal(*a, *b) {
		*a, *b = nil, nil
	}
}

// move adds (by +1) or removes (by -1) one held state's references: its
// VIPs and set members (membersOf), and its NoLocal counts.
func (x *index) move(st model.ServiceState, by int) {
	x.noLocal.Add(st.NoLocal, by)
	for _, v := range st.VIPs {
		if x.vipRefs[v] += by; x.vipRefs[v] <= 0 {
			delete(x.vipRefs, v)
		}
	}
	for m := range membersOf(st) {
		if _, seen := x.before[m]; !seen && x.before != nil {
			x.before[m] = x.memberRefs[m] > 0
		}
		if x.memberRefs[m] += by; x.memberRefs[m] <= 0 {
			delete(x.memberRefs, m)
		}
	}
}

// trackMembers starts recording which members move, for memberWrites.
func (x *index) trackMembers() { x.before = map[member]bool{} }

// memberWrites returns the set members to add and to delete since
// trackMembers: those whose count crossed zero, and only those, so one
// endpoint change writes only the members it really changes.
func (x *index) memberWrites() (add, del []member) {
	for m, was := range x.before {
		switch now := x.memberRefs[m] > 0; {
		case now && !was:
			add = append(add, m)
		case was && !now:
			del = append(del, m)
		}
	}
	x.before = nil
	return add, del
}

// holder is the Service that holds k, if any.
func (x *index) holder(k ipvs.ServiceKey) (types.NamespacedName, bool) {
	cs := x.wants[k]
	if len(cs) == 0 || x.foreign[k] || x.refused(k, cs[0].chosen) {
		return types.NamespacedName{}, false
	}
	return cs[0].name, true
}

// wanted reports whether some Service wants k (held or not).
func (x *index) wanted(k ipvs.ServiceKey) bool { return len(x.wants[k]) > 0 }

// refused reports whether an entry at k is refused for its address: an
// externalIP or LoadBalancer IP (chosen) where another tool's virtual
// server is. A clusterIP or a node port is never refused for its address:
// foreignAddrs holds no node address, and a clusterIP is the API server's.
func (x *index) refused(k ipvs.ServiceKey, chosen bool) bool {
	return chosen && k.FWMark == 0 && x.foreignAddrs[k.Addr]
}

// chosenProblem is the problem a Service gets for an externalIP or
// LoadBalancer IP entry whose address holds another tool's virtual server.
func chosenProblem(e model.Entry) string {
	return fmt.Sprintf("%s %s: %s holds a virtual server ipvs-proxy did not create; skipped", e.Owner.Port, e.ServiceKey, e.Addr)
}
