// Package proxier keeps the kernel equal to what the Services want. It is
// the one stateful step of the data flow: it remembers what each Service was
// last built to, so a change to one Service reads and writes only that
// Service's virtual servers (O(1) kernel work per endpoint change), and it
// lists the whole kernel only in SyncAll, at start and on the periodic
// resync, which also repairs drift.
package proxier

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Proxier is not safe for concurrent use: one sync loop drives it.
type Proxier struct {
	// Exclude are kube-proxy's --ipvs-exclude-cidrs: virtual servers on
	// these addresses are never deleted, even on our own dummy link.
	Exclude []netip.Prefix
	// DrainTimeout is --graceful-termination-timeout: how long a TCP real
	// server that left may keep its connections (0: deleted at once).
	DrainTimeout time.Duration
	Clock        clock.PassiveClock
	// Conntrack, if set, deletes the conntrack entries of UDP and SCTP
	// flows whose real server was deleted.
	Conntrack conntrack.Interface

	opts  model.Options // NodeIPs is refreshed on every SyncAll
	ipvs  ipvs.Interface
	link  netif.Interface
	sets  ipset.Interface
	owned *Owned

	builder *model.Builder
	// services is what each Service was last built to, minus the keys it
	// lost to another Service (see claims).
	services map[types.NamespacedName]model.ServiceState
	// claims says which Service a virtual server belongs to when two want
	// the same address:port (say, one externalIP in two Services).
	claims map[ipvs.ServiceKey]types.NamespacedName
	// losers are the Services that wanted a key another one holds: when
	// the holder lets go, they are handed back to the caller to rebuild.
	losers map[ipvs.ServiceKey][]types.NamespacedName
	// vipRefs counts the Services that want each VIP on the dummy interface.
	vipRefs map[netip.Addr]int
	// memberRefs counts the Services that want each kernel set member.
	memberRefs map[member]int
	// linkAddrs is what the dummy interface holds: listed by SyncAll and
	// kept up to date with our own writes in between.
	linkAddrs map[netip.Addr]bool
	// drainSince is when each draining real server got weight 0.
	drainSince map[drainKey]time.Time
	// since records what SyncServices writes while a snapshot is read.
	since *since
	// healthChecks are the Services with a health-check node port.
	healthChecks map[types.NamespacedName]model.HealthCheck
}

// Result is what one sync did.
type Result struct {
	// Requeue are Services to rebuild soon: a key they wanted was freed.
	Requeue []types.NamespacedName
	// Draining are Services with real servers at weight 0 waiting for
	// their connections to end: sync them again after DrainCheckInterval.
	Draining []types.NamespacedName
	// Aborted is set when the kernel could not be read: nothing was written.
	Aborted  bool
	Counts   reconcile.Counts
	Errors   []error
	Problems map[types.NamespacedName][]string
	// Warnings are failures that need no resync (conntrack clean-up).
	Warnings         []error
	ConntrackDeleted int
	// HealthChecksChanged says HealthChecks() differs from before the sync.
	HealthChecksChanged bool
}

func New(opts model.Options, ipvsIf ipvs.Interface, link netif.Interface, sets ipset.Interface, owned *Owned) *Proxier {
	return &Proxier{
		opts: opts, ipvs: ipvsIf, link: link, sets: sets, owned: owned,
		memberRefs:   map[member]int{},
		builder:      model.NewBuilder(opts),
		services:     map[types.NamespacedName]model.ServiceState{},
		claims:       map[ipvs.ServiceKey]types.NamespacedName{},
		losers:       map[ipvs.ServiceKey][]types.NamespacedName{},
		vipRefs:      map[netip.Addr]int{},
		linkAddrs:    map[netip.Addr]bool{},
		drainSince:   map[drainKey]time.Time{},
		healthChecks: map[types.NamespacedName]model.HealthCheck{},
		Clock:        clock.RealClock{},
	}
}

// owns reports whether a virtual server in the kernel is ipvs-proxy's.
func (p *Proxier) owns(k ipvs.ServiceKey) bool {
	for _, x := range p.Exclude {
		if x.Contains(k.Addr) {
			return false
		}
	}
	return p.linkAddrs[k.Addr] || p.owned.Has(k)
}

// SyncAll lists everything the kernel holds, rebuilds every Service and
// applies the difference.
func (p *Proxier) SyncAll(inputs []model.ServiceInput) Result {
	p.since = nil
	return p.SyncAllFrom(inputs, p.ReadKernel())
}

// SyncAllFrom is SyncAll from a snapshot read since BeginRead (or, from
// SyncAll, just now). What SyncServices wrote after BeginRead is left as
// it is: the snapshot may predate it, and the sync that wrote it read the
// kernel itself.
func (p *Proxier) SyncAllFrom(inputs []model.ServiceInput, snap Snapshot) Result {
	res := Result{Problems: map[types.NamespacedName][]string{}}
	t0 := p.Clock.Now()
	written := p.since
	p.since = nil
	if snap.err != nil {
		res.Errors, res.Aborted = append(res.Errors, snap.err), true
		return res
	}
	if err := p.link.EnsureLink(); err != nil {
		res.Errors, res.Aborted = append(res.Errors, err), true
		return res
	}
	hostAddrs, addrs, kernel := snap.hostAddrs, snap.addrs, snap.kernel
	t1 := p.Clock.Now()
	p.opts.NodeIPs = p.opts.NodeIPs[:0]
	for _, h := range hostAddrs {
		p.opts.NodeIPs = append(p.opts.NodeIPs, h.Addr)
	}
	p.builder = model.NewBuilder(p.opts)
	before := p.linkAddrs
	p.linkAddrs = map[netip.Addr]bool{}
	for _, a := range addrs {
		p.linkAddrs[a] = true
	}
	if written != nil {
		// Our own writes since the read are known better than the read.
		for a := range written.addrs {
			if before[a] {
				p.linkAddrs[a] = true
			} else {
				delete(p.linkAddrs, a)
			}
		}
	}

	// Build in name order so that, of two Services claiming one key, the
	// same one wins on every node and every resync. A copy: the caller's
	// slice (and pointers into it) must stay as they are.
	inputs = slices.Clone(inputs)
	slices.SortFunc(inputs, func(a, b model.ServiceInput) int {
		return compareNames(nameOf(a), nameOf(b))
	})
	p.losers = map[ipvs.ServiceKey][]types.NamespacedName{}
	oldChecks := p.healthChecks
	p.healthChecks = map[types.NamespacedName]model.HealthCheck{}
	// Sized for one virtual server, VIP and set member or two per
	// Service, so that a full sync does not grow them step by step.
	n := len(inputs)
	p.services = make(map[types.NamespacedName]model.ServiceState, n)
	p.claims = make(map[ipvs.ServiceKey]types.NamespacedName, n)
	p.vipRefs = make(map[netip.Addr]int, n)
	desired := make(map[ipvs.ServiceKey]ipvs.VirtualServer, n)
	members := 0
	for _, in := range inputs {
		name := nameOf(in)
		st := p.claim(name, p.builder.Service(in))
		p.services[name] = st
		if len(st.Problems) > 0 {
			res.Problems[name] = st.Problems
		}
		for _, e := range st.Entries {
			desired[e.ServiceKey] = e.VirtualServer
		}
		for _, v := range st.VIPs {
			p.vipRefs[v]++
		}
		members += len(st.Hairpin) + len(st.KeepSource) + len(st.ServicePorts) + len(st.NoLocalEndpoints) + len(st.VIPs)
		if st.HealthCheck != nil {
			p.healthChecks[name] = *st.HealthCheck
		}
	}
	p.memberRefs = make(map[member]int, members)
	for _, st := range p.services {
		for m := range membersOf(st) {
			p.memberRefs[m]++
		}
	}
	res.HealthChecksChanged = !maps.Equal(oldChecks, p.healthChecks)
	t2 := p.Clock.Now()
	current := map[ipvs.ServiceKey]ipvs.VirtualServer{}
	for _, vs := range kernel {
		if _, want := desired[vs.ServiceKey]; want || p.owns(vs.ServiceKey) {
			current[vs.ServiceKey] = vs
		}
	}
	wanted := desired
	if written != nil && len(written.keys) > 0 {
		wanted = maps.Clone(desired)
		for k := range written.keys {
			delete(wanted, k)
			delete(current, k)
		}
	}
	wantAddrs := map[netip.Addr]bool{}
	for a := range p.vipRefs {
		wantAddrs[a] = true
	}
	// Virtual servers, then the kernel sets, then the VIPs: the sets say
	// which VIP ports the filter lets through, and a VIP takes traffic
	// only once it is on the link. At a cold start the virtual servers
	// are so ready sooner.
	plan, writes := p.applyServers(wanted, current, desired, &res)
	t3 := p.Clock.Now()
	p.syncAllSets(&res, snap.sets, written)
	t4 := p.Clock.Now()
	vips := reconcile.DiffAddresses(wantAddrs, p.linkAddrs)
	p.apply(vips, desired, &res)
	t5 := p.Clock.Now()
	p.clearFlows(staleFlows(plan, current), &res)
	res.Draining = p.trackDrains(plan, p.notWritten(written))
	klog.V(3).InfoS("Full sync", "readKernel", t1.Sub(t0), "build", t2.Sub(t1), "virtualServers", t3.Sub(t2),
		"sets", t4.Sub(t3), "addresses", t5.Sub(t4), "writes", writes+vips.Len())
	return res
}

// SyncServices rebuilds only the given Services (a nil input means the
// Service is gone) and reads from the kernel only their virtual servers.
func (p *Proxier) SyncServices(changed map[types.NamespacedName]*model.ServiceInput) Result {
	res := Result{Problems: map[types.NamespacedName][]string{}}
	desired := map[ipvs.ServiceKey]ipvs.VirtualServer{}
	touched := map[ipvs.ServiceKey]bool{}
	touchedAddrs := map[netip.Addr]bool{}
	names := make([]types.NamespacedName, 0, len(changed))
	for name := range changed {
		names = append(names, name)
	}
	slices.SortFunc(names, compareNames)
	for _, name := range names {
		old := p.services[name]
		var st model.ServiceState
		if in := changed[name]; in != nil {
			st = p.builder.Service(*in)
		}
		if p.unchanged(old, st) {
			// A late or spurious event (an informer's initial adds after
			// a full sync, an update of a field we do not use): the kernel
			// was already written for this state, so it is not read.
			if len(st.Problems) > 0 {
				res.Problems[name] = st.Problems
			}
			continue
		}
		for _, e := range old.Entries {
			touched[e.ServiceKey] = true
			delete(p.claims, e.ServiceKey)
			for _, l := range p.losers[e.ServiceKey] {
				if _, changing := changed[l]; !changing {
					res.Requeue = append(res.Requeue, l)
				}
			}
			delete(p.losers, e.ServiceKey)
		}
		for _, v := range old.VIPs {
			p.vipRefs[v]--
			touchedAddrs[v] = true
		}
		if changed[name] != nil {
			st = p.claim(name, st)
		}
		if len(st.Problems) > 0 {
			res.Problems[name] = st.Problems
		}
		p.changeMembers(old, st, &res)
		res.HealthChecksChanged = p.setHealthCheck(name, st.HealthCheck) || res.HealthChecksChanged
		if len(st.Entries) == 0 && len(st.VIPs) == 0 {
			delete(p.services, name)
		} else {
			p.services[name] = st
		}
		for _, e := range st.Entries {
			touched[e.ServiceKey] = true
			desired[e.ServiceKey] = e.VirtualServer
		}
		for _, v := range st.VIPs {
			p.vipRefs[v]++
			touchedAddrs[v] = true
		}
	}
	for key := range touched {
		p.since.touchKey(key)
	}
	for a := range touchedAddrs {
		p.since.touchAddr(a)
	}
	current := map[ipvs.ServiceKey]ipvs.VirtualServer{}
	for key := range touched {
		_, want := desired[key]
		if !want && !p.owns(key) {
			continue
		}
		vs, ok, err := p.ipvs.Get(key)
		if err != nil {
			res.Errors = append(res.Errors, err)
			delete(desired, key) // unknown state: retry on the next sync
			continue
		}
		if ok {
			current[key] = vs
		}
	}
	wantAddrs, haveAddrs := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for a := range touchedAddrs {
		if p.vipRefs[a] > 0 {
			wantAddrs[a] = true
		} else {
			delete(p.vipRefs, a)
		}
		haveAddrs[a] = p.linkAddrs[a]
	}
	plan := reconcile.DiffServers(desired, current, p.drain())
	plan.Merge(reconcile.DiffAddresses(wantAddrs, haveAddrs))
	p.apply(plan, nil, &res)
	p.clearFlows(staleFlows(plan, current), &res)
	res.Draining = p.trackDrains(plan, touched)
	return res
}

// unchanged reports whether a Service built to st needs no sync: it was
// last built to the same state (claims included: a Service that lost a
// key to another differs from its build) and none of its real servers is
// draining, which needs the kernel's connection counts.
func (p *Proxier) unchanged(old, st model.ServiceState) bool {
	if len(old.Entries) == 0 && len(old.VIPs) == 0 || !reflect.DeepEqual(old, st) {
		return false
	}
	for k := range p.drainSince {
		for _, e := range old.Entries {
			if e.ServiceKey == k.vs {
				return false
			}
		}
	}
	return true
}

// claim drops from st the virtual servers another Service already holds,
// and records st's own.
func (p *Proxier) claim(name types.NamespacedName, st model.ServiceState) model.ServiceState {
	kept := st.Entries[:0]
	for _, e := range st.Entries {
		if owner, taken := p.claims[e.ServiceKey]; taken && owner != name {
			st.Problems = append(st.Problems, fmt.Sprintf("%s %s is already used by Service %s; skipped", e.Owner.Port, e.ServiceKey, owner))
			if !slices.Contains(p.losers[e.ServiceKey], name) {
				p.losers[e.ServiceKey] = append(p.losers[e.ServiceKey], name)
			}
			continue
		}
		p.claims[e.ServiceKey] = name
		kept = append(kept, e)
	}
	st.Entries = kept
	return st
}

// apply writes the plan, keeping the ownership record ahead of the kernel:
// keys are recorded before they are added and forgotten after they are
// deleted. With all set (a full sync), the record is rebuilt from desired.
func (p *Proxier) apply(plan reconcile.Plan, all map[ipvs.ServiceKey]ipvs.VirtualServer, res *Result) {
	adds := make([]ipvs.ServiceKey, 0, len(plan.AddServices))
	for _, s := range plan.AddServices {
		adds = append(adds, s.ServiceKey)
	}
	if !p.recordAhead(adds, res) {
		return // never write what we could not record
	}
	if p.write(plan, res) {
		p.recordAfter(all, plan.DeleteServices, res)
	}
	// Else every key stays recorded until a clean sync confirms it gone.
}

// recordAhead adds the keys about to be added (those not on the link,
// which are the node's own) to the ownership record; false if it could not
// be saved.
func (p *Proxier) recordAhead(adds []ipvs.ServiceKey, res *Result) bool {
	adds = slices.DeleteFunc(slices.Clone(adds), func(k ipvs.ServiceKey) bool { return p.onLink(k.Addr) || p.owned.Has(k) })
	if len(adds) == 0 {
		return true // the usual case: ClusterIPs, or keys recorded before
	}
	record := p.owned.Map()
	for _, k := range adds {
		record[k] = true
	}
	if err := p.owned.Set(record); err != nil {
		res.Errors = append(res.Errors, err)
		return false
	}
	return true
}

// write applies the plan to the kernel; false if any write failed.
func (p *Proxier) write(plan reconcile.Plan, res *Result) bool {
	counts, errs := reconcile.Apply(p.ipvs, p.link, plan)
	res.Counts = res.Counts.Add(counts)
	res.Errors = append(res.Errors, errs...)
	for _, a := range plan.AddAddresses {
		p.linkAddrs[a] = true
	}
	for _, a := range plan.DeleteAddresses {
		delete(p.linkAddrs, a)
	}
	return len(errs) == 0
}

// recordAfter forgets deleted keys after a clean write; with all set (a
// full sync) the record becomes exactly all's keys that are not on the link.
func (p *Proxier) recordAfter(all map[ipvs.ServiceKey]ipvs.VirtualServer, deleted []ipvs.ServiceKey, res *Result) {
	after := map[ipvs.ServiceKey]bool{}
	if all != nil {
		for k := range all {
			if !p.onLink(k.Addr) {
				after[k] = true
			}
		}
	} else {
		if !slices.ContainsFunc(deleted, p.owned.Has) {
			return
		}
		after = p.owned.Map()
		for _, k := range deleted {
			delete(after, k)
		}
	}
	if err := p.owned.Set(after); err != nil {
		res.Errors = append(res.Errors, err)
	}
}

// onLink reports whether an address is one the dummy interface holds or
// is about to hold.
func (p *Proxier) onLink(a netip.Addr) bool { return p.linkAddrs[a] || p.vipRefs[a] > 0 }

func nameOf(in model.ServiceInput) types.NamespacedName {
	return types.NamespacedName{Namespace: in.Service.Namespace, Name: in.Service.Name}
}

func compareNames(a, b types.NamespacedName) int {
	if a.Namespace != b.Namespace {
		if a.Namespace < b.Namespace {
			return -1
		}
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}
