package model

import (
	"maps"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Service is a Service as the model reads it, in the compact form the proxy
// caches it in (watch.CachedService). ServiceFrom copies exactly what the
// model reads, so the cache cannot keep less than the model needs: the
// model has no other way to see a Service. It is also smaller: 496 bytes
// kept per Service as the API server sends the bench's, against 738 for a
// v1.Service with its unread metadata trimmed and 1,426 decoded
// (watch's BenchmarkCompactService).
type Service struct {
	types.NamespacedName
	UID     types.UID
	Created time.Time // metadata.creationTimestamp, in UTC: precedence
	Type    v1.ServiceType
	// ClusterIP is spec.clusterIP ("None" for a headless Service);
	// ClusterIPs is spec.clusterIPs when it lists more than ClusterIP (dual
	// stack, or a malformed object), else nil.
	ClusterIP   string
	ClusterIPs  []string
	ExternalIPs []string
	// IngressIPs are the IPs of status.loadBalancer.ingress, but those of
	// ipMode Proxy: their load balancer sends the traffic to the node, so
	// the node must not capture the IP itself.
	IngressIPs               []string
	LoadBalancerSourceRanges []string
	ExternalTrafficPolicy    v1.ServiceExternalTrafficPolicy
	InternalTrafficPolicy    v1.ServiceInternalTrafficPolicy // "" when unset
	HealthCheckNodePort      int32
	// ClientIPAffinity is sessionAffinity ClientIP; AffinityTimeout is its
	// sessionAffinityConfig's timeoutSeconds, 0 when unset.
	ClientIPAffinity bool
	AffinityTimeout  int32
	Ports            []ServicePort
	// Annotations are the Service's annotations among readAnnotations; nil
	// when it has none of them.
	Annotations map[string]string
}

// ServicePort is a Service port as the model reads it.
type ServicePort struct {
	Name           string
	Protocol       v1.Protocol
	Port, NodePort int32
}

// ServiceFrom is s as the model reads it; nil for nil. The enumerations
// (type, protocols, policies) are Kubernetes' own constants when they spell
// one, so the cache keeps no copy of them per Service.
func ServiceFrom(s *v1.Service) *Service {
	if s == nil {
		return nil
	}
	out := &Service{
		NamespacedName:           types.NamespacedName{Namespace: s.Namespace, Name: s.Name},
		UID:                      s.UID,
		Created:                  s.CreationTimestamp.UTC(),
		Type:                     known(s.Spec.Type, v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer, v1.ServiceTypeExternalName),
		ClusterIP:                s.Spec.ClusterIP,
		ExternalIPs:              slices.Clip(s.Spec.ExternalIPs),
		LoadBalancerSourceRanges: slices.Clip(s.Spec.LoadBalancerSourceRanges),
		ExternalTrafficPolicy:    known(s.Spec.ExternalTrafficPolicy, v1.ServiceExternalTrafficPolicyLocal, v1.ServiceExternalTrafficPolicyCluster),
		HealthCheckNodePort:      s.Spec.HealthCheckNodePort,
		ClientIPAffinity:         s.Spec.SessionAffinity == v1.ServiceAffinityClientIP,
	}
	if len(s.Spec.ClusterIPs) > 1 || len(s.Spec.ClusterIPs) == 1 && s.Spec.ClusterIPs[0] != s.Spec.ClusterIP {
		out.ClusterIPs = slices.Clip(s.Spec.ClusterIPs)
	}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if ing.IP != "" && (ing.IPMode == nil || *ing.IPMode != v1.LoadBalancerIPModeProxy) {
			out.IngressIPs = append(out.IngressIPs, ing.IP)
		}
	}
	if p := s.Spec.InternalTrafficPolicy; p != nil {
		out.InternalTrafficPolicy = known(*p, v1.ServiceInternalTrafficPolicyLocal, v1.ServiceInternalTrafficPolicyCluster)
	}
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		out.AffinityTimeout = *c.ClientIP.TimeoutSeconds
	}
	if len(s.Spec.Ports) > 0 {
		out.Ports = make([]ServicePort, len(s.Spec.Ports))
		for i, p := range s.Spec.Ports {
			out.Ports[i] = ServicePort{Name: p.Name, Protocol: known(p.Protocol, v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP), Port: p.Port, NodePort: p.NodePort}
		}
	}
	for _, a := range readAnnotations {
		if v, ok := s.Annotations[a]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[a] = v
		}
	}
	return out
}

// clusterIPStrings are the Service's clusterIPs as the API wrote them.
func (s *Service) clusterIPStrings() []string {
	if s.ClusterIPs != nil {
		return s.ClusterIPs
	}
	return []string{s.ClusterIP}
}

// Clone is a copy that shares nothing the caller could change.
func (s *Service) Clone() *Service {
	out := *s
	out.ClusterIPs = slices.Clone(s.ClusterIPs)
	out.ExternalIPs = slices.Clone(s.ExternalIPs)
	out.IngressIPs = slices.Clone(s.IngressIPs)
	out.LoadBalancerSourceRanges = slices.Clone(s.LoadBalancerSourceRanges)
	out.Ports = slices.Clone(s.Ports)
	out.Annotations = maps.Clone(s.Annotations)
	return &out
}

// known is the constant among consts that spells s, else s itself.
func known[T ~string](s T, consts ...T) T {
	for _, c := range consts {
		if s == c {
			return c
		}
	}
	return s
}
