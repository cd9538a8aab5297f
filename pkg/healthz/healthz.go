// Package healthz answers kube-proxy's /healthz and /livez, with the same
// rules and the same JSON, because load balancers and DaemonSet probes are
// already configured for kube-proxy's answers (see kube-proxy v1.37,
// pkg/proxy/healthcheck/proxy_health.go).
//
// The proxy is unhealthy when a change has waited for a sync longer than
// twice the sync period. An idle proxy is healthy however long ago it last
// synced: health is about changes being applied, not about activity.
package healthz

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Server keeps the sync state that health is judged on. Its methods are
// safe to call from the event handlers, the sync loop and HTTP handlers at
// the same time.
type Server struct {
	clk     clock.PassiveClock
	timeout time.Duration

	mu sync.Mutex
	// lastUpdated is zero until the first Updated. Like kube-proxy, pending
	// changes count against health only after that: before it, the proxy
	// is starting up (informers listing a large cluster) and a liveness
	// probe failing then would restart it in a loop.
	lastUpdated time.Time
	// oldestPending is when the oldest change not yet synced was queued;
	// zero when nothing waits.
	oldestPending time.Time
	// nodeEligible starts false: kube-proxy too answers 503 on /healthz
	// until it has seen its Node.
	nodeEligible bool
	nodeReason   string
	onServe      func(path string, code int)
	// families are the IP families the node serves ("IPv4", "IPv6"), for
	// the per-family status kube-proxy's answer carries.
	families []string
}

// SetFamilies names the IP families the node serves; the answers then
// carry kube-proxy's per-family status for each, from the first Updated.
func (s *Server) SetFamilies(families []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.families = append([]string(nil), families...)
}

// New makes a Server for a proxy that resyncs every syncPeriod. Callers
// should call Updated once when their sync loop starts, as kube-proxy's
// SyncLoop does, so that a first sync that never finishes shows as
// unhealthy instead of "starting up" forever.
func New(clk clock.PassiveClock, syncPeriod time.Duration) *Server {
	return &Server{
		clk:        clk,
		timeout:    2 * syncPeriod,
		nodeReason: "node not seen yet",
	}
}

// QueuedUpdate records that a change waits for a sync. Only the oldest
// pending change matters: it is the one that has waited longest.
func (s *Server) QueuedUpdate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oldestPending.IsZero() {
		s.oldestPending = s.clk.Now()
	}
}

// Updated records a successful sync: every change queued before it is
// applied.
func (s *Server) Updated() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUpdated = s.clk.Now()
	s.oldestPending = time.Time{}
}

// SetNodeEligible records whether this node should receive load-balanced
// traffic: not while its Node is being deleted or carries the cluster
// autoscaler's ToBeDeletedByClusterAutoscaler taint, so that load balancers
// drain it before it goes away. reason is logged when eligibility changes.
func (s *Server) SetNodeEligible(ok bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok != s.nodeEligible || reason != s.nodeReason {
		klog.InfoS("Node eligibility for load-balanced traffic changed", "eligible", ok, "reason", reason)
	}
	s.nodeEligible = ok
	s.nodeReason = reason
}

// OnServe sets a function told of every answer from then on, for the
// kubeproxy_proxy_healthz_total and kubeproxy_proxy_livez_total counters
// (the health server may answer before the metrics exist).
func (s *Server) OnServe(fn func(path string, code int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onServe = fn
}

// Handler serves /healthz and /livez; anything else is 404.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { s.serve(w, "/healthz", true) })
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { s.serve(w, "/livez", false) })
	return mux
}

// status is kube-proxy's ProxyHealth.
type status struct {
	LastUpdated  time.Time `json:"lastUpdated"`
	CurrentTime  time.Time `json:"currentTime"`
	NodeEligible *bool     `json:"nodeEligible,omitempty"`
	// Healthy is the sync state alone, also on /healthz; the node's
	// eligibility shows only in the status code and nodeEligible.
	Healthy bool `json:"healthy"`
	// Status is each family's, as kube-proxy's proxier of each reports
	// it (its last sync, not "now"); one sync covers both families here,
	// so they are the same.
	Status map[string]familyStatus `json:"status,omitempty"`
}

// familyStatus is kube-proxy's ProxierHealth.
type familyStatus struct {
	LastUpdated time.Time `json:"lastUpdated"`
	Healthy     bool      `json:"healthy"`
}

func (s *Server) serve(w http.ResponseWriter, path string, withNode bool) {
	st, ok, onServe := s.status(withNode)
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	if onServe != nil {
		onServe(path, code)
	}
	body, err := json.Marshal(st)
	if err != nil {
		// Cannot happen for these field types; answer anyway, since a
		// probe needs the code more than the body.
		klog.ErrorS(err, "Encoding health status", "path", path)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// status judges health now and reports whether the answer is 200.
func (s *Server) status(withNode bool) (status, bool, func(string, int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	st := status{
		LastUpdated: s.lastUpdated,
		CurrentTime: now,
		Healthy: s.lastUpdated.IsZero() || s.oldestPending.IsZero() ||
			now.Sub(s.oldestPending) < s.timeout,
	}
	if !s.lastUpdated.IsZero() && len(s.families) > 0 {
		st.Status = make(map[string]familyStatus, len(s.families))
		for _, f := range s.families {
			st.Status[f] = familyStatus{LastUpdated: s.lastUpdated, Healthy: st.Healthy}
		}
	}
	ok := st.Healthy
	if withNode {
		eligible := s.nodeEligible
		st.NodeEligible = &eligible
		ok = ok && eligible
	}
	if ok {
		// kube-proxy reports "now" when healthy, for clients written when
		// lastUpdated meant "the sync loop ran recently".
		st.LastUpdated = now
	}
	return st, ok, s.onServe
}

// Healthy reports the sync state alone (what /livez answers), for the
// health-check node ports: kube-proxy's serviceProxyHealthy.
func (s *Server) Healthy() bool {
	_, ok, _ := s.status(false)
	return ok
}
