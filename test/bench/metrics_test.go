package bench

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metric names both proxies serve (ipvs-proxy keeps kube-proxy's) and
// ipvs-proxy's own count of kernel writes.
const (
	lastSyncMetric = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
	kernelOps      = "ipvs_proxy_kernel_operations_total"
	// Every sync, full or partial.
	syncCountMetric = "kubeproxy_sync_proxy_rules_duration_seconds_count"
	syncSumMetric   = "kubeproxy_sync_proxy_rules_duration_seconds_sum"
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
