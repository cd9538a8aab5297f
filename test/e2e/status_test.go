package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// status --service explains a Service as the running proxy builds it: here
// the proxy puts NodePorts on no address (--nodeport-addresses names no
// address of the node) and skips externalIPs (the feature gate), so the
// kernel has the clusterIP only, and status says "-" for the external
// addresses and names the gate. Without the proxy's settings (a metrics
// address where nothing listens) it explains with the defaults, says so,
// and calls the same endpoint programmed for external traffic: what this
// test tells apart.
func TestGuestStatusFollowsTheProxy(t *testing.T) {
	guest(t)
	w := newWorld(t, "statusopts")
	svc := w.service("np", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.ExternalIPs = []string{"203.0.113.7"}
	}, ep{pod: "pod-a"})
	w.startProxy("--nodeport-addresses", "10.99.0.0/16", "--feature-gates", "AllowServiceExternalIPs=false")
	w.waitFirstSync()
	vs := "TCP " + hostPort(svc.Spec.ClusterIP, 80) + " lc"
	waitIPVS(t, vs, rs("pod-a"))
	nodePort := ":" + strconv.Itoa(int(svc.Spec.Ports[0].NodePort)) + " "
	for key := range ipvsTable(t) {
		if strings.Contains(key+" ", nodePort) || strings.Contains(key, "203.0.113.7") {
			t.Errorf("the kernel has %q, which the proxy's settings leave out", key)
		}
	}

	status := func(extra ...string) string {
		return run(t, "status", append([]string{os.Getenv(envProxyBin), "status", "--kubeconfig", os.Getenv(envKubeconfig),
			"--hostname-override", nodeName, "--service", w.ns + "/np"}, extra...)...)
	}
	explained := func(out string) string { // the endpoint's CLUSTER-IP and EXTERNAL columns
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[1] == (ep{pod: "pod-a"}).addr() {
				return strings.Join(f[3:], " ")
			}
		}
		return "no line"
	}
	gate := "externalIPs are disabled on this node (feature gate AllowServiceExternalIPs=false); skipped"
	out := status()
	if got, want := explained(out), "programmed -"; got != want {
		t.Errorf("status --service with the proxy's settings explains pod-a as %q, want %q:\n%s", got, want, out)
	}
	if !strings.Contains(out, "\n  "+gate+"\n") || strings.Contains(out, "note:") {
		t.Errorf("status --service does not name the gate as a problem, or could not read the proxy:\n%s", out)
	}
	out = status("--metrics-bind-address", "127.0.0.1:1")
	if got, want := explained(out), "programmed programmed"; got != want {
		t.Errorf("status --service with the defaults explains pod-a as %q, want %q:\n%s", got, want, out)
	}
	if !strings.Contains(out, "note: cannot read the running proxy's settings") || strings.Contains(out, gate) {
		t.Errorf("status --service without the proxy's settings does not say so:\n%s", out)
	}
}
