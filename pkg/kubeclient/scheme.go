// Package kubeclient is ipvs-proxy's API client: REST clients for the only
// two API groups it reads (core/v1 and discovery.k8s.io/v1), instead of
// client-go's clientset. A clientset and its scheme link every API group
// the Kubernetes release has, dozens of packages of types, codecs and
// clients that cost every node resident memory and that the proxy never
// uses.
package kubeclient

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// Scheme holds core/v1 and discovery.k8s.io/v1. Each group's AddToScheme
// also registers the meta types (Status, WatchEvent, ListOptions...) in
// its version, as in client-go's scheme: errors and watch events decode.
// Event recorders take it too, to name the kind of the object an Event is
// about.
var Scheme = runtime.NewScheme()

// Codecs are Scheme's serializers.
var Codecs = serializer.NewCodecFactory(Scheme)

func init() {
	utilruntime.Must(corev1.AddToScheme(Scheme))
	utilruntime.Must(discoveryv1.AddToScheme(Scheme))
}
