package kubeclient

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
)

// Client reaches core/v1 and discovery.k8s.io/v1.
type Client struct {
	core, discovery rest.Interface
}

// New returns a client for cfg, whose user agent and QPS it keeps. Its two
// REST clients share one transport and one rate limiter, as a clientset's
// groups do, so cfg's QPS bounds the proxy as a whole.
func New(cfg *rest.Config) (*Client, error) {
	c := *cfg
	// Protobuf, as kube-proxy asks for: decoding every Service and
	// EndpointSlice of a large cluster is a good part of a cold start's
	// CPU, and JSON costs several times as much.
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	c.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(Scheme, Codecs).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if c.RateLimiter == nil && c.QPS > 0 {
		if c.Burst <= 0 {
			return nil, fmt.Errorf("client configuration: burst must be positive when QPS is set")
		}
		c.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(c.QPS, c.Burst)
	}
	httpClient, err := rest.HTTPClientFor(&c)
	if err != nil {
		return nil, err
	}
	core, err := restClient(c, httpClient, "/api", corev1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	discovery, err := restClient(c, httpClient, "/apis", discoveryv1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	return &Client{core: core, discovery: discovery}, nil
}

func restClient(c rest.Config, h *http.Client, apiPath string, gv schema.GroupVersion) (*rest.RESTClient, error) {
	c.APIPath, c.GroupVersion = apiPath, &gv
	return rest.RESTClientForConfigAndClient(&c, h)
}

// ListWatch lists and watches resource ("services", "endpointslices" or
// "nodes") in every namespace, with tweak (if not nil) applied to the
// options of every request. Informers run on it with watch-list streaming,
// client-go's default: nothing here opts out of it.
func (c *Client) ListWatch(resource string, tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	if tweak == nil {
		tweak = func(*metav1.ListOptions) {}
	}
	return cache.NewFilteredListWatchFromClient(c.group(resource), resource, metav1.NamespaceAll, tweak)
}

// List lists resource in every namespace into out, such as a
// *corev1.ServiceList.
func (c *Client) List(ctx context.Context, resource string, opts metav1.ListOptions, out runtime.Object) error {
	return c.group(resource).Get().
		Resource(resource).
		VersionedParams(&opts, parameterCodec).
		Do(ctx).
		Into(out)
}

// parameterCodec encodes query parameters, as the clientset's does.
var parameterCodec = runtime.NewParameterCodec(Scheme)

// group is the REST client of resource's API group. A resource of neither
// group is a programming error: the request would only get a 404.
func (c *Client) group(resource string) rest.Interface {
	switch resource {
	case "endpointslices":
		return c.discovery
	case "services", "nodes", "events":
		return c.core
	}
	panic(fmt.Sprintf("kubeclient: resource %q is in neither core/v1 nor discovery.k8s.io/v1", resource))
}
