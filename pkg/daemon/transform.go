package daemon

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// lastApplied is kubectl's copy of the whole object, often the largest
// thing a Service carries.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimCached trims every cached Service and EndpointSlice before it
// is stored: server-side apply bookkeeping, kubectl's last-applied copy,
// owner references, and the endpoint fields no part of ipvs-proxy reads
// (target references, hostnames, topology hints and zones: ipvs-proxy does
// no topology-aware routing). On a large cluster these are a good share of
// what the cache holds.
func trimCached(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, nil // a tombstone: nothing to trim
	}
	m.SetManagedFields(nil)
	m.SetOwnerReferences(nil)
	if a := m.GetAnnotations(); a[lastApplied] != "" {
		delete(a, lastApplied)
	}
	switch o := obj.(type) {
	case *discovery.EndpointSlice:
		for i := range o.Endpoints {
			e := &o.Endpoints[i]
			e.TargetRef, e.Hostname, e.Hints, e.Zone, e.DeprecatedTopology = nil, nil, nil, nil, nil
		}
	case *v1.Service:
		o.Status = v1.ServiceStatus{LoadBalancer: o.Status.LoadBalancer} // conditions are not read
	}
	return obj, nil
}
