package model

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// healthCheck returns what the health-check node port of a LoadBalancer
// Service with externalTrafficPolicy Local answers, nil for other Services.
func healthCheck(svc *Service, slices []*Slice, node string) *HealthCheck {
	if svc.Type != v1.ServiceTypeLoadBalancer || svc.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyLocal ||
		svc.HealthCheckNodePort <= 0 || svc.HealthCheckNodePort > 65535 {
		return nil
	}
	local := [2]map[string]bool{{}, {}}
	for _, s := range slices {
		f := 0
		switch {
		case s == nil:
			continue
		case s.AddressType == discovery.AddressTypeIPv6:
			f = 1
		case s.AddressType != discovery.AddressTypeIPv4:
			continue // FQDN: never a real server
		}
		for _, ep := range s.Endpoints {
			// Ready alone, as the real servers (isReady): a terminating
			// pod is ready=false unless publishNotReadyAddresses.
			if ep.Ready != False && ep.Node != "" && ep.Node == node {
				local[f][ep.Address()] = true
			}
		}
	}
	return &HealthCheck{NodePort: uint16(svc.HealthCheckNodePort), LocalEndpoints: [2]int{len(local[0]), len(local[1])}}
}
