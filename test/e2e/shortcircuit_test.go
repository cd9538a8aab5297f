package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// An externalTrafficPolicy Local LoadBalancer Service whose one endpoint
// is on another node: an external client is dropped quietly, as Local
// asks, while a pod of this node and the node itself reach the remote
// endpoint through the Service's firewall-mark virtual server, as
// kube-proxy's iptables mode short-circuits in-cluster traffic
// (kube-proxy's IPVS mode drops it: kubernetes#93456). The pod keeps its
// own address; the node's connection is masqueraded, as to a clusterIP.
func TestGuestShortCircuit(t *testing.T) {
	guest(t)
	w := newWorld(t, "short-circuit")
	const lbIP = "203.0.113.120" // no other guest test's
	svc := w.service("local", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}, ep{pod: "pod-b", node: "other-node"})
	svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: lbIP}}
	if _, err := w.client.CoreV1().Services(w.ns).UpdateStatus(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.startProxy()
	w.waitFirstSync()
	lb := hostPort(lbIP, 80)
	nodePort := hostPort("10.0.2.15", svc.Spec.Ports[0].NodePort)
	mark := model.ShortCircuitMark(model.PortName{NamespacedName: types.NamespacedName{Namespace: w.ns, Name: "local"}, Port: "tcp"}, ipvs.TCP)
	waitIPVS(t, "TCP "+lb+" lc", []string{}...)
	waitIPVS(t, "TCP "+nodePort+" lc", []string{}...)
	waitIPVS(t, fmt.Sprintf("FWM %d lc", mark), rs("pod-b"))
	np := svc.Spec.Ports[0].NodePort
	want := fmt.Sprintf("10.0.2.15,tcp:%d skbmark 0x%x\n192.168.100.1,tcp:%d skbmark 0x%x\n%s,tcp:80 skbmark 0x%x\n", np, mark, np, mark, lbIP, mark)
	if got := sh(t, fmt.Sprintf("ipset list IPVS-PROXY-SHORT-CIRCUIT | grep 'skbmark 0x%x$' | sort", mark)); got != want {
		t.Errorf("short-circuit set:\n%s\nwant:\n%s", got, want)
	}

	askDenied(t, "external client on the LB IP", "ext", "tcp", lb, "")
	for _, addr := range []string{lb, nodePort} {
		a, err := ask("pod-c", "tcp", addr, "")
		if err != nil || a.pod != "pod-b" || a.seen != "10.244.0.4" {
			t.Errorf("pod-c on %s: answer %+v, err %v; want pod-b seeing 10.244.0.4", addr, a, err)
		}
		askOK(t, "the node on "+addr, "", "tcp", addr, "", 2, "pod-b")
	}
	askDenied(t, "external client on the node port", "ext", "tcp", hostPort("192.168.100.1", svc.Spec.Ports[0].NodePort), "")
	out := run(t, "status", os.Getenv(envProxyBin), "status", "--kubeconfig", os.Getenv(envKubeconfig), "--hostname-override", nodeName, "--service", w.ns+"/local")
	if line := fmt.Sprintf("  TCP %s -> FWM %d\n", lb, mark); !strings.Contains(out, line) {
		t.Errorf("status --service does not name the firewall-mark virtual server (%q):\n%s", line, out)
	}
}
