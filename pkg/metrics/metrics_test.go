package metrics

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from what the tests see")

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ours are the metrics this package defines; the Go and process
// collectors' output differs from run to run and is left out.
var ours = []string{
	"kubeproxy_sync_proxy_rules_duration_seconds",
	"kubeproxy_sync_full_proxy_rules_duration_seconds",
	"kubeproxy_sync_partial_proxy_rules_duration_seconds",
	"kubeproxy_sync_proxy_rules_last_timestamp_seconds",
	"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
	"kubeproxy_network_programming_duration_seconds",
	"kubeproxy_sync_proxy_rules_service_changes_total",
	"kubeproxy_sync_proxy_rules_endpoint_changes_total",
	"kubeproxy_sync_proxy_rules_service_changes_pending",
	"kubeproxy_sync_proxy_rules_endpoint_changes_pending",
	"kubeproxy_proxy_healthz_total",
	"kubeproxy_proxy_livez_total",
	"ipvs_proxy_kernel_operations_total",
	"ipvs_proxy_sync_errors_total",
	"ipvs_proxy_sync_cpu_seconds_total",
	"ipvs_proxy_sync_budget_wait_seconds_total",
	"ipvs_proxy_services_skipped_total",
	"kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
	"kubeproxy_conntrack_reconciler_deleted_entries_total",
	"kubeproxy_conntrack_reconciler_sync_duration_seconds",
	"kubeproxy_sync_proxy_rules_no_local_endpoints_total",
}

// TestExposition records observations and compares the registry's text
// with testdata/<name>.prom. Run with -update to rewrite those files, then
// read the diff.
func TestExposition(t *testing.T) {
	cases := []struct {
		name     string
		families []string
		do       func(m *Metrics)
	}{{
		name: "fresh",
		do:   func(*Metrics) {},
	}, {
		// A dual-stack node: each sync is recorded under both families,
		// as kube-proxy's two proxiers each record theirs.
		name:     "dual-stack",
		families: []string{"IPv4", "IPv6"},
		do: func(m *Metrics) {
			m.now = func() time.Time { return epoch }
			m.ObserveSync(3*time.Millisecond, true, reconcile.Counts{}, 0)
			m.SetLastQueuedTimestamp(epoch)
			m.ObserveNetworkProgramming(time.Second)
			m.SetNoLocalEndpoints([2]int{2, 1}, [2]int{1, 0})
			m.ObserveConntrack("IPv6", time.Millisecond, 2)
		},
	}, {
		name: "syncs",
		do: func(m *Metrics) {
			at := func(d time.Duration) { m.now = func() time.Time { return epoch.Add(d) } }
			at(1500 * time.Millisecond)
			m.ObserveSync(3*time.Millisecond, false, reconcile.Counts{
				AddressesAdded: 2, ServicesAdded: 2, DestinationsAdded: 5,
			}, 0)
			// Over the last bucket (16.384s): only +Inf, sum and count.
			at(30 * time.Second)
			m.ObserveSync(20*time.Second, false, reconcile.Counts{}, 0)
			// A full resync with failures: counted, but the last
			// successful sync stays the one above, at epoch+30s.
			at(time.Minute)
			m.ObserveSync(1500*time.Millisecond, true, reconcile.Counts{
				ServicesUpdated: 1, DestinationsUpdated: 1, DestinationsDeleted: 3,
				ServicesDeleted: 1, AddressesDeleted: 1,
			}, 2)
			// The loop's CPU: two change-by-change syncs, the second
			// leaving the budget in debt for 250 ms, and a full one.
			m.ObserveSyncCPU(2*time.Millisecond, true, 0)
			m.ObserveSyncCPU(3*time.Millisecond, true, 250*time.Millisecond)
			m.ObserveSyncCPU(time.Second, false, 0)
		},
	}, {
		name: "rules",
		do: func(m *Metrics) {
			m.ObserveRuleSync("IPv4", false)
			m.ObserveRuleSync("IPv6", true)
			m.ObserveRuleSync("IPv6", true)
			m.ObserveConntrack("IPv4", 2*time.Millisecond, 3)
			m.ObserveConntrack("IPv4", 40*time.Millisecond, 0)
			m.SetNoLocalEndpoints([2]int{2, 1}, [2]int{1, 0})
		},
	}, {
		name: "changes",
		do: func(m *Metrics) {
			for range 3 {
				m.ServiceChanged()
			}
			for range 5 {
				m.EndpointsChanged()
			}
			m.SetPending(1, 4)
			m.SetLastQueuedTimestamp(epoch.Add(250 * time.Millisecond))
			m.ServiceSkipped(SkippedInvalidInput)
			m.ServiceSkipped(SkippedInvalidInput)
			m.ProbeServed("/healthz", 200)
			m.ProbeServed("/healthz", 503)
			m.ProbeServed("/livez", 200)
			m.ProbeServed("/other", 200)
		},
	}, {
		name: "network-programming",
		do: func(m *Metrics) {
			for _, d := range []time.Duration{
				100 * time.Millisecond, 250 * time.Millisecond, 300 * time.Millisecond,
				1500 * time.Millisecond, 61 * time.Second, 10 * time.Minute,
				-time.Second, // clock skew: dropped
			} {
				m.ObserveNetworkProgramming(d)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.families...)
			tc.do(m)
			golden := filepath.Join("testdata", tc.name+".prom")
			if *update {
				got, err := testutil.GatherAndFormat(m.reg, expfmt.TypeTextPlain, ours...)
				if err != nil {
					t.Fatalf("gather: %v", err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatalf("write golden: %v", err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to make it): %v", err)
			}
			if err := testutil.GatherAndCompare(m.reg, bytes.NewReader(want), ours...); err != nil {
				t.Errorf("%s differs:\n%v", golden, err)
			}
		})
	}
}

// TestHandler checks /metrics serves our metrics and the runtime's.
func TestHandler(t *testing.T) {
	m := New()
	m.ServiceChanged()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("code %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"\nkubeproxy_sync_proxy_rules_service_changes_total 1\n",
		"\ngo_goroutines ",
		"\nprocess_cpu_seconds_total ",
		`,go_version="` + runtime.Version() + `",`,
		"\nkubernetes_build_info{",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestBuckets pins the bucket layouts to kube-proxy's, written out.
func TestBuckets(t *testing.T) {
	var b strings.Builder
	for _, v := range syncBuckets {
		b.WriteString(formatFloat(v) + " ")
	}
	if got, want := b.String(), "0.001 0.002 0.004 0.008 0.016 0.032 0.064 0.128 0.256 0.512 1.024 2.048 4.096 8.192 16.384 "; got != want {
		t.Errorf("sync buckets\n got: %s\nwant: %s", got, want)
	}
	b.Reset()
	for _, v := range programmingBuckets {
		b.WriteString(formatFloat(v) + " ")
	}
	want := "0 0.25 0.5 " +
		"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 " +
		"31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 " +
		"60 65 70 75 80 85 90 95 100 105 110 115 " +
		"120 150 180 210 240 270 300 "
	if got := b.String(); got != want {
		t.Errorf("network programming buckets\n got: %s\nwant: %s", got, want)
	}
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
