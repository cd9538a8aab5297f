package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
)

// buildOptionsPath is where the running proxy serves, beside its metrics,
// the options it builds every Service with (node name, NodePort addresses,
// the external-IP gate, the pod and Service CIDRs, the per-Service cap,
// the schedulers the kernel lacks, whether IPv6 is programmed). `status --service` reads them, so that
// its explanations are the running proxy's decisions, not the defaults':
// a one-shot command cannot know the flags and file the proxy started with.
const buildOptionsPath = "/ipvs-proxy/build-options"

// withBuildOptions adds buildOptionsPath to h. The options hold nothing
// /configz does not already serve: the metrics address is loopback by
// default for both.
func withBuildOptions(h http.Handler, opts model.Options) http.Handler {
	body, err := json.Marshal(opts)
	if err != nil {
		body = []byte("{}") // cannot happen: every field marshals
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc(buildOptionsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	return mux
}

// buildOptionsURL is the page's address for a proxy whose metrics server
// listens on addr (--metrics-bind-address): an unspecified host is
// reached on loopback.
func buildOptionsURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if err == nil && ip.Is6() {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + buildOptionsPath, nil
}

// fetchBuildOptions reads the running proxy's options from its metrics
// server at addr.
func fetchBuildOptions(ctx context.Context, addr string) (model.Options, error) {
	url, err := buildOptionsURL(addr)
	if err != nil {
		return model.Options{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return model.Options{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return model.Options{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return model.Options{}, fmt.Errorf("GET %s: %s (an ipvs-proxy older than this page?)", url, resp.Status)
	}
	var opts model.Options
	if err := json.NewDecoder(resp.Body).Decode(&opts); err != nil {
		return model.Options{}, fmt.Errorf("GET %s: %w", url, err)
	}
	return opts, nil
}
