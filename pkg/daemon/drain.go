package daemon

import (
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"k8s.io/apimachinery/pkg/types"
)

// recheckDrains syncs the Services with draining real servers again after
// proxier.DrainCheckInterval, so that a real server is deleted soon after
// its last connection ends. One timer serves every Service: each check
// reads only the virtual servers of the Services it names.
func (d *daemon) recheckDrains(names []types.NamespacedName) {
	if len(names) == 0 {
		return
	}
	d.drainMu.Lock()
	for _, n := range names {
		d.drainPending[n] = true
	}
	armed := d.drainArmed
	d.drainArmed = true
	d.drainMu.Unlock()
	if armed {
		return
	}
	go func() {
		<-d.Clock.After(proxier.DrainCheckInterval)
		d.drainMu.Lock()
		pending := d.drainPending
		d.drainPending = map[types.NamespacedName]bool{}
		d.drainArmed = false
		d.drainMu.Unlock()
		for n := range pending {
			d.changes.Mark(n)
		}
	}()
}
