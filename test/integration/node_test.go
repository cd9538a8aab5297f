package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWaitForNode: what detect-local-mode NodeCIDR waits for at start,
// through the real API server as the proxy's account: a Node that is not
// there, a Node whose podCIDRs a controller assigns later (found once they
// are), and one that never gets them (a timeout that returns the Node).
func TestWaitForNode(t *testing.T) {
	c := startCluster(t)
	client, err := kubeclient.New(c.proxyAccount(t).cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	hasPodCIDRs := func(n *v1.Node) bool { return len(n.Spec.PodCIDRs) > 0 }
	describe := func(n *v1.Node, err error) string {
		if n == nil {
			return fmt.Sprintf("no Node, error %v", err != nil)
		}
		return fmt.Sprintf("Node %s podCIDRs %v, error %v", n.Name, n.Spec.PodCIDRs, err != nil)
	}
	for _, name := range []string{"late", "never"} {
		if _, err := c.admin.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	assign := func() {
		time.Sleep(1500 * time.Millisecond) // a poll or two without them
		n, err := c.admin.CoreV1().Nodes().Get(context.Background(), "late", metav1.GetOptions{})
		if err == nil {
			n.Spec.PodCIDRs, n.Spec.PodCIDR = []string{"10.244.5.0/24"}, "10.244.5.0/24"
			_, err = c.admin.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("assign podCIDRs: %v", err)
		}
	}
	for _, tc := range []struct {
		name, node string
		ready      func(*v1.Node) bool
		meanwhile  func()
		want       string
	}{
		{"no such Node", "absent", kubeclient.NodeExists, nil, "no Node, error true"},
		{"podCIDRs assigned while it waits", "late", hasPodCIDRs, assign, "Node late podCIDRs [10.244.5.0/24], error false"},
		{"podCIDRs never assigned", "never", hasPodCIDRs, nil, "Node never podCIDRs [], error true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.meanwhile != nil {
				go tc.meanwhile()
			}
			if got := describe(client.WaitForNode(ctx, tc.node, 4*time.Second, tc.ready)); got != tc.want {
				t.Errorf("WaitForNode(%s): %s, want %s", tc.node, got, tc.want)
			}
		})
	}
}
