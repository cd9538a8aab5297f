package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestZoneFromTheNode: the Node's zone label picks the endpoints zone
// hints give this node, and a relabelled node is re-synced.
func TestZoneFromTheNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{v1.LabelTopologyZone: "zone-a"}}}
	hinted := testobj.Slice("ns", "web-1", "web", discovery.AddressTypeIPv4, testobj.HTTP(8080),
		testobj.Endpoint{Addr: "10.244.1.2", Node: "node-a", Zones: []string{"zone-a"}},
		testobj.Endpoint{Addr: "10.244.2.2", Node: "node-b", Zones: []string{"zone-b"}})
	client := fake.NewClientset(node, service("web", "10.96.0.10"), hinted)
	k := ipvs.NewFake()
	done := runFast(ctx, client, k, nil)
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	waitFor(t, k, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n")
	node.Labels[v1.LabelTopologyZone] = "zone-b"
	if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, k, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.2.2:8080              Masq    1\n")
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("Run did not stop")
	}
}
