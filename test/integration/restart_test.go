package integration

import (
	"net/http"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// reconnectTimeout bounds convergence after the API server comes back. It
// is longer than convergeTimeout because of client-go, not the daemon: a
// reflector whose server refuses connections retries with a backoff that
// doubles from 0.8 s with up to 100% jitter (k8s.io/client-go/tools/cache,
// defaultBackoff*), so after the ~20 s outage here (Stop gives
// kube-apiserver 15 s to exit) its next attempt can come ~25 s after the
// server is back. kube-proxy shares this.
const reconnectTimeout = 40 * time.Second

// TestAPIServerRestart stops kube-apiserver under a converged daemon: the
// kernel must stay as it is (periodic resyncs from the informer caches keep
// running and must not take anything away), the daemon must not exit, and
// once the server is back the informers reconnect and a change made then
// is programmed.
func TestAPIServerRestart(t *testing.T) {
	c := startCluster(t)
	c.createService(t, service("web", "10.96.0.10"))
	c.createSlice(t, slice("web-1", "web", httpPort(8080), ep{Addr: "10.244.1.2", Node: nodeName}))
	// A one-second sync period: several full resyncs run while the server
	// is down.
	started := time.Now()
	p := startProxy(t, c.proxyAccount(t), time.Second)

	converged := header + kubernetesVS + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
`
	p.waitFor(t, "before the restart", started, converged)
	ipvsWrites, linkWrites := p.ipvs.Writes, p.link.Writes
	fullSyncs := p.metric(t, `kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}`)

	stopping := time.Now()
	c.Stop()
	down := time.Now()
	t.Logf("kube-apiserver stopped in %v", down.Sub(stopping).Round(time.Millisecond))
	time.Sleep(2500 * time.Millisecond)
	if got := p.dump(); got != converged {
		t.Errorf("the kernel changed while the API server was down; got:\n%s", got)
	}
	if p.ipvs.Writes != ipvsWrites || p.link.Writes != linkWrites {
		t.Errorf("kernel writes while the API server was down: IPVS %d -> %d, link %d -> %d",
			ipvsWrites, p.ipvs.Writes, linkWrites, p.link.Writes)
	}
	if n := p.metric(t, `kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}`); n < fullSyncs+2 {
		t.Errorf("%v full resyncs while the server was down, want at least 2: the check above proved little", n-fullSyncs)
	}
	select {
	case err := <-p.done:
		t.Fatalf("daemon.Run returned while the API server was down: %v", err)
	default:
	}
	// Nothing is queued, so the proxy stays healthy: an API outage must not
	// make load balancers drop every node at once.
	if code, body := p.healthz(); code != http.StatusOK {
		t.Errorf("/healthz = %d %s while the API server was down, want 200", code, body)
	}

	restarting := daemonLog.mark()
	c.Restart(t)
	back := time.Now()
	p.exemptForbidden(t, restarting)
	// Measured from SIGTERM: kube-apiserver stops listening at once.
	t.Logf("API server down for %v", back.Sub(stopping).Round(time.Millisecond))
	// Both informers must have reconnected: a new endpoint on an existing
	// slice, and a new Service with its slice.
	c.replaceSlice(t, slice("web-1", "web", httpPort(8080),
		ep{Addr: "10.244.1.2", Node: nodeName}, ep{Addr: "10.244.2.3", Node: "node-b"}))
	c.createService(t, service("late", "10.96.0.20", func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53}}
	}))
	c.createSlice(t, slice("late-1", "late", slicePort("dns", v1.ProtocolUDP, 5353), ep{Addr: "10.244.2.9", Node: "node-b"}))
	p.waitWithin(t, reconnectTimeout, "after the restart (time from the server being ready)", back, header+kubernetesVS+`TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.3:8080              Masq    1
UDP  10.96.0.20:53 rr
  -> 10.244.2.9:5353              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.20/32
`)
	p.stop(t)
}
