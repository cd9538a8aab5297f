package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// setZone labels this node's Node with a zone ("" removes the label).
func (w *world) setZone(zone string) {
	w.t.Helper()
	ctx := context.Background()
	n, err := w.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if zone == "" {
		delete(n.Labels, v1.LabelTopologyZone)
	} else {
		n.Labels[v1.LabelTopologyZone] = zone
	}
	if _, err := w.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// hintedSlice writes the Service's IPv4 slice: pod-a on this node and
// pod-b on another, with the hints the EndpointSlice controller would
// write (zones, nodes; nil for none).
func (w *world) hintedSlice(s *v1.Service, zones, nodes map[string]string) {
	w.t.Helper()
	sl := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: w.ns, Name: s.Name + "-ipv4", Labels: map[string]string{discovery.LabelServiceName: s.Name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("tcp"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
	for pod, node := range map[string]string{"pod-a": nodeName, "pod-b": "other-node"} {
		e := discovery.Endpoint{Addresses: []string{ep{pod: pod}.addr()}, NodeName: ptr.To(node), Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}}
		if zones != nil || nodes != nil {
			e.Hints = &discovery.EndpointHints{}
			if z := zones[pod]; z != "" {
				e.Hints.ForZones = []discovery.ForZone{{Name: z}}
			}
			if n := nodes[pod]; n != "" {
				e.Hints.ForNodes = []discovery.ForNode{{Name: n}}
			}
		}
		sl.Endpoints = append(sl.Endpoints, e)
	}
	ctx := context.Background()
	if _, err := w.client.DiscoveryV1().EndpointSlices(w.ns).Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		if _, err := w.client.DiscoveryV1().EndpointSlices(w.ns).Create(ctx, sl, metav1.CreateOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// Topology hints on a real node: zone hints keep a client of zone A on
// zone A's endpoint, no hints spread it over all, node hints
// (PreferSameNode) pick the local pod.
func TestGuestTopology(t *testing.T) {
	guest(t)
	w := newWorld(t, "topology")
	w.setZone("zone-a")
	t.Cleanup(func() { w.setZone("") })
	s := w.service("zoned", scheduler("rr"))
	vs := "TCP " + hostPort(s.Spec.ClusterIP, 80) + " rr"
	w.hintedSlice(s, map[string]string{"pod-a": "zone-a", "pod-b": "zone-b"}, nil)
	w.startProxy()
	w.waitFirstSync()
	waitIPVS(t, vs, rs("pod-a"))
	askOK(t, "zone hints", "pod-c", "tcp", hostPort(s.Spec.ClusterIP, 80), "", 4, "pod-a")
	// status --service reads the Node's zone too, so it explains the same.
	out := run(t, "status", os.Getenv(envProxyBin), "status", "--kubeconfig", os.Getenv(envKubeconfig), "--hostname-override", nodeName,
		"--service", w.ns+"/zoned")
	explained := func(pod string) string { // its CLUSTER-IP and EXTERNAL columns
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[1] == fmt.Sprintf("10.244.0.%d", pods[pod]) {
				return strings.Join(f[3:], " ")
			}
		}
		return "no line"
	}
	for pod, want := range map[string]string{"pod-a": "programmed -", "pod-b": "not programmed: topology hints (PreferSameZone) give it to other zones -"} {
		if got := explained(pod); got != want {
			t.Errorf("status --service explains %s as %q, want %q:\n%s", pod, got, want, out)
		}
	}

	w.hintedSlice(s, nil, nil)
	waitIPVS(t, vs, rs("pod-a"), rs("pod-b"))
	seen := map[string]bool{}
	for range 4 {
		a, err := ask("pod-c", "tcp", hostPort(s.Spec.ClusterIP, 80), "")
		if err != nil {
			t.Fatal(err)
		}
		seen[a.pod] = true
	}
	if !seen["pod-a"] || !seen["pod-b"] {
		t.Errorf("without hints, answers came from %v; want both pods", seen)
	}

	// A real server that leaves drains at weight 0 while the earlier
	// requests' connections linger.
	w.hintedSlice(s, map[string]string{"pod-a": "zone-a", "pod-b": "zone-a"}, map[string]string{"pod-a": nodeName, "pod-b": "other-node"})
	waitIPVSDrained(t, vs, []string{rs("pod-a")}, rs("pod-b"))
	askOK(t, "node hints", "pod-c", "tcp", hostPort(s.Spec.ClusterIP, 80), "", 4, "pod-a")

	// The node moves to zone B: zone B's endpoint only.
	w.hintedSlice(s, map[string]string{"pod-a": "zone-a", "pod-b": "zone-b"}, nil)
	waitIPVSDrained(t, vs, []string{rs("pod-a")}, rs("pod-b"))
	w.setZone("zone-b")
	waitIPVSDrained(t, vs, []string{rs("pod-b")}, rs("pod-a"))
}
