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

// NoLocalEndpoints counts the Service ports with a Local traffic policy
// that find endpoints in the cluster but none on this node, for kube-proxy's
// kubeproxy_sync_proxy_rules_no_local_endpoints_total.
func (p *Proxier) NoLocalEndpoints() model.NoLocalCounts { return p.idx.noLocal }
