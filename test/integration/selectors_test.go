package integration

import (
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	v1 "k8s.io/api/core/v1"
)

// TestSelectorsAreKubeProxys: each label is read where kube-proxy v1.37
// reads it, and only there. A Service with a clusterIP that carries the
// headless label is served (kube-proxy filters Services by the
// service-proxy-name label and clusterIP None alone); a slice that carries
// a service-proxy-name label, for a Service that does not, is read
// (kube-proxy filters slices by the headless label alone); a slice with the
// headless label is not; a headless Service has no virtual server.
func TestSelectorsAreKubeProxys(t *testing.T) {
	c := startCluster(t)
	tagged := service("tagged", "10.96.0.20")
	tagged.Labels = map[string]string{v1.IsHeadlessService: ""}
	c.createService(t, tagged)
	c.createSlice(t, slice("tagged-1", "tagged", httpPort(8080), ep{Addr: "10.244.1.20", Node: nodeName}))

	c.createService(t, service("plain", "10.96.0.21"))
	proxied := slice("plain-1", "plain", httpPort(8080), ep{Addr: "10.244.1.21", Node: nodeName})
	proxied.Labels[watch.ServiceProxyNameLabel] = "another-proxy"
	c.createSlice(t, proxied)
	headlessSlice := slice("plain-2", "plain", httpPort(8080), ep{Addr: "10.244.1.22", Node: nodeName})
	headlessSlice.Labels[v1.IsHeadlessService] = ""
	c.createSlice(t, headlessSlice)

	c.createService(t, service("headless", v1.ClusterIPNone))
	c.createSlice(t, slice("headless-1", "headless", httpPort(8080), ep{Addr: "10.244.1.23", Node: nodeName}))

	started := time.Now()
	p := startProxy(t, c.proxyAccount(t), time.Minute)
	p.waitFor(t, "converged", started, header+kubernetesVS+`TCP  10.96.0.20:80 rr
  -> 10.244.1.20:8080             Masq    1
TCP  10.96.0.21:80 rr
  -> 10.244.1.21:8080             Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.20/32
addr 10.96.0.21/32
`)
	p.stop(t)
}
