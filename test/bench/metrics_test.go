package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Metric names both proxies serve (ipvs-proxy keeps kube-proxy's) and
// ipvs-proxy's own count of kernel writes.
const (
	lastSyncMetric = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
	kernelOps      = "ipvs_proxy_kernel_operations_total"
	// Every sync, full or partial.
	syncCountMetric = "kubeproxy_sync_proxy_rules_duration_seconds_count"
	syncSumMetric   = "kubeproxy_sync_proxy_rules_duration_seconds_sum"
	// ipvs-proxy's sync loop's CPU, every kind.
	loopCPUMetric = "ipvs_proxy_sync_cpu_seconds_total"
)

// metrics is one scrape: series (name with labels) → value.
type metrics map[string]float64

var metricsClient = &http.Client{Timeout: 5 * time.Second}

func scrape() (metrics, error) {
	resp, err := metricsClient.Get(metricsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", metricsURL, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format, which is all that both
// proxies serve; histograms come as their _bucket, _sum and _count series.
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds every series of the metric name, whatever its labels; ok is
// false when the proxy does not serve it.
func (m metrics) sum(name string) (total float64, ok bool) {
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
			ok = true
		}
	}
	return total, ok
}

// ipv4 is the IPv4 proxier's series of name. kube-proxy runs an IPv4 and
// an IPv6 proxier on a host with ip6tables and labels their sync metrics
// with ip_family; the bench's Services are IPv4, so the IPv6 proxier's
// syncs (of nothing) must not count. ipvs-proxy labels its series the
// same way (an unlabelled one is read too, for older builds).
func (m metrics) ipv4(name string) (float64, bool) {
	if v, ok := m[name+`{ip_family="IPv4"}`]; ok {
		return v, true
	}
	v, ok := m[name]
	return v, ok
}

// apiWriteMetric is the API server's own histogram of request handling
// time, from the request's arrival to its answer (etcd's commit included).
const apiWriteMetric = "apiserver_request_duration_seconds"

// sliceUpdates are the API server's count and total handling time of
// EndpointSlice updates, which in the bench are the changes' writes.
func (m metrics) sliceUpdates() syncTotals {
	var t syncTotals
	for series, v := range m {
		if !strings.Contains(series, `resource="endpointslices"`) || !strings.Contains(series, `verb="PUT"`) {
			continue
		}
		switch {
		case strings.HasPrefix(series, apiWriteMetric+"_sum{"):
			t.sum += v
		case strings.HasPrefix(series, apiWriteMetric+"_count{"):
			t.count += v
		}
	}
	return t
}

// apiSliceUpdates reads the API server's EndpointSlice update totals
// through the guest's admin client; ok is false when its metrics cannot
// be read (a fake client).
func apiSliceUpdates(client kubernetes.Interface) (t syncTotals, ok bool) {
	rc, isREST := client.Discovery().RESTClient().(*rest.RESTClient)
	if !isREST || rc == nil {
		return t, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body, err := rc.Get().AbsPath("/metrics").Stream(ctx)
	if err != nil {
		return t, false
	}
	defer body.Close()
	m, err := parseMetrics(body)
	if err != nil {
		return t, false
	}
	return m.sliceUpdates(), true
}

// serverMean is the API server's mean handling time of the updates since
// before, read now; 0 when either read failed.
func serverMean(client kubernetes.Interface, before syncTotals, ok bool) float64 {
	if !ok {
		return 0
	}
	after, ok := apiSliceUpdates(client)
	if !ok {
		return 0
	}
	return after.meanSince(before)
}
