package daemon

import (
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// trimCached trims every cached Service to what ipvs-proxy reads, before
// it is stored (EndpointSlices are cached in their own compact form, see
// watch.CachedSlice). On a large cluster the cache is most of the proxy's
// memory, and most of each object is never read:
//   - metadata keeps the key (namespace, name), resourceVersion, the UID
//     (Events name their Service by it; it breaks ties of precedence), the
//     creationTimestamp (precedence between Services that want one
//     address:port), the annotations the model reads (the scheduler, its
//     flags, the source ranges);
//     labels, managed fields, owner references, kubectl's last-applied copy
//     and other annotations go;
//   - the spec loses its pod selector;
//   - the status keeps only its load balancer ingress.
func trimCached(obj any) (any, error) {
	if o, ok := obj.(*v1.Service); ok {
		m := o.ObjectMeta
		o.ObjectMeta = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
			CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp}
		for _, a := range model.ReadAnnotations {
			if v, ok := m.Annotations[a]; ok {
				if o.Annotations == nil {
					o.Annotations = map[string]string{}
				}
				o.Annotations[a] = v
			}
		}
		o.Spec.Selector = nil
		o.Status = v1.ServiceStatus{LoadBalancer: o.Status.LoadBalancer} // conditions are not read
	}
	return obj, nil // anything else, such as a tombstone, passes unchanged
}
