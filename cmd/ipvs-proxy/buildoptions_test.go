package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/daemon"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/options"
)

// TestBuildOptionsPage: what the running proxy serves is what status reads
// back, every field, and the metrics are still served beside it.
func TestBuildOptionsPage(t *testing.T) {
	want := model.Options{
		NodeName: "node-a", Scheduler: "sh",
		NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("fd00::/64")},
		DenyExternalIPs:   true,
		ClusterCIDRs:      []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
		ServiceCIDRs:      []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
		Unavailable:       map[string]bool{"mh": true},
		MaxVirtualServers: 64,
		NoIPv6:            true,
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) })
	srv := httptest.NewServer(withBuildOptions(metrics, want))
	defer srv.Close()
	got, err := fetchBuildOptions(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("options read back (-served +read):\n%s", diff)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "metrics" {
		t.Errorf("/metrics = %q", b)
	}
}

// A proxy that does not serve the page (none there, or one without it)
// is an error, so status falls back to the defaults and says so.
func TestBuildOptionsMissing(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := fetchBuildOptions(context.Background(), strings.TrimPrefix(srv.URL, "http://")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a proxy without the page: err %v, want a 404", err)
	}
	srv.Close()
	if _, err := fetchBuildOptions(context.Background(), strings.TrimPrefix(srv.URL, "http://")); err == nil {
		t.Error("no proxy listening: no error")
	}
	f := statusFlags{metricsAddr: strings.TrimPrefix(srv.URL, "http://"), hostname: "Node-B"}
	if got := runningOptions(context.Background(), f); got.NodeName != "node-b" || got.Scheduler == "" || got.DenyExternalIPs {
		t.Errorf("defaults without a proxy: %+v", got)
	}
}

func TestBuildOptionsURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:10249", "http://127.0.0.1:10249" + buildOptionsPath},
		{"0.0.0.0:10249", "http://127.0.0.1:10249" + buildOptionsPath},
		{":10249", "http://127.0.0.1:10249" + buildOptionsPath},
		{"[::]:10249", "http://[::1]:10249" + buildOptionsPath},
		{"192.168.1.10:9100", "http://192.168.1.10:9100" + buildOptionsPath},
		{"10249", ""},
	} {
		got, err := buildOptionsURL(tc.addr)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("buildOptionsURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
}

// The node's own ports that an externalIP on a node address may not take:
// kubelet's, and the health and metrics ports unless on loopback only.
func TestReservedNodePorts(t *testing.T) {
	for _, tc := range []struct {
		healthz, metrics string
		want             []uint16
	}{
		{"0.0.0.0:10256", "127.0.0.1:10249", []uint16{10250, 10256}},
		{"0.0.0.0:10256", "0.0.0.0:10249", []uint16{10250, 10256, 10249}},
		{"[::1]:10256", ":9100", []uint16{10250, 9100}},
		{"", "", []uint16{10250}},
		{"192.168.1.10:10250", "", []uint16{10250}},
	} {
		o := options.NewOptions()
		o.HealthzBindAddress, o.MetricsBindAddress = tc.healthz, tc.metrics
		if got := reservedNodePorts(o); !slices.Equal(got, tc.want) {
			t.Errorf("healthz %q, metrics %q: %v, want %v", tc.healthz, tc.metrics, got, tc.want)
		}
	}
}

// The families the host has iptables for are the families programmed:
// without ip6tables no IPv6 entry is built (kube-proxy's single-stack),
// and IPv6 is no metrics family either.
func TestModelOptionsFamilies(t *testing.T) {
	v4 := daemon.RuleSync{Rules: iptables.Desired(iptables.Config{}, iptables.IPv4)}
	v6 := daemon.RuleSync{Rules: iptables.Desired(iptables.Config{}, iptables.IPv6)}
	cidrs := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:10:96::/108")}
	for _, tc := range []struct {
		name     string
		rules    []daemon.RuleSync
		noIPv6   bool
		families []string
	}{
		{"iptables and ip6tables", []daemon.RuleSync{v4, v6}, false, []string{"IPv4", "IPv6"}},
		{"no ip6tables", []daemon.RuleSync{v4}, true, []string{"IPv4"}},
	} {
		o := options.NewOptions()
		o.Scheduler = "sh"
		got := modelOptions(o, "node-a", nil, map[string]bool{"mh": true}, tc.rules)
		if got.NoIPv6 != tc.noIPv6 || got.NodeName != "node-a" || got.Scheduler != "sh" || !got.Unavailable["mh"] {
			t.Errorf("%s: options %+v, want NoIPv6 %v", tc.name, got, tc.noIPv6)
		}
		if f := metricFamilies(tc.rules, cidrs); !slices.Equal(f, tc.families) {
			t.Errorf("%s: metric families %v, want %v", tc.name, f, tc.families)
		}
	}
}
