// Package kubeclienttest adapts client-go clientsets, real or fake, to the
// ListWatch that pkg/daemon and pkg/watch run their informers on. It is
// for tests only: a clientset links every API group, which is what
// pkg/kubeclient keeps out of the binary.
package kubeclienttest

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Clientset has the ListWatch method of pkg/kubeclient.Client.
type Clientset struct{ kubernetes.Interface }

// ListWatch lists and watches resource ("services", "endpointslices" or
// "nodes") in every namespace, with tweak (if not nil) applied to the
// options of every request, as client-go's generated informers do.
func (c Clientset) ListWatch(resource string, tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	var list func(context.Context, metav1.ListOptions) (runtime.Object, error)
	var watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)
	switch resource {
	case "services":
		api := c.CoreV1().Services(metav1.NamespaceAll)
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return api.List(ctx, o) }
		watchFn = api.Watch
	case "endpointslices":
		api := c.DiscoveryV1().EndpointSlices(metav1.NamespaceAll)
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return api.List(ctx, o) }
		watchFn = api.Watch
	case "nodes":
		api := c.CoreV1().Nodes()
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return api.List(ctx, o) }
		watchFn = api.Watch
	default:
		panic(fmt.Sprintf("kubeclienttest: no list-watch for resource %q", resource))
	}
	if tweak == nil {
		tweak = func(*metav1.ListOptions) {}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return watchFn(ctx, o)
		},
	}
	// A fake clientset cannot stream watch-lists and says so; the reflector
	// asks the list-watch, as with informers generated for clientsets.
	return cache.ToListWatcherWithWatchListSemantics(lw, c.Interface)
}
