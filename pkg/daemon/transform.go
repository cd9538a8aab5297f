package daemon

import (
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// trimCached trims every cached Service and EndpointSlice to what
// ipvs-proxy reads, before it is stored. On a large cluster the cache is
// most of the proxy's memory, and most of each object is never read:
//   - metadata keeps the key (namespace, name), resourceVersion, the UID
//     (Events name their Service by it), the service-name label of slices,
//     and only the annotations read (the scheduler annotation of Services,
//     the trigger time of slices); managed fields, owner references,
//     kubectl's last-applied copy and the rest go;
//   - endpoints lose target references, hostnames, zones and hints
//     (ipvs-proxy does no topology-aware routing), their conditions point
//     at shared values, their node names are shared per node, and the
//     list is cut to its length (decoding leaves up to half of it spare);
//   - a Service's status keeps only its load balancer ingress.
//
// Cached objects are read-only to every reader, which is what makes the
// sharing safe.
func trimCached(obj any) (any, error) {
	switch o := obj.(type) {
	case *discovery.EndpointSlice:
		o.ObjectMeta = keptMeta(o.ObjectMeta, discovery.LabelServiceName, watch.TriggerTimeAnnotation)
		eps := o.Endpoints
		if cap(eps) > len(eps) {
			eps = make([]discovery.Endpoint, len(o.Endpoints))
			copy(eps, o.Endpoints)
		}
		for i := range eps {
			e := &eps[i]
			*e = discovery.Endpoint{Addresses: e.Addresses, NodeName: nodeNames.get(e.NodeName),
				Conditions: discovery.EndpointConditions{Ready: shared(e.Conditions.Ready),
					Serving: shared(e.Conditions.Serving), Terminating: shared(e.Conditions.Terminating)}}
		}
		o.Endpoints = eps
	case *v1.Service:
		o.ObjectMeta = keptMeta(o.ObjectMeta, "", model.SchedulerAnnotation)
		o.Status = v1.ServiceStatus{LoadBalancer: o.Status.LoadBalancer} // conditions are not read
	}
	return obj, nil // anything else, such as a tombstone, passes unchanged
}

// keptMeta is m with only the fields and the one label and annotation
// ipvs-proxy reads ("" for none).
func keptMeta(m metav1.ObjectMeta, label, annotation string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		DeletionTimestamp: m.DeletionTimestamp}
	if v, ok := m.Labels[label]; ok {
		out.Labels = map[string]string{label: v}
	}
	if v, ok := m.Annotations[annotation]; ok {
		out.Annotations = map[string]string{annotation: v}
	}
	return out
}

var yes, no = true, false

// shared is a pointer to a shared copy of *b (nil stays nil): one
// allocation fewer per condition of every cached endpoint.
func shared(b *bool) *bool {
	switch {
	case b == nil:
		return nil
	case *b:
		return &yes
	default:
		return &no
	}
}

// nodeNames shares one string per node among the cached endpoints: a
// cluster has far fewer nodes than endpoints. It forgets everything past a
// bound, so churning node names cannot grow it without limit.
var nodeNames = &interner{names: map[string]*string{}}

type interner struct {
	mu    sync.Mutex
	names map[string]*string
}

const maxInterned = 10000

func (n *interner) get(name *string) *string {
	if name == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.names[*name]; ok {
		return p
	}
	if len(n.names) >= maxInterned {
		clear(n.names)
	}
	n.names[*name] = name
	return name
}
