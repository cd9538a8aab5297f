package model

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// healthCheck returns what the health-check node port of a LoadBalancer
// Service with externalTrafficPolicy Local answers, nil for other Services.
func healthCheck(svc *v1.Service, slices []*discovery.EndpointSlice, node string) *HealthCheck {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyLocal ||
		svc.Spec.HealthCheckNodePort <= 0 || svc.Spec.HealthCheckNodePort > 65535 {
		return nil
	}
	local := map[string]bool{}
	for _, s := range slices {
		if s == nil {
			continue
		}
		for _, ep := range s.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			if len(ep.Addresses) > 0 && ready && !terminating && ep.NodeName != nil && *ep.NodeName == node {
				local[ep.Addresses[0]] = true
			}
		}
	}
	return &HealthCheck{NodePort: uint16(svc.Spec.HealthCheckNodePort), LocalEndpoints: len(local)}
}
