package e2e

import (
	"context"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Without --cluster-cidr, each of kube-proxy's other detect-local modes
// tells this node's pods apart: their clusterIP traffic keeps its source,
// anything else to a clusterIP is masqueraded, and external NodePort
// traffic is always masqueraded so that a remote pod's answer comes back
// through this node.
func TestGuestDetectLocal(t *testing.T) {
	guest(t)
	w := newWorld(t, "detect-local")
	w.noClusterCIDR = true
	ctx := context.Background()
	n, err := w.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Spec.PodCIDRs) == 0 {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.0.0/24", []string{"10.244.0.0/24"}
		if _, err := w.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	np := w.service("np", func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }, ep{pod: "pod-b", node: "other-node"})
	nodePort := hostPort("192.168.100.1", np.Spec.Ports[0].NodePort)
	clusterIP := hostPort(np.Spec.ClusterIP, 80)
	for _, mode := range [][]string{
		{"--detect-local-mode=NodeCIDR"},
		{"--detect-local-mode=InterfaceNamePrefix", "--pod-interface-name-prefix=v-pod"},
	} {
		t.Run(mode[0], func(t *testing.T) {
			w.startProxy(mode...)
			defer w.stopProxy(syscall.SIGTERM)
			w.waitFirstSync()
			waitIPVS(t, "TCP "+clusterIP+" lc", rs("pod-b"))
			for _, c := range []struct {
				what, ns, addr, src string
				masqueraded         bool
			}{
				{"external client on a NodePort", "ext", nodePort, "192.168.100.2", true},
				{"external client on the clusterIP", "ext", clusterIP, "192.168.100.2", true},
				{"a pod of this node on the clusterIP", "pod-c", clusterIP, "10.244.0.4", false},
			} {
				a, err := ask(c.ns, "tcp", c.addr, "")
				if err != nil || a.pod != "pod-b" {
					t.Fatalf("%s: answer %+v, err %v", c.what, a, err)
				}
				if (a.seen != c.src) != c.masqueraded {
					t.Errorf("%s: the pod saw %s; masqueraded want %v", c.what, a.seen, c.masqueraded)
				}
			}
		})
	}
}
