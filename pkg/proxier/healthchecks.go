package proxier

import (
	"maps"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
)

// HealthChecks returns a copy of the health-check node ports the Services
// want, with their local endpoint counts.
func (p *Proxier) HealthChecks() map[types.NamespacedName]model.HealthCheck {
	return maps.Clone(p.healthChecks)
}

// setHealthCheck records one Service's health check and reports whether
// it changed.
func (p *Proxier) setHealthCheck(name types.NamespacedName, hc *model.HealthCheck) bool {
	old, had := p.healthChecks[name]
	if hc == nil {
		delete(p.healthChecks, name)
		return had
	}
	p.healthChecks[name] = *hc
	return !had || old != *hc
}
