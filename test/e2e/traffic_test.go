package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func rs(pod string) string { return fmt.Sprintf("10.244.0.%d:8080 Masq 1", pods[pod]) }

func scheduler(name string) func(*v1.Service) {
	return func(s *v1.Service) { s.Annotations = map[string]string{model.SchedulerAnnotation: name} }
}

// TestGuestTraffic runs the real binary against the real API server and
// sends real traffic through the VIPs it programs. The cases share one
// proxy and run in order; each says what it proves.
func TestGuestTraffic(t *testing.T) {
	guest(t)
	start := time.Now()
	w := newWorld(t, "e2e")
	web := w.service("web", scheduler("rr"), ep{pod: "pod-a"}, ep{pod: "pod-b"})
	self := w.service("self", scheduler("rr"), ep{pod: "pod-a"})
	hash := w.service("hash", scheduler("sh"), ep{pod: "pod-a"}, ep{pod: "pod-b"})
	flagged := w.service("flagged", func(s *v1.Service) {
		s.Annotations = map[string]string{model.SchedulerAnnotation: "sh", model.SchedulerFlagsAnnotation: "sh-fallback,sh-port"}
	}, ep{pod: "pod-a"})
	least := w.service("least", nil, ep{pod: "pod-a"})
	sticky := w.service("sticky", func(s *v1.Service) {
		scheduler("rr")(s)
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
	}, ep{pod: "pod-a"}, ep{pod: "pod-b"})
	npCluster := w.service("np-cluster", func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }, ep{pod: "pod-a"})
	npLocal := w.service("np-local", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}, ep{pod: "pod-a"}, ep{pod: "pod-b", node: "other-node"})
	dns := w.service("dns", func(s *v1.Service) {
		scheduler("rr")(s)
		s.Spec.Ports = []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53}}
	}, ep{pod: "pod-a"}, ep{pod: "pod-b"})
	v6 := w.service("v6", func(s *v1.Service) { s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol} }, ep{pod: "pod-a", v6: true})

	// What kube-proxy's IPVS mode leaves behind, and a chain of kubelet's.
	sh(t, `iptables -t nat -N KUBE-SERVICES
iptables -t nat -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables -t nat -N KUBE-KUBELET-CANARY
ipset create KUBE-CLUSTER-IP hash:ip,port`)
	w.startProxy()
	// The first sync waits for the informers and the iptables rules; under
	// emulation on a loaded CI machine it has taken longer than waitIPVS's
	// bound on its own.
	w.waitFirstSync()
	vip := func(s *v1.Service) string { return hostPort(s.Spec.ClusterIP, 80) }
	waitIPVS(t, "TCP "+vip(web)+" rr", rs("pod-a"), rs("pod-b"))
	waitIPVS(t, "TCP "+hostPort(v6.Spec.ClusterIP, 80)+" lc", "[fd00:244::2]:8080 Masq 1")
	t.Logf("proxy converged %s after the test started", time.Since(start).Round(time.Millisecond))

	t.Run("ClusterIP from the node, masqueraded", func(t *testing.T) {
		a, err := ask("", "tcp", vip(web), "")
		if err != nil || (a.pod != "pod-a" && a.pod != "pod-b") {
			t.Fatalf("answer %+v, err %v", a, err)
		}
		// Unmasqueraded, the node's source would be the VIP itself.
		if a.seen == web.Spec.ClusterIP {
			t.Errorf("the pod saw the VIP %s as the client: host-originated traffic was not masqueraded", a.seen)
		}
	})
	t.Run("after its first sync, kube-proxy's leftovers are gone and kubelet's chain stays", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			nat := sh(t, "iptables-save -t nat")
			sets := sh(t, "ipset list -n")
			if !strings.Contains(nat, "KUBE-SERVICES") && !strings.Contains(sets, "KUBE-CLUSTER-IP") {
				if !strings.Contains(nat, ":KUBE-KUBELET-CANARY") {
					t.Fatalf("kubelet's chain was removed too:\n%s", nat)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("kube-proxy's leftovers are still there:\n%s\n%s", nat, sets)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("ClusterIP from a pod keeps the pod's address", func(t *testing.T) {
		a, err := ask("pod-c", "tcp", vip(web), "")
		if err != nil || a.seen != "10.244.0.4" {
			t.Fatalf("answer %+v, err %v; want the backend to see 10.244.0.4", a, err)
		}
	})
	t.Run("rr splits N requests exactly N/2 each", func(t *testing.T) {
		count := map[string]int{}
		for i := 0; i < 10; i++ {
			a, err := ask("", "tcp", vip(web), "")
			if err != nil {
				t.Fatal(err)
			}
			count[a.pod]++
		}
		if count["pod-a"] != 5 || count["pod-b"] != 5 {
			t.Fatalf("split %v, want 5 and 5", count)
		}
	})
	t.Run("hairpin: a pod reaches its own Service and gets itself", func(t *testing.T) {
		a, err := ask("pod-a", "tcp", vip(self), "")
		if err != nil || a.pod != "pod-a" {
			diag, _ := exec.Command("sh", "-c", "ipset list IPVS-PROXY-HAIRPIN; iptables-save -c -t nat; conntrack -L 2>&1 | grep 8080; dmesg | tail -5").CombinedOutput()
			t.Fatalf("answer %+v, err %v\nkernel state:\n%s", a, err, diag)
		}
	})
	t.Run("the scheduler-flags annotation reaches the kernel", func(t *testing.T) {
		// status reads the virtual server back from the kernel over netlink.
		out := run(t, "status", os.Getenv(envProxyBin), "status", "--kubeconfig", os.Getenv(envKubeconfig), "--service", w.ns+"/flagged")
		if want := "TCP  " + vip(flagged) + " sh (sh-fallback,sh-port)"; !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	})
	t.Run("sh: one client always lands on one pod, clients spread", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 10; i < 30; i++ {
			src := fmt.Sprintf("192.168.100.%d", i)
			first := ""
			for j := 0; j < 3; j++ {
				a, err := ask("ext", "tcp", vip(hash), src)
				if err != nil {
					t.Fatal(err)
				}
				if first == "" {
					first = a.pod
				} else if a.pod != first {
					t.Fatalf("client %s went to %s then %s", src, first, a.pod)
				}
			}
			seen[first] = true
		}
		if len(seen) != 2 {
			t.Fatalf("20 clients all landed on %v", seen)
		}
	})
	t.Run("lc (the --ipvs-scheduler flag): new connections avoid the pod holding long ones", func(t *testing.T) {
		var held []net.Conn
		for i := 0; i < 3; i++ {
			c, err := dial("", vip(least))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if a, err := roundTrip(c); err != nil || a.pod != "pod-a" {
				t.Fatalf("held connection: %+v, %v", a, err)
			}
			held = append(held, c)
		}
		w.endpoints(least, ep{pod: "pod-a"}, ep{pod: "pod-b"})
		waitIPVS(t, "TCP "+vip(least)+" lc", rs("pod-a"), rs("pod-b"))
		for i := 0; i < 6; i++ {
			a, err := ask("", "tcp", vip(least), "")
			if err != nil || a.pod != "pod-b" {
				t.Fatalf("request %d: %+v, %v; want pod-b (pod-a holds %d connections)", i, a, err, len(held))
			}
		}
	})
	t.Run("session affinity: one client sticks to one pod", func(t *testing.T) {
		first := ""
		for i := 0; i < 6; i++ {
			a, err := ask("ext", "tcp", vip(sticky), "")
			if err != nil {
				t.Fatal(err)
			}
			if first == "" {
				first = a.pod
			} else if a.pod != first {
				t.Fatalf("request %d went to %s, first to %s", i, a.pod, first)
			}
		}
	})
	t.Run("NodePort from the external client on every node address, masqueraded", func(t *testing.T) {
		port := npCluster.Spec.Ports[0].NodePort
		for _, addr := range []string{"10.0.2.15", "192.168.100.1"} {
			a, err := ask("ext", "tcp", hostPort(addr, port), "")
			if err != nil || a.pod != "pod-a" {
				t.Fatalf("%s: %+v, %v", addr, a, err)
			}
			if a.seen == "192.168.100.2" {
				t.Errorf("%s: externalTrafficPolicy Cluster, yet the pod saw the client's own address", addr)
			}
		}
	})
	t.Run("externalTrafficPolicy Local: only local endpoints, client address kept", func(t *testing.T) {
		port := npLocal.Spec.Ports[0].NodePort
		for i := 0; i < 4; i++ {
			a, err := ask("ext", "tcp", hostPort("192.168.100.1", port), "")
			if err != nil || a.pod != "pod-a" || a.seen != "192.168.100.2" {
				t.Fatalf("answer %+v, err %v; want pod-a seeing 192.168.100.2", a, err)
			}
		}
		w.endpoints(npLocal, ep{pod: "pod-a", node: "other-node"}, ep{pod: "pod-b", node: "other-node"})
		// Present, with pod-a draining the connections just made, or none.
		waitIPVSDrained(t, fmt.Sprintf("TCP 192.168.100.1:%d lc", port), nil, rs("pod-a"))
		if a, err := ask("ext", "tcp", hostPort("192.168.100.1", port), ""); err == nil {
			t.Fatalf("no local endpoint, yet %s answered", a.pod)
		}
	})
	t.Run("UDP through a ClusterIP", func(t *testing.T) {
		a, err := ask("", "udp", hostPort(dns.Spec.ClusterIP, 53), "")
		if err != nil || (a.pod != "pod-a" && a.pod != "pod-b") {
			t.Fatalf("answer %+v, err %v", a, err)
		}
	})
	t.Run("IPv6 ClusterIP", func(t *testing.T) {
		a, err := ask("pod-c", "tcp", hostPort(v6.Spec.ClusterIP, 80), "")
		if err != nil || a.pod != "pod-a" {
			t.Fatalf("answer %+v, err %v", a, err)
		}
	})
	t.Run("status matches ipvsadm entry for entry, labelled with Services", func(t *testing.T) {
		out, err := exec.Command(os.Getenv(envProxyBin), "status", "--kubeconfig", os.Getenv(envKubeconfig), "--hostname-override", nodeName).CombinedOutput()
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "# e2e/web:tcp") {
			t.Errorf("status has no label for e2e/web:\n%s", out)
		}
		var unlabelled []string
		for _, l := range strings.Split(string(out), "\n") {
			l, _, _ = strings.Cut(l, "#")
			unlabelled = append(unlabelled, l)
		}
		got, _ := exec.Command("ipvsadm", "-Ln").Output()
		if a, b := normalize(strings.Join(unlabelled, "\n")), normalize(stripCounters(string(got))); a != b {
			t.Errorf("status and ipvsadm differ:\nstatus:\n%s\nipvsadm:\n%s", a, b)
		}
	})
	t.Run("endpoint removal, then Service deletion, leave nothing behind", func(t *testing.T) {
		w.endpoints(web, ep{pod: "pod-a"})
		waitIPVSDrained(t, "TCP "+vip(web)+" rr", []string{rs("pod-a")}, rs("pod-b"))
		if err := w.client.CoreV1().Services(w.ns).Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitIPVS(t, "TCP "+vip(web)+" rr")
		if out := sh(t, "ip -o addr show dev kube-ipvs0"); strings.Contains(out, " "+web.Spec.ClusterIP+"/") {
			t.Errorf("VIP %s still on kube-ipvs0:\n%s", web.Spec.ClusterIP, out)
		}
	})
	t.Run("SIGKILL and restart: an established connection keeps working", func(t *testing.T) {
		c, err := dial("ext", vip(sticky))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		first, err := roundTrip(c)
		if err != nil {
			t.Fatal(err)
		}
		before := ipvsTable(t)
		w.stopProxy(syscall.SIGKILL)
		if a, err := roundTrip(c); err != nil || a.pod != first.pod {
			t.Fatalf("with the proxy dead: %+v, %v", a, err)
		}
		w.startProxy()
		time.Sleep(3 * time.Second) // a full sync at start, and a few more
		if a, err := roundTrip(c); err != nil || a.pod != first.pod {
			t.Fatalf("after restart: %+v, %v", a, err)
		}
		if after := ipvsTable(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("kernel changed across the restart:\nbefore %v\nafter  %v", before, after)
		}
	})
	t.Run("foreign virtual servers and addresses survive sync and cleanup", func(t *testing.T) {
		sh(t, `ipvsadm -A -t 172.17.0.1:8080 -s wlc
ipvsadm -a -t 172.17.0.1:8080 -r 172.17.0.2:80 -m -w 3
ipvsadm -A -u 10.0.2.15:30999 -s rr
ip addr add 192.0.2.1/32 dev lo`)
		w.endpoints(sticky, ep{pod: "pod-b"}) // any change: a sync runs
		waitIPVSDrained(t, "TCP "+vip(sticky)+" rr persistent 600", []string{rs("pod-b")}, rs("pod-a"))
		w.stopProxy(syscall.SIGTERM)
		out, err := exec.Command(os.Getenv(envProxyBin), "cleanup").CombinedOutput()
		if err != nil {
			t.Fatalf("cleanup: %v\n%s", err, out)
		}
		want := map[string][]string{"TCP 172.17.0.1:8080 wlc": {"172.17.0.2:80 Masq 3"}, "UDP 10.0.2.15:30999 rr": {}}
		if got := ipvsTable(t); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after cleanup the kernel has %v, want only the foreign %v", got, want)
		}
		if out := sh(t, "ip -o addr show dev lo"); !strings.Contains(out, "192.0.2.1/32") {
			t.Errorf("foreign address gone:\n%s", out)
		}
		if out, err := exec.Command("ip", "link", "show", "kube-ipvs0").CombinedOutput(); err == nil {
			t.Errorf("kube-ipvs0 still there:\n%s", out)
		}
		if out := sh(t, "iptables-save -t nat"); strings.Contains(out, "IPVS-PROXY") {
			t.Errorf("ipvs-proxy's chains still there:\n%s", out)
		}
	})
}

func stripCounters(table string) string {
	var out []string
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) == 6 && f[0] == "->" {
			l = strings.Join(f[:4], " ")
		}
		if len(f) >= 3 && f[0] == "->" && f[1] == "RemoteAddress:Port" {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
