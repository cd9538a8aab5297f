package model

import (
	"slices"

	v1 "k8s.io/api/core/v1"
)

// topologyMode chooses, as kube-proxy v1.37 does (pkg/proxy/topology.go),
// how the EndpointSlice controller's hints narrow the cluster-wide
// endpoints of one Service port on this node:
//   - PreferSameNode when every ready endpoint has a node hint and one is
//     hinted for this node (trafficDistribution PreferSameNode);
//   - else PreferSameZone when every ready endpoint has a zone hint and one
//     is hinted for this node's zone (topology-mode Auto,
//     trafficDistribution PreferClose or PreferSameZone);
//   - else "": every endpoint, as when hints are missing or unusable.
//
// The Service's fields are not read: the controller writes the hints that
// they ask for, and the proxy follows the hints.
func topologyMode(eps []endpoint, at where) string {
	anyReady, allNode, forNode, allZone, forZone := false, true, false, true, false
	for _, e := range eps {
		if !isReady(e) {
			continue
		}
		anyReady = true
		if len(e.nodeHints) == 0 {
			allNode = false
		} else if slices.Contains(e.nodeHints, at.node) {
			forNode = true
		}
		if len(e.zoneHints) == 0 {
			allZone = false
		} else if slices.Contains(e.zoneHints, at.zone) {
			forZone = true
		}
	}
	switch {
	case !anyReady:
		return ""
	case allNode && forNode:
		return v1.ServiceTrafficDistributionPreferSameNode
	case allZone && forZone && at.zone != "":
		return v1.ServiceTrafficDistributionPreferSameZone
	}
	return ""
}

// availableForTopology reports whether the topology mode leaves e to this node.
func availableForTopology(e endpoint, mode string, at where) bool {
	switch mode {
	case v1.ServiceTrafficDistributionPreferSameNode:
		return slices.Contains(e.nodeHints, at.node)
	case v1.ServiceTrafficDistributionPreferSameZone:
		return slices.Contains(e.zoneHints, at.zone)
	}
	return true
}
