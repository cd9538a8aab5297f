package proxier

import (
	"maps"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
)

// HealthChecks returns a copy of the health-check node ports the Services
// want, with their local endpoint counts.
func (p *Proxier) HealthChecks() map[types.NamespacedName]model.HealthCheck {
	return maps.Clone(p.idx.healthChecks)
}
