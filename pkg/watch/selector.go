package watch

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// ServiceProxyNameLabel names the proxy that serves a Service. kube-proxy
// leaves a Service carrying it to that other proxy, and so does ipvs-proxy.
const ServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name"

// The selectors are kube-proxy v1.37's (cmd/kube-proxy/app/server.go),
// each for its own kind: Services without the service-proxy-name label and
// with a clusterIP (headless ones are DNS's); EndpointSlices without the
// headless label, which their controller sets on headless Services'
// slices. The API server filters, so what is left out is never sent,
// decoded or cached. A label is read only where kube-proxy reads it: a
// Service that carries the headless label but has a clusterIP is served,
// and so is a slice with a service-proxy-name label of a Service without.
func labelAbsent(key string) labels.Selector {
	r, err := labels.NewRequirement(key, selection.DoesNotExist, nil)
	if err != nil {
		panic(err) // constant input
	}
	return labels.NewSelector().Add(*r)
}

// SelectServices narrows a list or watch of Services to those this proxy
// serves.
func SelectServices(o *metav1.ListOptions) {
	o.LabelSelector = labelAbsent(ServiceProxyNameLabel).String()
	o.FieldSelector = fields.OneTermNotEqualSelector("spec.clusterIP", v1.ClusterIPNone).String()
}

// SelectSlices narrows a list or watch of EndpointSlices to those this
// proxy reads.
func SelectSlices(o *metav1.ListOptions) {
	o.LabelSelector = labelAbsent(v1.IsHeadlessService).String()
}
