package model

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// healthCheck returns what the health-check node port of a LoadBalancer
// Service with externalTrafficPolicy Local answers, nil for other Services.
// The Service's families are those of clusterIPs, the Builder's kept ones
// (under Options.NoIPv6, no IPv6 one): a slice of a family the Service
// has not counts for nothing, as the node has no virtual server of that
// family for its endpoints to serve (kube-proxy's proxier of a family
// tracks only that family's Services).
func healthCheck(svc *Service, clusterIPs []netip.Addr, slices []*Slice, node string) *HealthCheck {
	if svc.Type != v1.ServiceTypeLoadBalancer || svc.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyLocal ||
		svc.HealthCheckNodePort <= 0 || svc.HealthCheckNodePort > 65535 {
		return nil
	}
	hc := &HealthCheck{NodePort: uint16(svc.HealthCheckNodePort)}
	for _, ip := range clusterIPs {
		if ip.Is4() {
			hc.Families[0] = true
		} else {
			hc.Families[1] = true
		}
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
		if !hc.Families[f] {
			continue
		}
		if !hasValidPort(s) {
			// No real server comes from a slice without a usable port
			// (collectEndpoints takes endpoints only under a matching
			// slice port), so counting its endpoints would answer 200 on
			// a node whose virtual servers have none and which drops new
			// connections: the load balancer must not keep such a node.
			// kube-proxy's rule (endpointInfoByServicePort): a slice's
			// endpoints count under each port with a name and a
			// non-zero port number, whether or not the Service still
			// has that port.
			continue
		}
		for _, ep := range s.Endpoints {
			// Ready alone, as the real servers (isReady): a terminating
			// pod is ready=false unless publishNotReadyAddresses.
			if ep.Ready != False && ep.Node != "" && ep.Node == node {
				local[f][ep.Address()] = true
			}
		}
	}
	hc.LocalEndpoints = [2]int{len(local[0]), len(local[1])}
	return hc
}

// hasValidPort reports whether the slice has a port kube-proxy reads
// endpoints under: one with a non-nil Name and a non-nil, non-zero Port.
func hasValidPort(s *Slice) bool {
	for _, p := range s.Ports {
		if p.Name != nil && p.Port != nil && *p.Port != 0 {
			return true
		}
	}
	return false
}
