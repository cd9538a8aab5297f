package proxier

import (
	"net/netip"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"k8s.io/apimachinery/pkg/types"
)

// DrainCheckInterval is how soon a Service with draining real servers is
// synced again, to delete them once their connections are gone. Each check
// reads only that Service's virtual servers.
const DrainCheckInterval = time.Second

type drainKey struct {
	vs   ipvs.ServiceKey
	dest netip.AddrPort
}

// drain is what reconcile.Drain needs from the proxier: the deadline. The
// start of each drain is only remembered in memory; after a restart a
// weight-0 real server we no longer want is found in the kernel and starts
// a new deadline then, so pending removals survive a restart (at the cost
// of waiting up to one timeout longer).
func (p *Proxier) drain() *reconcile.Drain {
	if p.DrainTimeout <= 0 {
		return nil
	}
	now := p.Clock.Now()
	return &reconcile.Drain{Expired: func(k ipvs.ServiceKey, d ipvs.Destination) bool {
		since, ok := p.drainSince[drainKey{k, d.AddrPort()}]
		return ok && now.Sub(since) >= p.DrainTimeout
	}}
}

// trackDrains records which real servers are draining after a sync that
// looked at the virtual servers in scope (nil: all of them), and returns
// the Services to check again.
func (p *Proxier) trackDrains(plan reconcile.Plan, scope map[ipvs.ServiceKey]bool) []types.NamespacedName {
	now := p.Clock.Now()
	still := map[drainKey]bool{}
	var owners []types.NamespacedName
	seen := map[types.NamespacedName]bool{}
	for _, op := range plan.Draining {
		k := drainKey{op.Key, op.Dest.AddrPort()}
		still[k] = true
		if _, ok := p.drainSince[k]; !ok {
			p.drainSince[k] = now
		}
		if owner, ok := p.idx.holder(op.Key); ok && !seen[owner] {
			seen[owner] = true
			owners = append(owners, owner)
		}
	}
	for k := range p.drainSince {
		if !still[k] && (scope == nil || scope[k.vs]) {
			delete(p.drainSince, k)
		}
	}
	return owners
}
