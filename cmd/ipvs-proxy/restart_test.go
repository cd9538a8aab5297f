package main

import (
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
)

// TestNodeRestart: which Node updates restart the proxy, and why.
func TestNodeRestart(t *testing.T) {
	node := func(podCIDRs []string, ips ...string) *v1.Node {
		n := &v1.Node{Spec: v1.NodeSpec{PodCIDRs: podCIDRs}}
		for _, ip := range ips {
			n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
		}
		return n
	}
	start := []netip.Addr{netip.MustParseAddr("192.168.1.10")}
	cidrs := []string{"10.244.1.0/24"}
	for _, tc := range []struct {
		name       string
		podCIDRs   []string
		usePrimary bool
		node       *v1.Node
		want       string
	}{
		{"nothing read from the Node", nil, false, node([]string{"10.244.9.0/24"}, "192.168.1.99"), ""},
		{"NodeCIDR, the same podCIDRs", cidrs, false, node(cidrs, "192.168.1.99"), ""},
		{"NodeCIDR, other podCIDRs", cidrs, false, node([]string{"10.244.9.0/24"}), "podCIDRs [10.244.9.0/24], not [10.244.1.0/24] (detect-local-mode NodeCIDR)"},
		{"NodeCIDR, podCIDRs gone", cidrs, false, node(nil), "podCIDRs [], not [10.244.1.0/24] (detect-local-mode NodeCIDR)"},
		{"primary, the same IP", nil, true, node(nil, "192.168.1.10"), ""},
		{"primary, another IP", nil, true, node(nil, "192.168.1.11"), "primary IPs [192.168.1.11], not [192.168.1.10] (nodePortAddresses primary)"},
		{"primary, an IPv6 IP added", nil, true, node(nil, "192.168.1.10", "fd00::10"), "primary IPs [192.168.1.10 fd00::10], not [192.168.1.10] (nodePortAddresses primary)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeRestart(tc.podCIDRs, tc.usePrimary, start, "")(tc.node); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// The Node as runProxy read it at start never restarts the proxy, with
	// or without a bind address, whatever form its addresses take.
	n := node([]string{"10.244.1.0/24", "fd00:10:244:1::/64"}, "::ffff:192.168.1.10", "fd00::10")
	n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeExternalIP, Address: "203.0.113.7"})
	for _, bind := range []string{"", "0.0.0.0", "192.168.1.10", "fd00::10"} {
		if got := nodeRestart(n.Spec.PodCIDRs, true, model.PrimaryNodeIPs(n.Status.Addresses, bind), bind)(n); got != "" {
			t.Errorf("bind address %q: the Node read at start restarts the proxy: %s", bind, got)
		}
	}
}
