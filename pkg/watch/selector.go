package watch

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// ServiceProxyNameLabel names the proxy that serves a Service. kube-proxy
// leaves a Service carrying it to that other proxy, and so does ipvs-proxy.
const ServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name"

// ProxiedSelector is the label selector of the Services and EndpointSlices
// this proxy serves, the same as kube-proxy's informers use: nothing
// labelled for another proxy, and no slices of headless Services (which
// have no virtual server). The API server filters, so what is left out is
// never sent, decoded or cached.
func ProxiedSelector() string {
	noProxyName, err := labels.NewRequirement(ServiceProxyNameLabel, selection.DoesNotExist, nil)
	if err != nil {
		panic(err) // constant input
	}
	noHeadless, err := labels.NewRequirement(v1.IsHeadlessService, selection.DoesNotExist, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*noProxyName, *noHeadless).String()
}

// SelectProxied narrows a list or watch to ProxiedSelector.
func SelectProxied(o *metav1.ListOptions) { o.LabelSelector = ProxiedSelector() }
