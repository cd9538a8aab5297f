package proxier

import (
	"errors"
	"iter"
	"net/netip"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
)

// The kernel sets the iptables rules match on (see pkg/iptables). The
// masquerade sets hold only this node's endpoints; the filter sets hold
// VIPs and service ports, which change with Services, not with endpoints.
// Like the virtual servers, they are listed whole only by SyncAll and
// otherwise changed one member at a time.
var ownedSets = []ipset.Set{
	{Name: iptables.HairpinSet(iptables.IPv4), Type: ipset.HashIPPortIP},
	{Name: iptables.HairpinSet(iptables.IPv6), Type: ipset.HashIPPortIP, IPv6: true},
	{Name: iptables.KeepSourceSet(iptables.IPv4), Type: ipset.HashIPPort},
	{Name: iptables.KeepSourceSet(iptables.IPv6), Type: ipset.HashIPPort, IPv6: true},
	{Name: iptables.VIPSet(iptables.IPv4), Type: ipset.HashIP},
	{Name: iptables.VIPSet(iptables.IPv6), Type: ipset.HashIP, IPv6: true},
	{Name: iptables.ServicePortsSet(iptables.IPv4), Type: ipset.HashIPPort},
	{Name: iptables.ServicePortsSet(iptables.IPv6), Type: ipset.HashIPPort, IPv6: true},
	{Name: iptables.NoLocalEndpointsSet(iptables.IPv4), Type: ipset.HashIPPort},
	{Name: iptables.NoLocalEndpointsSet(iptables.IPv6), Type: ipset.HashIPPort, IPv6: true},
	{Name: iptables.ExternalVIPSet(iptables.IPv4), Type: ipset.HashIP},
	{Name: iptables.ExternalVIPSet(iptables.IPv6), Type: ipset.HashIP, IPv6: true},
	{Name: iptables.FirewallSet(iptables.IPv4), Type: ipset.HashIPPort},
	{Name: iptables.FirewallSet(iptables.IPv6), Type: ipset.HashIPPort, IPv6: true},
	{Name: iptables.SourceRangesSet(iptables.IPv4), Type: ipset.HashIPPortNet},
	{Name: iptables.SourceRangesSet(iptables.IPv6), Type: ipset.HashIPPortNet, IPv6: true},
	{Name: iptables.ShortCircuitSet(iptables.IPv4), Type: ipset.HashIPPort, SkbInfo: true},
	{Name: iptables.ShortCircuitSet(iptables.IPv6), Type: ipset.HashIPPort, IPv6: true, SkbInfo: true},
}

// OwnedSets are the sets the proxier keeps, for cleanup.
func OwnedSets() []ipset.Set { return append([]ipset.Set(nil), ownedSets...) }

// membersOf yields the set members one Service wants, without building a
// list: a full sync goes through every Service's.
func membersOf(st model.ServiceState) iter.Seq[member] {
	return func(yield func(member) bool) {
		for _, m := range st.Hairpin {
			if !yield(newMember(iptables.HairpinSet(family(m)), ipset.Entry{IP: m.Addr, Proto: proto(m), Port: m.Port, IP2: m.Addr})) {
				return
			}
		}
		for _, group := range []struct {
			set     func(iptables.Family) string
			members []model.SetMember
		}{{iptables.KeepSourceSet, st.KeepSource}, {iptables.ServicePortsSet, st.ServicePorts}, {iptables.NoLocalEndpointsSet, st.NoLocalEndpoints},
			{iptables.FirewallSet, st.Firewall}} {
			for _, m := range group.members {
				if !yield(newMember(group.set(family(m)), ipset.Entry{IP: m.Addr, Proto: proto(m), Port: m.Port})) {
					return
				}
			}
		}
		for _, m := range st.SourceRanges {
			for _, net := range storableNets(m.Source) {
				if !yield(newMember(iptables.SourceRangesSet(family(m.SetMember)), ipset.Entry{IP: m.Addr, Proto: proto(m.SetMember), Port: m.Port, Net: net})) {
					return
				}
			}
		}
		for _, m := range st.ShortCircuit {
			if !yield(newMember(iptables.ShortCircuitSet(family(m.SetMember)), ipset.Entry{IP: m.Addr, Proto: proto(m.SetMember), Port: m.Port, Mark: m.Mark})) {
				return
			}
		}
		for _, v := range st.VIPs {
			if !yield(newMember(iptables.VIPSet(family(model.SetMember{Addr: v})), ipset.Entry{IP: v})) {
				return
			}
		}
		for _, v := range st.ExternalVIPs {
			if !yield(newMember(iptables.ExternalVIPSet(family(model.SetMember{Addr: v})), ipset.Entry{IP: v})) {
				return
			}
		}
	}
}

func family(m model.SetMember) iptables.Family {
	if m.Addr.Is4() {
		return iptables.IPv4
	}
	return iptables.IPv6
}

// proto is the protocol as ipset spells it. The three the model builds
// are constants: strings.ToLower made a string for every member of every
// Service a resync went through.
func proto(m model.SetMember) string {
	switch m.Proto {
	case ipvs.TCP:
		return "tcp"
	case ipvs.UDP:
		return "udp"
	case ipvs.SCTP:
		return "sctp"
	}
	return strings.ToLower(string(m.Proto))
}

// EnsureSets creates the sets if they are missing, so that rules naming
// them can be written before any virtual server is.
func (p *Proxier) EnsureSets() error {
	var errs []error
	for _, s := range ownedSets {
		if err := p.sets.Ensure(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncAllSets makes the sets exist and hold exactly what p.idx.memberRefs
// says, from the members the snapshot read; but it returns the stale
// members of the deny-list sets, not deleted, for delDenials once the
// virtual servers and VIPs they guard are gone.
func (p *Proxier) syncAllSets(res *Result, have setMembers) (denials []member) {
	wanted, present := make([]int, len(ownedSets)), make([]int, len(ownedSets))
	for m := range p.idx.memberRefs {
		wanted[m.set]++
	}
	// A resync usually finds every wanted member there: then it looks
	// for none that is missing.
	missing := make([][]ipset.Entry, len(ownedSets))
	var short bool
	stale := make([][]ipset.Entry, len(ownedSets))
	for i := range ownedSets {
		for _, m := range have[i] {
			switch {
			case p.idx.memberRefs[m] > 0:
				present[i]++ // kernel sets hold no duplicates
			case denySets[m.set]:
				denials = append(denials, m)
			default:
				stale[i] = append(stale[i], m.entry())
			}
		}
		short = short || present[i] < wanted[i]
	}
	if short {
		for i := range ownedSets {
			if present[i] < wanted[i] {
				missing[i] = make([]ipset.Entry, 0, wanted[i]-present[i])
			}
		}
		for m := range p.idx.memberRefs {
			if present[m.set] < wanted[m.set] && !have.has(m) {
				missing[m.set] = append(missing[m.set], m.entry())
			}
		}
	}
	for i, s := range ownedSets {
		if err := p.sets.Ensure(s); err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		// Batched: a cold start adds a member or more per Service.
		if len(stale[i]) > 0 {
			for j, err := range p.sets.DelAll(s.Name, stale[i]) {
				p.setWrite(res, s.Name, stale[i][j], err, &res.Counts.SetMembersDeleted)
			}
		}
		if len(missing[i]) > 0 {
			for j, err := range p.sets.AddAll(s.Name, missing[i]) {
				p.setWrite(res, s.Name, missing[i][j], err, &res.Counts.SetMembersAdded)
			}
		}
	}
	return denials
}

// writeMembers writes the set members whose reference count crossed zero
// in the last index update, but for the adds of marked members, which it
// returns, to be written after the virtual servers (addMembers): a
// short-circuit member sends in-cluster clients to its firewall-mark
// virtual server, which must hold the member's Service's real servers
// first. A mark that changed hands (two port names' marks collide, and the
// holder gave it up) would otherwise lead the new holder's clients to the
// old holder's pods until the virtual server's writes.
//
// It also returns the keys whose firewall member could not be added: their
// virtual servers must not serve without the ranges that guard them.
//
// And it returns the deletes of deny-list members (denyAfter), which it
// does not write: see delDenials.
func (p *Proxier) writeMembers(res *Result) (marked, denyAfter []member, unguarded []ipvs.ServiceKey) {
	add, del := p.idx.memberWrites()
	del = slices.DeleteFunc(del, func(m member) bool {
		if denySets[m.set] {
			denyAfter = append(denyAfter, m)
			return true
		}
		return false
	})
	// A marked member that changes its mark is one kernel member: delete
	// the old one first, or the delete would take the new one with it.
	for _, m := range del {
		if m.mark != 0 {
			p.delMember(m, res)
		}
	}
	for _, m := range add {
		if m.mark != 0 {
			marked = append(marked, m)
			continue
		}
		if k, ok := p.addMember(m, res); !ok {
			unguarded = append(unguarded, k)
		}
	}
	for _, m := range del {
		if m.mark == 0 {
			p.delMember(m, res)
		}
	}
	for m := range p.undeleted.members {
		if p.idx.memberRefs[m] > 0 {
			delete(p.undeleted.members, m) // wanted again, and still there
			continue
		}
		p.delMember(m, res)
	}
	return marked, denyAfter, unguarded
}

// denySets are the indexes in ownedSets of the sets whose members make the
// rules drop or reject: the firewall (an LB IP:port that admits only its
// source ranges), the VIPs (whose ports no Service has are refused), and
// externalTrafficPolicy Local's no-local-endpoints. A member of one taken
// away before what it guards is gone opens that to everyone: an LB
// IP:port to every source, a VIP's other ports to the node's sockets.
var denySets = func() map[uint8]bool {
	out := map[uint8]bool{}
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		for _, name := range []string{iptables.FirewallSet(fam), iptables.VIPSet(fam), iptables.NoLocalEndpointsSet(fam)} {
			out[setIndex[name]] = true
		}
	}
	return out
}()

// delDenials deletes deny-list members no Service wants (writeMembers'
// denyAfter, or a full sync's or a resync's stale ones) once the plan is
// written, but those that still guard something: a VIP's member while the
// address is on the link, and a virtual server's while that virtual
// server still holds what the member guarded: the plan's write of it
// failed, or nothing was written (the ownership record could not be
// saved), or no Service holds it and it is still there. A virtual server
// a Service holds now, written as that Service wants it, is not guarded by
// a member no Service wants (its ranges were dropped, it got a local
// endpoint, another Service took the address:port): that member goes.
// old says, for the keys the plan writes, whether the virtual server still
// holds what it held (stillOld); with look, a key the plan did not write
// is looked for in the kernel. Kept members are the undeleted denials: a
// change-by-change sync looks again at the VIPs' and at those of the
// virtual servers it writes (no read needed), and with recheck (a
// resync's last step, after its sweep deleted what it could) every one is
// read again.
func (p *Proxier) delDenials(ms []member, old map[ipvs.ServiceKey]bool, look, recheck bool, res *Result) {
	if len(ms) == 0 && len(p.undeleted.denials) == 0 {
		return
	}
	guarded := func(m member) bool {
		e := m.entry()
		if vipSets[m.set] {
			return p.linkAddrs[e.IP] // its ports stay refused while it is on
		}
		k := entryKey(e)
		stale, written := old[k]
		switch {
		case stale:
			return true
		case p.idx.wanted(k), written, !look, !p.owns(k):
			return false
		}
		_, there, err := p.ipvs.Get(k)
		return there || err != nil
	}
	all := slices.Clone(ms)
	for m := range p.undeleted.denials {
		if _, written := old[entryKey(m.entry())]; recheck || vipSets[m.set] || written {
			all = append(all, m)
		}
	}
	slices.SortFunc(all, compareMembers)
	for _, m := range slices.Compact(all) {
		switch {
		case p.idx.memberRefs[m] > 0:
			delete(p.undeleted.denials, m) // wanted again, and still there
		case guarded(m):
			p.undeleted.denials[m] = true
		default:
			delete(p.undeleted.denials, m)
			p.delMember(m, res)
		}
	}
}

// stillOld says, for each virtual server the plan writes (adds, updates,
// deletes, or changes the real servers of) and each one a write of which
// is among errs, whether it still holds what it held before: true when
// nothing was written or a write of it failed, false when the plan's
// writes of it went through.
func stillOld(plan reconcile.Plan, written bool, errs []error) map[ipvs.ServiceKey]bool {
	failed := reconcile.FailedKeys(errs)
	old := map[ipvs.ServiceKey]bool{}
	note := func(k ipvs.ServiceKey) { old[k] = !written || failed[k] }
	for _, s := range slices.Concat(plan.AddServices, plan.UpdateServices) {
		note(s.ServiceKey)
	}
	for _, d := range slices.Concat(plan.AddDestinations, plan.UpdateDestinations, plan.DeleteDestinations) {
		note(d.Key)
	}
	for _, k := range plan.DeleteServices {
		note(k)
	}
	for k := range failed {
		old[k] = true // a write the plan's lists leave out (a full sync passes its deletes alone)
	}
	return old
}

// entryKey is the virtual server a member of an ip,port set names (the
// firewall, the no-local-endpoints set, the ownership record).
func entryKey(e ipset.Entry) ipvs.ServiceKey {
	return ipvs.ServiceKey{Addr: e.IP, Proto: ipvs.Protocol(strings.ToUpper(e.Proto)), Port: e.Port}
}

// vipSets are the indexes in ownedSets of the VIP sets.
var vipSets = map[uint8]bool{setIndex[iptables.VIPSet(iptables.IPv4)]: true, setIndex[iptables.VIPSet(iptables.IPv6)]: true}

// delMember deletes m, and keeps it among the undeleted while its delete
// fails (see Proxier.undeleted). Not a marked member: the kernel's member
// is its entry without the mark, which a new holder of the entry may have
// taken with another mark since (see writeMembers), and deleting the old
// again would delete the new; the next resync's sweep deletes it.
func (p *Proxier) delMember(m member, res *Result) {
	err := p.sets.Del(m.setName(), m.entry())
	p.setWrite(res, m.setName(), m.entry(), err, &res.Counts.SetMembersDeleted)
	switch {
	case err == nil:
		delete(p.undeleted.members, m)
	case m.mark == 0:
		p.undeleted.members[m] = true
	}
}

// addMember adds m; ok is false when m is a firewall member that could not
// be added, with the key of the virtual server it guards.
func (p *Proxier) addMember(m member, res *Result) (guards ipvs.ServiceKey, ok bool) {
	e := m.entry()
	err := p.sets.Add(m.setName(), e)
	p.setWrite(res, m.setName(), e, err, &res.Counts.SetMembersAdded)
	if err != nil && firewallSets[m.set] {
		return entryKey(e), false
	}
	return ipvs.ServiceKey{}, true
}

// firewallSets are the indexes in ownedSets of the firewall sets.
var firewallSets = map[uint8]bool{setIndex[iptables.FirewallSet(iptables.IPv4)]: true, setIndex[iptables.FirewallSet(iptables.IPv6)]: true}

// addMembers adds members, as writeMembers returned them.
func (p *Proxier) addMembers(ms []member, res *Result) {
	for _, m := range ms {
		p.setWrite(res, m.setName(), m.entry(), p.sets.Add(m.setName(), m.entry()), &res.Counts.SetMembersAdded)
	}
}

// setWrite counts a set write, or records its failure with the member it
// was for, so that blame gives it to the Services that want the member
// (a member the kernel refuses is one Service's input, not the node's).
func (p *Proxier) setWrite(res *Result, set string, e ipset.Entry, err error, n *int) {
	if err != nil {
		res.Errors = append(res.Errors, &memberError{m: newMember(set, e), err: err})
		return
	}
	*n++
}

// memberError is a failed write of one set member.
type memberError struct {
	m   member
	err error
}

func (e *memberError) Error() string { return e.err.Error() }
func (e *memberError) Unwrap() error { return e.err }

// storableNets is a source range as the kernel's net sets can hold it:
// they refuse a /0, so "every source" (0.0.0.0/0, ::/0, a common
// loadBalancerSourceRanges value) is stored as its two halves.
func storableNets(p netip.Prefix) []netip.Prefix {
	if p.Bits() != 0 {
		return []netip.Prefix{p}
	}
	upper := netip.MustParseAddr("128.0.0.0")
	if p.Addr().Is6() {
		upper = netip.MustParseAddr("8000::")
	}
	return []netip.Prefix{netip.PrefixFrom(p.Addr(), 1), netip.PrefixFrom(upper, 1)}
}
