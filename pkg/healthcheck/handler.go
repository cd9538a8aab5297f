package healthcheck

import (
	"fmt"
	"net"
	"net/http"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
)

// handler answers every path of one health check port.
type handler struct {
	s    *Server
	inst *instance
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	count, open := h.s.endpoints(h.inst, probeFamily(r))
	healthy := h.s.healthy()

	// kube-proxy writes nothing for a port being closed. We answer 503
	// instead, so that a load balancer never reads "healthy" from a port
	// that is going away; in practice Close has already cut the connection.
	if !open {
		count = 0
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Load balancers that weigh nodes (GCE's WEIGHTED_MAGLEV) read this;
	// kube-proxy v1.37 sends it on every answer.
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(count))
	// Like kube-proxy since v1.28: a node whose proxy has stopped syncing
	// may route to stale endpoints, so it is unhealthy even with endpoints.
	if open && count > 0 && healthy {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = fmt.Fprint(w, body(h.inst.service, count, healthy))
}

// probeFamily is 1 when the probe came to an IPv6 address, else 0: a
// port listens in each of its families on a socket of that family alone
// (listenAddrs), so this is also the socket's family.
func probeFamily(r *http.Request) int {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok && a.IP.To4() == nil {
		return 1
	}
	return 0
}

// body is kube-proxy's answer text exactly: tab-indented, keys in this
// order, no trailing newline. It is written by hand, not with
// encoding/json, because kube-proxy's layout is what clients have seen.
func body(svc types.NamespacedName, count int, healthy bool) string {
	return fmt.Sprintf("{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
		svc.Namespace, svc.Name, count, healthy)
}
