package daemon

import (
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// syncHealthChecks hands the proxier's health-check node ports and local
// endpoint counts to their servers. Two Services claiming one port is
// invalid input the API server already refuses; the first by name wins.
func (d *daemon) syncHealthChecks() {
	if d.HealthChecks == nil {
		return
	}
	ports := map[uint16]types.NamespacedName{}
	counts := map[types.NamespacedName]int{}
	for name, hc := range d.Proxier.HealthChecks() {
		if other, taken := ports[hc.NodePort]; taken && model.CompareNames(other, name) < 0 {
			continue
		}
		ports[hc.NodePort] = name
		counts[name] = hc.LocalEndpoints
	}
	if err := d.HealthChecks.SyncServices(ports); err != nil {
		klog.ErrorS(err, "Cannot serve a health-check node port")
	}
	d.HealthChecks.SyncEndpoints(counts)
}
