package daemon

import (
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/healthcheck"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// syncHealthChecks hands the proxier's health-check node ports, with
// their Services' families (which a port listens in: healthcheck.Port),
// and the local endpoint counts to their servers.
// Two Services claiming one port is invalid input the API server already
// refuses; the first by name wins.
func (d *daemon) syncHealthChecks() {
	if d.HealthChecks == nil {
		return
	}
	ports := map[uint16]healthcheck.Port{}
	eps := map[types.NamespacedName]healthcheck.Endpoints{}
	for name, hc := range d.Proxier.HealthChecks() {
		if other, taken := ports[hc.NodePort]; taken && model.CompareNames(other.Service, name) < 0 {
			continue
		}
		ports[hc.NodePort] = healthcheck.Port{Service: name, Families: hc.Families}
		eps[name] = healthcheck.Endpoints{Count: hc.LocalEndpoints}
	}
	err := d.HealthChecks.SyncServices(ports)
	d.hcFailed = err != nil
	if err != nil {
		klog.ErrorS(err, "Cannot serve a health-check node port; trying again", "in", hcRetry)
		d.retryHealthChecks()
	}
	d.HealthChecks.SyncEndpoints(eps)
}

// hcRetry is how soon a health-check node port that could not be opened
// (a port another process holds) is tried again, if no sync comes first:
// every sync tries again, as kube-proxy's does, but a quiet node may not
// sync for a whole sync period, and the load balancer meanwhile sees a
// node with local endpoints as down.
const hcRetry = 5 * time.Second

// retryHealthChecks asks for a sync after hcRetry, unless one is set up.
func (d *daemon) retryHealthChecks() {
	if !d.hcRetryArmed.CompareAndSwap(false, true) {
		return
	}
	go func() {
		<-d.Clock.After(hcRetry)
		d.hcRetryArmed.Store(false)
		d.kick()
	}()
}
