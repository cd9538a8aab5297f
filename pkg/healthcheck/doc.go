// Package healthcheck serves the health check node ports of LoadBalancer
// Services with externalTrafficPolicy=Local (spec.healthCheckNodePort).
// Cloud load balancers probe these ports on every node and send traffic
// only to nodes that answer 200, so the answers copy kube-proxy v1.37
// (pkg/proxy/healthcheck/service_health.go) byte for byte: load balancers
// are already configured for them.
//
// The package owns only the listeners it opened; it never touches other
// sockets on the node.
package healthcheck
