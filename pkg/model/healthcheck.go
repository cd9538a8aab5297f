package model

import (
	v1 "k8s.io/api/core/v1"
)

// healthCheck returns what the health-check node port of a LoadBalancer
// Service with externalTrafficPolicy Local answers, nil for other Services.
func healthCheck(svc *Service, slices []*Slice, node string) *HealthCheck {
	if svc.Type != v1.ServiceTypeLoadBalancer || svc.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyLocal ||
		svc.HealthCheckNodePort <= 0 || svc.HealthCheckNodePort > 65535 {
		return nil
	}
	local := map[string]bool{}
	for _, s := range slices {
		if s == nil {
			continue
		}
		for _, ep := range s.Endpoints {
			// Ready alone, as the real servers (isReady): a terminating
			// pod is ready=false unless publishNotReadyAddresses.
			if ep.Ready != False && ep.Node != "" && ep.Node == node {
				local[ep.Address()] = true
			}
		}
	}
	return &HealthCheck{NodePort: uint16(svc.HealthCheckNodePort), LocalEndpoints: len(local)}
}
