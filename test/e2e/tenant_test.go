package e2e

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/daemon"
)

// otherTenant creates a namespace for a second tenant, whose Services are
// written with the world's client but live apart from the world's.
func (w *world) otherTenant(ns string) {
	w.t.Helper()
	if _, err := w.client.CoreV1().Namespaces().Create(context.Background(), &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// askOK asks n times and fails unless each answer comes from one of pods.
func askOK(t *testing.T, what, ns, network, addr, src string, n int, pods ...string) {
	t.Helper()
	for i := range n {
		a, err := ask(ns, network, addr, src)
		if err != nil || !strings.Contains(" "+strings.Join(pods, " ")+" ", " "+a.pod+" ") {
			t.Fatalf("%s: request %d to %s from %q %s: answer %+v, err %v; want one of %v", what, i, addr, ns, src, a, err, pods)
		}
	}
}

// askDenied fails if the request is answered at all.
func askDenied(t *testing.T, what, ns, network, addr, src string) {
	t.Helper()
	if a, err := ask(ns, network, addr, src); err == nil {
		t.Fatalf("%s: %s from %q %s was answered by %+v; want no answer", what, addr, ns, src, a)
	}
}

// A tenant names the cluster DNS clusterIP:port as an externalIP of its own
// Service, with externalTrafficPolicy Local and no endpoints. On main before
// the precedence rule this put the DNS VIP:port in the no-local-endpoints
// set and dropped every query. DNS must keep answering, across a periodic
// resync and a restart of the proxy, and the tenant gets an Event that does
// not name the DNS Service.
func TestGuestTenantCannotTakeAClusterIP(t *testing.T) {
	guest(t)
	w := newWorld(t, "dns-owner")
	dns := w.service("kube-dns-like", func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(8080)}}
	}, ep{pod: "pod-a"}, ep{pod: "pod-b"})
	vip := hostPort(dns.Spec.ClusterIP, 53)
	w.startProxy()
	w.waitFirstSync()
	vs := "UDP " + vip + " lc"
	waitIPVS(t, vs, rs("pod-a"), rs("pod-b"))
	askOK(t, "before the tenant", "pod-c", "udp", vip, "", 4, "pod-a", "pod-b")

	w.otherTenant("tenant")
	evil, err := w.client.CoreV1().Services("tenant").Create(context.Background(), &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "evil"},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeNodePort, ExternalIPs: []string{dns.Spec.ClusterIP},
			ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal,
			Ports:                 []v1.ServicePort{{Name: "domain", Protocol: v1.ProtocolUDP, Port: 53}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The tenant's own clusterIP is programmed: its Service was seen.
	waitIPVS(t, "UDP "+hostPort(evil.Spec.ClusterIP, 53)+" lc", []string{}...)
	check := func(when string) {
		t.Helper()
		waitIPVS(t, vs, rs("pod-a"), rs("pod-b"))
		if set := sh(t, "ipset list IPVS-PROXY-NO-LOCAL-ENDPOINTS"); strings.Contains(set, dns.Spec.ClusterIP) {
			t.Fatalf("%s: the DNS VIP is in the no-local-endpoints set:\n%s", when, set)
		}
		askOK(t, when+", from a pod", "pod-c", "udp", vip, "", 4, "pod-a", "pod-b")
		askOK(t, when+", from the node", "", "udp", vip, "", 2, "pod-a", "pod-b")
	}
	check("with the tenant's Service")
	w.waitEvent("tenant", "evil", vip, "kube-dns-like")

	time.Sleep(11 * time.Second) // past --ipvs-sync-period=10s: a full resync ran
	check("after a periodic resync")

	w.stopProxy(syscall.SIGTERM)
	w.startProxy()
	w.waitFirstSync()
	check("after a restart")
}

// waitEvent waits for ipvs-proxy's Event on a Service that mentions want
// and fails if it names notWant (unless ""). Only the proxy's reason counts:
// the API server's ClusterIP repair loop can put a warning naming the
// Service's VIP on it too.
func (w *world) waitEvent(ns, name, want, notWant string) {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := w.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + daemon.EventReason})
		if err != nil {
			w.t.Fatal(err)
		}
		for _, e := range evs.Items {
			if strings.Contains(e.Message, want) {
				if notWant != "" && strings.Contains(e.Message, notWant) {
					w.t.Fatalf("Event on %s/%s names %q: %s", ns, name, notWant, e.Message)
				}
				w.t.Logf("Event on %s/%s: %s %s", ns, name, e.Reason, e.Message)
				return
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no Event on %s/%s mentions %s; have %d events", ns, name, want, len(evs.Items))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Two LoadBalancer Services share one LB IP on different ports, each with
// its own loadBalancerSourceRanges. An external client, a pod and the node
// are each let through exactly where a range admits them. A third admits
// every source (0.0.0.0/0, which the kernel's net sets hold as two halves).
func TestGuestLoadBalancerSourceRanges(t *testing.T) {
	guest(t)
	w := newWorld(t, "ranges")
	// Addresses no other guest test uses: the API server, and so the older
	// Services of earlier tests, are shared by every test in the VM.
	const lbIP, lbNodeIP, lbOpen = "203.0.113.110", "203.0.113.111", "203.0.113.112"
	lb := func(port int32, ranges ...string) func(*v1.Service) {
		return func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].Port = port
			s.Spec.LoadBalancerSourceRanges = ranges
		}
	}
	// a: the external client .11 and pod-c; b: the external client .12;
	// node: the node's own address.
	a := w.service("a", lb(80, "192.168.100.11/32", "10.244.0.4/32"), ep{pod: "pod-a"})
	b := w.service("b", lb(81, "192.168.100.12/32"), ep{pod: "pod-b"})
	node := w.service("node", lb(80, "10.0.2.15/32"), ep{pod: "pod-a"})
	open := w.service("open", lb(80, "0.0.0.0/0"), ep{pod: "pod-b"})
	for s, ip := range map[*v1.Service]string{a: lbIP, b: lbIP, node: lbNodeIP, open: lbOpen} {
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: ip}}
		if _, err := w.client.CoreV1().Services(w.ns).UpdateStatus(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w.startProxy()
	w.waitFirstSync()
	waitIPVS(t, "TCP "+hostPort(lbIP, 80)+" lc", rs("pod-a"))
	waitIPVS(t, "TCP "+hostPort(lbIP, 81)+" lc", rs("pod-b"))
	waitIPVS(t, "TCP "+hostPort(lbNodeIP, 80)+" lc", rs("pod-a"))
	waitIPVS(t, "TCP "+hostPort(lbOpen, 80)+" lc", rs("pod-b"))
	aAddr, bAddr := hostPort(lbIP, 80), hostPort(lbIP, 81)
	for _, from := range []struct{ ns, src string }{{"ext", "192.168.100.11"}, {"ext", "192.168.100.13"}, {"pod-d", ""}, {"", ""}} {
		askOK(t, "every source on open, from "+from.ns+" "+from.src, from.ns, "tcp", hostPort(lbOpen, 80), from.src, 1, "pod-b")
	}

	askOK(t, "allowed external client on a", "ext", "tcp", aAddr, "192.168.100.11", 2, "pod-a")
	askDenied(t, "external client of b on a", "ext", "tcp", aAddr, "192.168.100.12")
	askOK(t, "allowed external client on b", "ext", "tcp", bAddr, "192.168.100.12", 2, "pod-b")
	askDenied(t, "external client of a on b", "ext", "tcp", bAddr, "192.168.100.11")
	askOK(t, "allowed pod on a", "pod-c", "tcp", aAddr, "", 2, "pod-a")
	askDenied(t, "pod on b", "pod-c", "tcp", bAddr, "")
	askDenied(t, "another pod on a", "pod-d", "tcp", aAddr, "")
	askDenied(t, "the node on a", "", "tcp", aAddr, "")
	askDenied(t, "the node on b", "", "tcp", bAddr, "")
	askOK(t, "the node where its address is in the ranges", "", "tcp", hostPort(lbNodeIP, 80), "", 2, "pod-a")
	// The ranges guard the LB IP only: a's clusterIP still serves pod-d.
	askOK(t, "clusterIP of a from another pod", "pod-d", "tcp", hostPort(a.Spec.ClusterIP, 80), "", 2, "pod-a")
	if out := run(t, "status", os.Getenv(envProxyBin), "status", "--kubeconfig", os.Getenv(envKubeconfig), "--hostname-override", nodeName,
		"--service", "ranges/a"); !strings.Contains(out, "TCP 203.0.113.110:80 from 10.244.0.4/32, 192.168.100.11/32") {
		t.Errorf("status --service does not explain the ranges:\n%s", out)
	}
}

// A virtual server another tool made on a node address survives a Service
// that names the address as an externalIP, the Service's deletion and
// `ipvs-proxy cleanup`.
func TestGuestForeignVirtualServerSurvives(t *testing.T) {
	guest(t)
	w := newWorld(t, "foreign")
	const foreign = "TCP 10.0.2.15:8081 wlc"
	sh(t, "ipvsadm -A -t 10.0.2.15:8081 -s wlc && ipvsadm -a -t 10.0.2.15:8081 -r 10.244.0.5:8080 -m -w 3")
	t.Cleanup(func() { sh(t, "ipvsadm -D -t 10.0.2.15:8081") })
	want := "10.244.0.5:8080 Masq 3"
	grab := w.service("grab", func(s *v1.Service) {
		s.Spec.Ports[0].Port = 8081
		s.Spec.ExternalIPs = []string{"10.0.2.15"}
	}, ep{pod: "pod-a"})
	w.startProxy()
	w.waitFirstSync()
	waitIPVS(t, "TCP "+hostPort(grab.Spec.ClusterIP, 8081)+" lc", rs("pod-a"))
	waitIPVS(t, foreign, want)
	w.waitEvent(w.ns, "grab", "10.0.2.15:8081", "")
	if err := w.client.CoreV1().Services(w.ns).Delete(context.Background(), "grab", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIPVS(t, "TCP "+hostPort(grab.Spec.ClusterIP, 8081)+" lc")
	waitIPVS(t, foreign, want)
	w.stopProxy(syscall.SIGTERM)
	run(t, "cleanup", os.Getenv(envProxyBin), "cleanup")
	waitIPVS(t, foreign, want)
}

// A virtual server another tool made on an address that is on no link of
// this node (a VIP a peer holds, an AnyIP route) survives a Service that
// names the address as an externalIP, on another port: the address is
// refused for the Service (an Event) and never put on kube-ipvs0, where
// the foreign virtual server would look like ipvs-proxy's, to be swept at
// the next full sync; so it is across a restart of the proxy too.
func TestGuestForeignAddressIsNotTaken(t *testing.T) {
	guest(t)
	w := newWorld(t, "foreignaddr")
	const addr = "172.18.0.9"
	const foreign = "TCP " + addr + ":8080 wlc"
	sh(t, "ipvsadm -A -t "+addr+":8080 -s wlc && ipvsadm -a -t "+addr+":8080 -r 10.244.0.5:8080 -m -w 3")
	t.Cleanup(func() { sh(t, "ipvsadm -D -t "+addr+":8080") })
	want := "10.244.0.5:8080 Masq 3"
	grab := w.service("grab", func(s *v1.Service) { s.Spec.ExternalIPs = []string{addr} }, ep{pod: "pod-a"})
	onLink := func() bool {
		return strings.Contains(sh(t, "ip -o addr show dev kube-ipvs0"), " "+addr+"/")
	}
	for round, start := range []string{"first start", "restart"} {
		if round > 0 {
			w.stopProxy(syscall.SIGTERM)
		}
		w.startProxy()
		w.waitFirstSync()
		waitIPVS(t, "TCP "+hostPort(grab.Spec.ClusterIP, 80)+" lc", rs("pod-a"))
		waitIPVS(t, "TCP "+addr+":80 lc") // absent
		waitIPVS(t, foreign, want)
		if onLink() {
			t.Fatalf("%s: %s is on kube-ipvs0", start, addr)
		}
		w.waitEvent(w.ns, "grab", addr+" holds a virtual server ipvs-proxy did not create", "")
	}
	// Another tool's virtual server made while the proxy runs, after its
	// last full listing, on an address a new Service then names: found
	// by the sync that would put the address on kube-ipvs0.
	const late = "172.18.0.10"
	sh(t, "ipvsadm -A -t "+late+":8080 -s wlc && ipvsadm -a -t "+late+":8080 -r 10.244.0.5:8080 -m -w 3")
	t.Cleanup(func() { sh(t, "ipvsadm -D -t "+late+":8080") })
	lateSvc := w.service("late", func(s *v1.Service) { s.Spec.ExternalIPs = []string{late} }, ep{pod: "pod-a"})
	waitIPVS(t, "TCP "+hostPort(lateSvc.Spec.ClusterIP, 80)+" lc", rs("pod-a"))
	w.waitEvent(w.ns, "late", late+" holds a virtual server ipvs-proxy did not create", "")
	// A periodic resync (every 10 s here) keeps both so.
	time.Sleep(12 * time.Second)
	for _, a := range []string{addr, late} {
		waitIPVS(t, "TCP "+a+":80 lc") // absent
		waitIPVS(t, "TCP "+a+":8080 wlc", want)
		if strings.Contains(sh(t, "ip -o addr show dev kube-ipvs0"), " "+a+"/") {
			t.Fatalf("after a resync: %s is on kube-ipvs0", a)
		}
	}
}
