package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

const nodeName = "vm"

// pods are network namespaces, each on its own veth; their number is the
// last octet of their address.
var pods = map[string]int{"pod-a": 2, "pod-b": 3, "pod-c": 4, "pod-d": 5}

// world is the guest's cluster: the API server (on the host), pods, an
// external client and the ipvs-proxy process.
type world struct {
	t      *testing.T
	ns     string // the Kubernetes namespace of this world's Services
	client kubernetes.Interface
	proxy  *exec.Cmd
	log    string
	// noClusterCIDR starts the proxy without --cluster-cidr.
	noClusterCIDR bool
}

// newWorld makes the pods and the Node and starts their servers. Each
// guest test gets its own world and Kubernetes namespace; the pods and
// links go when the test ends, so the next test in the same VM starts
// from a node without them.
func newWorld(t *testing.T, namespace string) *world {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(envAdmin))
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	w := &world{t: t, ns: namespace, client: kubernetes.NewForConfigOrDie(cfg), log: "/tmp/ipvs-proxy-" + namespace + ".log"}
	topology(t, pods)
	for name := range pods {
		serve(t, name, name)
	}
	ctx := context.Background()
	if _, err := w.client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.2.15"}}}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := w.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.stopProxy(syscall.SIGTERM)
		if t.Failed() {
			out, _ := os.ReadFile(w.log)
			t.Logf("ipvs-proxy log (tail):\n%s", tail(string(out), 60))
			diag, _ := exec.Command("sh", "-c", "ipset list; iptables-save -c -t nat; iptables-save -c -t filter; sysctl net.ipv4.vs.conntrack").CombinedOutput()
			t.Logf("kernel state:\n%s", diag)
		}
		// The next test in this VM starts from a node without our state.
		if out, err := exec.Command(os.Getenv(envProxyBin), "cleanup").CombinedOutput(); err != nil {
			t.Errorf("cleanup after the test: %v\n%s", err, out)
		}
	})
	return w
}

// startProxy runs the real binary as a DaemonSet would, with the
// least-privileged kubeconfig. The default scheduler is lc, so that the
// flag's effect is visible next to Services that pick rr by annotation.
func (w *world) startProxy(extra ...string) {
	w.t.Helper()
	cidr := []string{"--cluster-cidr", "10.244.0.0/16,fd00:244::/56"}
	if w.noClusterCIDR {
		cidr = nil
	}
	args := []string{"run", "--kubeconfig", os.Getenv(envKubeconfig), "--hostname-override", nodeName,
		"--ipvs-scheduler", "lc", "--ipvs-min-sync-period", "100ms", "--ipvs-sync-period", "10s",
		"--healthz-bind-address", "127.0.0.1:10256", "--metrics-bind-address", "127.0.0.1:10249", "-v", "2"}
	w.start(os.Getenv(envProxyBin), append(append(args, cidr...), extra...)...)
}

// start runs bin as the world's proxy, its output in w.log.
func (w *world) start(bin string, args ...string) {
	w.t.Helper()
	f, err := os.OpenFile(w.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.proxy = exec.Command(bin, args...)
	w.proxy.Stdout, w.proxy.Stderr = f, f
	if err := w.proxy.Start(); err != nil {
		w.t.Fatal(err)
	}
}

// waitFirstSync waits until the proxy has programmed default/kubernetes,
// which every cluster has: its first full sync is done. Under emulation,
// on a loaded machine, that alone can take longer than waitIPVS's bound.
func (w *world) waitFirstSync() {
	w.t.Helper()
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for !strings.Contains(sh(w.t, "ipvsadm -Ln"), "10.96.0.1:443") {
		if time.Now().After(deadline) {
			w.t.Fatalf("the proxy made no first sync in 2 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	w.t.Logf("first sync seen %s after waiting began", took.Round(time.Millisecond))
	if took > 5*time.Second { // show where a slow start went
		out, _ := os.ReadFile(w.log)
		w.t.Logf("ipvs-proxy log so far (tail):\n%s", tail(string(out), 30))
	}
}

func (w *world) stopProxy(sig syscall.Signal) {
	if w.proxy == nil || w.proxy.Process == nil {
		return
	}
	w.proxy.Process.Signal(sig) //nolint:errcheck
	w.proxy.Wait()              //nolint:errcheck
	w.proxy = nil
}

type ep struct {
	pod  string
	node string // default: this node
	v6   bool
}

func (e ep) addr() string {
	if e.v6 {
		return fmt.Sprintf("fd00:244::%d", pods[e.pod])
	}
	return fmt.Sprintf("10.244.0.%d", pods[e.pod])
}

// service creates a Service (TCP port "tcp" 80 → 8080 unless mutated) and
// one EndpointSlice per address family it has endpoints of.
func (w *world) service(name string, mutate func(*v1.Service), eps ...ep) *v1.Service {
	w.t.Helper()
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP,
			Ports: []v1.ServicePort{{Name: "tcp", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if mutate != nil {
		mutate(s)
	}
	s, err := w.client.CoreV1().Services(w.ns).Create(context.Background(), s, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("create Service %s: %v", name, err)
	}
	w.endpoints(s, eps...)
	return s
}

// endpoints writes the Service's slices to hold exactly eps.
func (w *world) endpoints(s *v1.Service, eps ...ep) {
	w.t.Helper()
	for _, fam := range []discovery.AddressType{discovery.AddressTypeIPv4, discovery.AddressTypeIPv6} {
		sl := &discovery.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: w.ns, Name: s.Name + "-" + strings.ToLower(string(fam)), Labels: map[string]string{discovery.LabelServiceName: s.Name}},
			AddressType: fam,
		}
		for _, p := range s.Spec.Ports {
			sl.Ports = append(sl.Ports, discovery.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To[int32](8080)})
		}
		for _, e := range eps {
			if e.v6 != (fam == discovery.AddressTypeIPv6) {
				continue
			}
			node := e.node
			if node == "" {
				node = nodeName
			}
			sl.Endpoints = append(sl.Endpoints, discovery.Endpoint{Addresses: []string{e.addr()}, NodeName: ptr.To(node),
				Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
		}
		ctx := context.Background()
		_, err := w.client.DiscoveryV1().EndpointSlices(w.ns).Update(ctx, sl, metav1.UpdateOptions{})
		if err != nil {
			_, err = w.client.DiscoveryV1().EndpointSlices(w.ns).Create(ctx, sl, metav1.CreateOptions{})
		}
		if err != nil {
			w.t.Fatalf("write EndpointSlice %s: %v", sl.Name, err)
		}
	}
}

// ipvsTable is `ipvsadm -Ln` as virtual server line (without spacing) →
// sorted real server lines (address, forwarding, weight; no counters).
func ipvsTable(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm: %v: %s", err, out)
	}
	table := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || f[0] == "IP" || f[0] == "Prot" || (f[0] == "->" && f[1] == "RemoteAddress:Port"):
		case f[0] == "->":
			table[cur] = append(table[cur], strings.Join(f[1:4], " "))
			sort.Strings(table[cur])
		default:
			cur = strings.Join(f, " ")
			table[cur] = []string{}
		}
	}
	return table
}

// waitIPVS polls the kernel until the virtual server line vs has exactly
// the real servers want, or fails. No want at all waits for vs to be
// absent; an empty want ([]string{}...) for vs present with none.
func waitIPVS(t *testing.T, vs string, want ...string) {
	t.Helper()
	sort.Strings(want)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok := ipvsTable(t)[vs]
		if (want == nil && !ok) || (want != nil && ok && strings.Join(got, "|") == strings.Join(want, "|")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel never showed %q with %q; it has %q (present %v)", vs, want, got, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitIPVSDrained is waitIPVS for a change that took real servers away:
// each of gone may still be there at weight 0, draining its connections
// (a pod's closed connections count as inactive for minutes), or be gone.
func waitIPVSDrained(t *testing.T, vs string, want []string, gone ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok := ipvsTable(t)[vs]
		rest := map[string]bool{}
		for _, g := range got {
			rest[g] = true
		}
		match := ok
		for _, w := range want {
			match = match && rest[w]
			delete(rest, w)
		}
		for _, g := range gone {
			delete(rest, strings.Replace(g, "Masq 1", "Masq 0", 1))
		}
		if match && len(rest) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel never showed %q with %q (and %q drained or gone); it has %q (present %v)", vs, want, gone, got, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hostPort(ip string, port int32) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
