// Package metrics owns ipvs-proxy's Prometheus metrics. Where kube-proxy has
// a metric for the same thing, it has kube-proxy's name, type and buckets
// (kube-proxy v1.37, pkg/proxy/metrics/metrics.go), so dashboards and alerts
// written for kube-proxy keep working; what kube-proxy has no name for is
// prefixed ipvs_proxy_.
//
// kube-proxy labels most of these by ip_family, one proxier per family.
// Here one sync covers both families: a sync's duration, timestamp and
// programming latency are recorded under each family the node serves (the
// families New is given), as kube-proxy's two proxiers would each record
// theirs, so queries that filter on ip_family, or sum over it, read as
// they do for kube-proxy. Counts that belong to one family (Service ports
// without local endpoints, conntrack entries, iptables failures) are
// counted under that family alone.
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
)

// Metrics is a private registry and the metrics in it; a private registry
// keeps what client libraries register globally out of /metrics, and lets
// tests make as many as they like.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time // time.Now; tests fix it

	// families are the ip_family label values of this node: "IPv4",
	// "IPv6" or both.
	families []string

	syncDuration        *prometheus.HistogramVec
	syncFullDuration    *prometheus.HistogramVec
	syncPartialDuration *prometheus.HistogramVec
	lastSync            *prometheus.GaugeVec
	lastQueued          *prometheus.GaugeVec
	programming         *prometheus.HistogramVec
	serviceChanges      prometheus.Counter
	endpointChanges     prometheus.Counter
	servicesPending     prometheus.Gauge
	endpointsPending    prometheus.Gauge
	healthz             *prometheus.CounterVec
	livez               *prometheus.CounterVec

	kernelOps  *prometheus.CounterVec
	syncErrors prometheus.Counter
	skipped    *prometheus.CounterVec
	failing    prometheus.Gauge

	ruleFailures      *prometheus.CounterVec
	buildInfo         *prometheus.GaugeVec
	conntrackDeleted  *prometheus.CounterVec
	conntrackDuration *prometheus.HistogramVec
	noLocal           *prometheus.GaugeVec

	syncCPU    *prometheus.CounterVec
	budgetWait prometheus.Counter
}

// syncBuckets are kube-proxy's for every sync duration: 1ms to about 16s.
var syncBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// programmingBuckets are kube-proxy's for network programming latency:
// 0, 0.25s, 0.5s, then every second to 59s, every 5s to 115s, every 30s to
// 5min.
var programmingBuckets = concat(
	prometheus.LinearBuckets(0.25, 0.25, 2),
	prometheus.LinearBuckets(1, 1, 59),
	prometheus.LinearBuckets(60, 5, 12),
	prometheus.LinearBuckets(120, 30, 7),
)

// concat is component-base's MergeBuckets, with which kube-proxy builds
// programmingBuckets: it starts from a bucket at 0, so kube-proxy serves
// an le="0" series, which a dashboard or a comparison of bucket sets
// across nodes may select.
func concat(lists ...[]float64) []float64 {
	all := []float64{0}
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// New makes the metrics and registers them, with the Go runtime's and the
// process's own metrics, which kube-proxy's dashboards also chart (CPU,
// memory, goroutines). families are the node's ip_family values ("IPv4",
// "IPv6"); none means IPv4.
func New(families ...string) *Metrics {
	if len(families) == 0 {
		families = []string{"IPv4"}
	}
	fam := []string{"ip_family"}
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		now:      time.Now,
		families: families,

		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubeproxy_sync_proxy_rules_duration_seconds",
			Help:    "SyncProxyRules latency in seconds",
			Buckets: syncBuckets,
		}, fam),
		syncFullDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubeproxy_sync_full_proxy_rules_duration_seconds",
			Help:    "SyncProxyRules latency in seconds for full resyncs",
			Buckets: syncBuckets,
		}, fam),
		syncPartialDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubeproxy_sync_partial_proxy_rules_duration_seconds",
			Help:    "SyncProxyRules latency in seconds for partial resyncs",
			Buckets: syncBuckets,
		}, fam),
		lastSync: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
			Help: "The last time proxy rules were successfully synced",
		}, fam),
		lastQueued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
			Help: "The last time a sync of proxy rules was queued",
		}, fam),
		programming: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubeproxy_network_programming_duration_seconds",
			Help:    "In Cluster Network Programming Latency in seconds",
			Buckets: programmingBuckets,
		}, fam),
		serviceChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubeproxy_sync_proxy_rules_service_changes_total",
			Help: "Cumulative proxy rules Service changes",
		}),
		endpointChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubeproxy_sync_proxy_rules_endpoint_changes_total",
			Help: "Cumulative proxy rules Endpoint changes",
		}),
		servicesPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubeproxy_sync_proxy_rules_service_changes_pending",
			Help: "Pending proxy rules Service changes",
		}),
		endpointsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
			Help: "Pending proxy rules Endpoint changes",
		}),
		healthz: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubeproxy_proxy_healthz_total",
			Help: "Cumulative proxy healthz HTTP status",
		}, []string{"code"}),
		livez: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubeproxy_proxy_livez_total",
			Help: "Cumulative proxy livez HTTP status",
		}, []string{"code"}),

		kernelOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipvs_proxy_kernel_operations_total",
			Help: "Writes to the kernel that syncs made, by operation and object",
		}, []string{"op", "object"}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipvs_proxy_sync_errors_total",
			Help: "Kernel writes or reads that failed during syncs; the next sync retries them",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipvs_proxy_services_skipped_total",
			Help: "Services whose input was skipped in part (a port, address or endpoint that cannot be programmed, or a VIP:port another Service holds), counted each time a Service's reported problems change, by reason (always " + SkippedInvalidInput + ")",
		}, []string{"reason"}),
		noLocal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
			Help: "Number of services with a Local traffic policy and no endpoints",
		}, []string{"traffic_policy", "ip_family"}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ipvs_proxy_services_failing",
			Help: "Services whose last kernel write failed; each is retried on its own with backoff",
		}),

		// kube-proxy's name, for alerts on it: ipvs-proxy writes its
		// rules in one transaction per family, which is what this counts.
		ruleFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
			Help: "Cumulative failures to sync a family's iptables rules",
		}, []string{"ip_family"}),
		conntrackDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubeproxy_conntrack_reconciler_deleted_entries_total",
			Help: "Cumulative conntrack entries deleted after syncs: those of removed UDP and SCTP real servers",
		}, fam),
		conntrackDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubeproxy_conntrack_reconciler_sync_duration_seconds",
			Help:    "Time to delete one family's stale conntrack entries after a sync, in seconds",
			Buckets: syncBuckets,
		}, fam),
		// The loop's own CPU, apart from the watch's decoding and the
		// collector that process_cpu_seconds_total also counts: what
		// --sync-cpu-share bounds (the "change" syncs), and what an
		// operator sets it from.
		syncCPU: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipvs_proxy_sync_cpu_seconds_total",
			Help: "CPU time (user and system) the sync loop's thread used in syncs, by kind: change (change-by-change syncs, which --sync-cpu-share bounds) or full (the first sync, full syncs and the periodic resync's steps; the resync's kernel read runs on another thread and is not counted)",
		}, []string{"kind"}),
		budgetWait: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipvs_proxy_sync_budget_wait_seconds_total",
			Help: "Time the sync loop waited before its next sync because change-by-change syncs had used their --sync-cpu-share, beyond --ipvs-min-sync-period",
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubernetes_build_info",
			Help: "A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which ipvs-proxy was built, and platform on which it is running.",
		}, []string{"major", "minor", "git_version", "git_commit", "git_tree_state", "build_date", "go_version", "compiler", "platform"}),
	}
	m.reg.MustRegister(
		m.syncDuration, m.syncFullDuration, m.syncPartialDuration,
		m.lastSync, m.lastQueued, m.programming,
		m.serviceChanges, m.endpointChanges, m.servicesPending, m.endpointsPending,
		m.healthz, m.livez,
		m.kernelOps, m.syncErrors, m.skipped, m.failing, m.noLocal,
		m.ruleFailures, m.buildInfo, m.conntrackDeleted, m.conntrackDuration,
		m.syncCPU, m.budgetWait,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every operation exists from the start at 0, so rate() over a
	// counter's first increase is right and a panel is never empty.
	for _, w := range writes(reconcile.Counts{}) {
		m.kernelOps.WithLabelValues(w.op, w.object)
	}
	for _, kind := range []string{SyncChange, SyncFull} {
		m.syncCPU.WithLabelValues(kind)
	}
	for _, f := range families {
		m.syncDuration.WithLabelValues(f)
		m.syncFullDuration.WithLabelValues(f)
		m.syncPartialDuration.WithLabelValues(f)
		m.programming.WithLabelValues(f)
		m.conntrackDeleted.WithLabelValues(f)
		m.conntrackDuration.WithLabelValues(f)
	}
	m.buildInfo.WithLabelValues(buildLabels()...).Set(1)
	return m
}

// buildLabels are kubernetes_build_info's labels for this binary: its
// module version and VCS stamp, as Go recorded them; major and minor stay
// empty, since ipvs-proxy has no Kubernetes version of its own.
func buildLabels() []string {
	version, commit, tree, date := "", "", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				tree = map[string]string{"true": "dirty", "false": "clean"}[s.Value]
			case "vcs.time":
				date = s.Value
			}
		}
	}
	return []string{"", "", version, commit, tree, date, runtime.Version(), runtime.Compiler, runtime.GOOS + "/" + runtime.GOARCH}
}

// Handler serves the registry in Prometheus' text format, for /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// write is one label pair of ipvs_proxy_kernel_operations_total and how
// many such writes a sync made.
type write struct {
	op, object string
	n          int
}

// writes lists every kind of write a sync can make; there is no "update
// address".
func writes(c reconcile.Counts) []write {
	return []write{
		{"add", "address", c.AddressesAdded},
		{"delete", "address", c.AddressesDeleted},
		{"add", "service", c.ServicesAdded},
		{"update", "service", c.ServicesUpdated},
		{"delete", "service", c.ServicesDeleted},
		{"add", "destination", c.DestinationsAdded},
		{"update", "destination", c.DestinationsUpdated},
		{"delete", "destination", c.DestinationsDeleted},
		{"add", "set-member", c.SetMembersAdded},
		{"delete", "set-member", c.SetMembersDeleted},
	}
}

// ObserveSync records one sync: how long it took, whether it was a full
// resync, the kernel writes it made and how many reads or writes failed.
// The last-sync timestamp moves only when nothing failed, which is what
// "successfully synced" means for an alert on it: a Service that keeps
// failing shows as a stale timestamp beside a rising error count.
func (m *Metrics) ObserveSync(d time.Duration, full bool, counts reconcile.Counts, errors int) {
	s := d.Seconds()
	for _, f := range m.families {
		m.syncDuration.WithLabelValues(f).Observe(s)
		if full {
			m.syncFullDuration.WithLabelValues(f).Observe(s)
		} else {
			m.syncPartialDuration.WithLabelValues(f).Observe(s)
		}
	}
	for _, w := range writes(counts) {
		if w.n > 0 {
			m.kernelOps.WithLabelValues(w.op, w.object).Add(float64(w.n))
		}
	}
	if errors > 0 {
		m.syncErrors.Add(float64(errors))
		return
	}
	for _, f := range m.families {
		m.lastSync.WithLabelValues(f).Set(unixSeconds(m.now()))
	}
}

// ObserveNetworkProgramming records the time from a change to Pods or
// Services (as the EndpointSlice controller stamped it) to the sync that
// programmed it. A negative time is clock skew between the control plane
// and this node, not a latency, and is dropped.
func (m *Metrics) ObserveNetworkProgramming(d time.Duration) {
	if d < 0 {
		return
	}
	for _, f := range m.families {
		m.programming.WithLabelValues(f).Observe(d.Seconds())
	}
}

// ServiceChanged counts one Service informer event (watch.ServiceEvent); a
// retry or a drain re-check (watch.Requeue) is not one.
func (m *Metrics) ServiceChanged() { m.serviceChanges.Inc() }

// EndpointsChanged counts one EndpointSlice event that changed what the
// proxy programs.
func (m *Metrics) EndpointsChanged() { m.endpointChanges.Inc() }

// SetPending sets how many Service and EndpointSlice events wait for a sync
// (watch.Changes.Pending). A Service the sync loop queues again, to retry
// it or to re-check a drain, is no event and is not counted.
func (m *Metrics) SetPending(services, endpoints int) {
	m.servicesPending.Set(float64(services))
	m.endpointsPending.Set(float64(endpoints))
}

// ObserveRuleSync records one sync of a family's ("IPv4", "IPv6")
// iptables rules; the first makes the family's failure counter exist at 0.
func (m *Metrics) ObserveRuleSync(family string, failed bool) {
	c := m.ruleFailures.WithLabelValues(family)
	if failed {
		c.Inc()
	}
}

// ObserveConntrack records one family's conntrack cleanup after a sync
// ("IPv4" or "IPv6"): how long it took and how many entries it deleted.
func (m *Metrics) ObserveConntrack(family string, d time.Duration, deleted int) {
	m.conntrackDuration.WithLabelValues(family).Observe(d.Seconds())
	m.conntrackDeleted.WithLabelValues(family).Add(float64(deleted))
}

// The kinds of ipvs_proxy_sync_cpu_seconds_total.
const (
	SyncChange = "change"
	SyncFull   = "full"
)

// ObserveSyncCPU records one sync's CPU time on the loop's thread: a
// change-by-change sync (charged to the CPU budget) or a full one; held
// is the wait the budget then put before the next sync.
func (m *Metrics) ObserveSyncCPU(cpu time.Duration, change bool, held time.Duration) {
	kind := SyncFull
	if change {
		kind = SyncChange
	}
	m.syncCPU.WithLabelValues(kind).Add(cpu.Seconds())
	if held > 0 {
		m.budgetWait.Add(held.Seconds())
	}
}

// SkippedInvalidInput is ServiceSkipped's one reason: the proxier reported
// problems with the Service's input (proxier.Result.Problems), the same
// ones the IPVSProxySkipped Event carries.
const SkippedInvalidInput = "invalid-input"

// ServiceSkipped counts a Service whose input was skipped in part, once each
// time the problems reported for it change (as its Event is recorded), not
// once per port or per sync. reason is SkippedInvalidInput; the label
// leaves room for reasons the proxier does not tell apart today.
func (m *Metrics) ServiceSkipped(reason string) {
	m.skipped.WithLabelValues(reason).Inc()
}

// SetNoLocalEndpoints sets kube-proxy's gauge of Service ports whose
// Local traffic policy finds no endpoint on this node ("internal" for
// internalTrafficPolicy, "external" for externalTrafficPolicy).
// Counts are by family, index 0 IPv4 and 1 IPv6; only the node's families
// are set.
func (m *Metrics) SetNoLocalEndpoints(internal, external [2]int) {
	for i, f := range []string{"IPv4", "IPv6"} {
		if slices.Contains(m.families, f) {
			m.noLocal.WithLabelValues("internal", f).Set(float64(internal[i]))
			m.noLocal.WithLabelValues("external", f).Set(float64(external[i]))
		}
	}
}

// SetServicesFailing sets how many Services' writes are failing.
func (m *Metrics) SetServicesFailing(n int) { m.failing.Set(float64(n)) }

// SetLastQueuedTimestamp records when a sync was last asked for; far ahead
// of the last sync's timestamp, it means the sync loop is stuck.
func (m *Metrics) SetLastQueuedTimestamp(t time.Time) {
	for _, f := range m.families {
		m.lastQueued.WithLabelValues(f).Set(unixSeconds(t))
	}
}

// ProbeServed counts an answer of the health server, under kube-proxy's
// names; it fits healthz.Server.OnServe.
func (m *Metrics) ProbeServed(path string, code int) {
	switch path {
	case "/healthz":
		m.healthz.WithLabelValues(codeLabel(code)).Inc()
	case "/livez":
		m.livez.WithLabelValues(codeLabel(code)).Inc()
	}
}

func codeLabel(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusServiceUnavailable:
		return "503"
	}
	return "other"
}

// unixSeconds is t as Gauge.SetToCurrentTime stores the present, but
// summed from whole seconds so that 0.25s reads 0.25 and not 0.2499998.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}
