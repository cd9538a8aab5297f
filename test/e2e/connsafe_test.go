package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// drainTimeout is the proxy's --graceful-termination-timeout here: long
// enough for every drain below, short enough to see a deadline pass.
const drainTimeout = 10 * time.Second

// TestGuestConnectionSafety is what live traffic sees while things change:
// rolling updates of TCP and UDP Services, health-check node ports, VIPs
// guarding host ports, and eTP Local without local endpoints.
func TestGuestConnectionSafety(t *testing.T) {
	guest(t)
	w := newWorld(t, "safe")
	w.startProxy("--graceful-termination-timeout", drainTimeout.String())
	w.waitFirstSync()

	t.Run("rolling update under steady TCP load: no failed request, the long connection lives until its pod exits", func(t *testing.T) {
		rollTCP(t, w)
	})
	t.Run("UDP rollout: the client's flow moves to live pods, no gap over 1 s", func(t *testing.T) {
		rollUDP(t, w)
	})
	t.Run("control: a UDP real server drained like a TCP one blackholes its flow", func(t *testing.T) {
		udpControl(t)
	})
	t.Run("health-check node port answers 200 with local ready endpoints, 503 without", func(t *testing.T) {
		healthCheckNodePort(t, w)
	})
	t.Run("a host process on 0.0.0.0 is not reachable through any VIP", func(t *testing.T) {
		vipGuard(t, w)
	})
	t.Run("eTP Local without local endpoints drops quietly: no kernel log", func(t *testing.T) {
		quietDrop(t, w)
	})
}

// load sends short TCP requests to addr from the external client until
// stopped, and counts what failed.
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	ok       int
	failures []string
	pods     map[string]int
}

func startLoad(addr string) *load {
	l := &load{stop: make(chan struct{}), pods: map[string]int{}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			a, err := ask("ext", "tcp", addr, "")
			l.mu.Lock()
			if err != nil {
				l.failures = append(l.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
			} else {
				l.ok++
				l.pods[a.pod]++
			}
			l.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return l
}

func (l *load) finish() (ok int, failures []string, pods map[string]int) {
	close(l.stop)
	l.wg.Wait()
	return l.ok, l.failures, l.pods
}

func rollTCP(t *testing.T, w *world) {
	const port = 9090
	servers := map[string]*podServer{}
	for _, p := range []string{"pod-a", "pod-b", "pod-c", "pod-d"} {
		servers[p] = startPod(t, p, port)
	}
	svc := w.service("roll", scheduler("rr"))
	w.slice(svc, port, podState{pod: "pod-a"}, podState{pod: "pod-b"})
	vs := "TCP " + hostPort(svc.Spec.ClusterIP, 80) + " rr"
	waitIPVS(t, vs, rsOn("pod-a", port, 1), rsOn("pod-b", port, 1))

	long, err := dial("ext", hostPort(svc.Spec.ClusterIP, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	first, err := roundTrip(long)
	if err != nil {
		t.Fatal(err)
	}
	longPod := first.pod
	other := map[string]string{"pod-a": "pod-b", "pod-b": "pod-a"}[longPod]
	t.Logf("the long-lived connection is on %s", longPod)

	l := startLoad(hostPort(svc.Spec.ClusterIP, 80))
	time.Sleep(time.Second)

	// Replace the long connection's pod by pod-c, then the other by pod-d,
	// the way a Deployment's rolling update does: the new pod is ready
	// before the old one turns terminating; the old one serves until its
	// process exits; then its endpoint goes.
	w.slice(svc, port, podState{pod: longPod, terminating: true}, podState{pod: other}, podState{pod: "pod-c"})
	// Weight 0, not deleted: it holds a live connection.
	waitIPVS(t, vs, rsOn(longPod, port, 0), rsOn(other, port, 1), rsOn("pod-c", port, 1))
	time.Sleep(2 * time.Second)
	for i := 0; i < 3; i++ {
		if a, err := roundTrip(long); err != nil || a.pod != longPod {
			t.Fatalf("long-lived connection while %s terminates: %+v, %v", longPod, a, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Its endpoint is gone from the API, its process still finishing.
	w.slice(svc, port, podState{pod: other}, podState{pod: "pod-c"})
	time.Sleep(time.Second)
	if a, err := roundTrip(long); err != nil || a.pod != longPod {
		t.Fatalf("long-lived connection after its endpoint left the API: %+v, %v", a, err)
	}
	waitIPVS(t, vs, rsOn(longPod, port, 0), rsOn(other, port, 1), rsOn("pod-c", port, 1))
	servers[longPod].Stop() // the pod finishes terminating
	if _, err := roundTrip(long); err == nil {
		t.Fatalf("the long-lived connection outlived its pod's process")
	}
	drainStart := time.Now()
	waitIPVS(t, vs, rsOn(other, port, 1), rsOn("pod-c", port, 1))
	t.Logf("%s's real server deleted %s after its pod exited (deadline %s)", longPod, time.Since(drainStart).Round(100*time.Millisecond), drainTimeout)

	w.slice(svc, port, podState{pod: other, terminating: true}, podState{pod: "pod-c"}, podState{pod: "pod-d"})
	waitIPVSDrained(t, vs, []string{rsOn("pod-c", port, 1), rsOn("pod-d", port, 1)}, rsOn(other, port, 1))
	time.Sleep(2 * time.Second)
	servers[other].Stop()
	w.slice(svc, port, podState{pod: "pod-c"}, podState{pod: "pod-d"})
	time.Sleep(2 * time.Second)

	ok, failures, seen := l.finish()
	t.Logf("steady load through the rollout: %d requests answered, %d failed, by pod %v", ok, len(failures), seen)
	if len(failures) > 0 {
		t.Errorf("failed requests:\n%s", strings.Join(failures, "\n"))
	}
	if ok < 50 || seen["pod-c"] == 0 || seen["pod-d"] == 0 {
		t.Errorf("the load did not run through the rollout: %d answers, by pod %v", ok, seen)
	}
	waitIPVS(t, vs, rsOn("pod-c", port, 1), rsOn("pod-d", port, 1))
}

func rollUDP(t *testing.T, w *world) {
	const port = 9091
	servers := map[string]*podServer{}
	for _, p := range []string{"pod-a", "pod-b", "pod-c", "pod-d"} {
		servers[p] = startPod(t, p, port)
	}
	svc := w.service("dns-roll", func(s *v1.Service) {
		scheduler("rr")(s)
		s.Spec.Ports = []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53}}
	})
	w.slice(svc, port, podState{pod: "pod-a"}, podState{pod: "pod-b"})
	vs := "UDP " + hostPort(svc.Spec.ClusterIP, 53) + " rr"
	waitIPVS(t, vs, rsOn("pod-a", port, 1), rsOn("pod-b", port, 1))

	// One client socket, one source port: a DNS client's steady flow, the
	// case a stale conntrack entry blackholes.
	var c net.Conn
	if err := inNetns("ext", func() error {
		var err error
		c, err = net.Dial("udp", hostPort(svc.Spec.ClusterIP, 53))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Datagrams are numbered; the longest outage is the time from the
	// first lost one to the next answered one, in send time, so a slow
	// test machine that sends late does not count as a gap.
	var mu sync.Mutex
	var sentAt []time.Time
	answered := map[int]bool{}
	byPod := map[string]int{}
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // ICMP errors surface here; the lost datagram shows them
			}
			f := strings.Fields(string(buf[:n]))
			if len(f) != 3 {
				continue
			}
			var seq int
			fmt.Sscan(f[2], &seq) //nolint:errcheck
			mu.Lock()
			answered[seq] = true
			byPod[f[0]]++
			mu.Unlock()
		}
	}()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				mu.Lock()
				seq := len(sentAt)
				sentAt = append(sentAt, time.Now())
				mu.Unlock()
				fmt.Fprintf(c, "%d\n", seq) //nolint:errcheck
			}
		}
	}()
	time.Sleep(time.Second)
	for _, step := range [][2]string{{"pod-a", "pod-c"}, {"pod-b", "pod-d"}} {
		old, repl := step[0], step[1]
		var keep []podState
		for _, p := range []string{"pod-a", "pod-b", "pod-c", "pod-d"} {
			if p != old && p != repl && ipvsHas(t, vs, rsOn(p, port, 1)) {
				keep = append(keep, podState{pod: p})
			}
		}
		w.slice(svc, port, append(keep, podState{pod: old, terminating: true}, podState{pod: repl})...)
		// UDP leaves at once: a weight-0 UDP real server would keep every
		// flow it has while the client keeps sending.
		want := []string{rsOn(repl, port, 1)}
		for _, k := range keep {
			want = append(want, rsOn(k.pod, port, 1))
		}
		waitIPVS(t, vs, want...)
		time.Sleep(time.Second)
		servers[old].Stop()
		w.slice(svc, port, append(keep, podState{pod: repl})...)
		time.Sleep(2 * time.Second)
	}
	close(stop)
	<-done
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	lost, outage, firstLost := 0, time.Duration(0), -1
	for i := range sentAt {
		switch {
		case !answered[i]:
			lost++
			if firstLost < 0 {
				firstLost = i
			}
		case firstLost >= 0:
			outage = max(outage, sentAt[i].Sub(sentAt[firstLost]))
			firstLost = -1
		}
	}
	if firstLost >= 0 {
		outage = max(outage, time.Since(sentAt[firstLost]))
	}
	t.Logf("UDP every 100 ms through the rollout: %d sent, %d lost, answered by %v; longest outage %s",
		len(sentAt), lost, byPod, outage.Round(time.Millisecond))
	if outage > time.Second {
		t.Errorf("no answer for %s: the flow stayed on a dead backend", outage.Round(time.Millisecond))
	}
	if byPod["pod-c"]+byPod["pod-d"] == 0 || lost > len(sentAt)/2 {
		t.Errorf("the flow never reached the new pods: %v", byPod)
	}
}

func ipvsHas(t *testing.T, vs, line string) bool {
	for _, l := range ipvsTable(t)[vs] {
		if l == line {
			return true
		}
	}
	return false
}

// healthStatus is kube-proxy's health-check node port body.
type healthStatus struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

func healthCheckNodePort(t *testing.T, w *world) {
	svc := w.service("lb", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	})
	port := svc.Spec.HealthCheckNodePort
	if port == 0 {
		t.Fatal("the API server allocated no healthCheckNodePort")
	}
	url := fmt.Sprintf("http://192.168.100.1:%d/healthz", port)
	expect := func(what string, code, local int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			gotCode, body, err := httpGet("ext", url)
			var st healthStatus
			if err == nil {
				err = json.Unmarshal(body, &st)
			}
			if err == nil && gotCode == code && st.LocalEndpoints == local && st.Service.Name == "lb" && st.Service.Namespace == w.ns && st.ServiceProxyHealthy {
				t.Logf("%s: %d %s", what, gotCode, strings.Join(strings.Fields(string(body)), " "))
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: got %d %s (err %v), want %d with localEndpoints %d", what, gotCode, body, err, code, local)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	w.slice(svc, 8080, podState{pod: "pod-a"})
	expect("one local ready endpoint", http.StatusOK, 1)
	w.slice(svc, 8080, podState{pod: "pod-a", terminating: true}, podState{pod: "pod-b", node: "other-node"})
	expect("local endpoint terminating, a remote one ready", http.StatusServiceUnavailable, 0)
	w.slice(svc, 8080, podState{pod: "pod-a"}, podState{pod: "pod-c"}, podState{pod: "pod-b", node: "other-node"})
	expect("two local ready endpoints", http.StatusOK, 2)
	w.slice(svc, 8080, podState{pod: "pod-b", node: "other-node"})
	expect("remote endpoints only", http.StatusServiceUnavailable, 0)
	if err := w.client.CoreV1().Services(w.ns).Delete(context.Background(), "lb", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, err := httpGet("ext", url); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d still answers after the Service was deleted", port)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpGet(netns, url string) (int, []byte, error) {
	var code int
	var body []byte
	err := inNetns(netns, func() error {
		// A fresh transport: its dialer runs on this thread, in netns.
		c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		code = resp.StatusCode
		body, err = io.ReadAll(resp.Body)
		return err
	})
	return code, body, err
}

func vipGuard(t *testing.T, w *world) {
	const port = 7777
	ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "host process")
			c.Close()
		}
	}()
	guarded := w.service("guarded", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.10"} }, ep{pod: "pod-a"})
	empty := w.service("empty", nil)
	waitIPVS(t, "TCP "+hostPort(guarded.Spec.ClusterIP, 80)+" lc", rs("pod-a"))
	waitIPVS(t, "TCP 203.0.113.10:80 lc", rs("pod-a"))
	waitIPVS(t, "TCP "+hostPort(empty.Spec.ClusterIP, 80)+" lc", []string{}...)

	// The control: the host process is there, on the node's address.
	if _, err := dial("ext", hostPort("192.168.100.1", port)); err != nil {
		t.Fatalf("the host process is not reachable even on the node address: %v", err)
	}
	for _, vip := range []string{guarded.Spec.ClusterIP, "203.0.113.10", empty.Spec.ClusterIP} {
		for _, from := range []string{"ext", "pod-c", ""} {
			c, err := dial(from, hostPort(vip, port))
			if err == nil {
				c.Close()
				t.Errorf("from %q, %s:%d reached the host process", from, vip, port)
				continue
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("from %q, %s:%d: %v, want connection refused (rejected, not dropped)", from, vip, port, err)
			}
		}
	}
	if a, err := ask("ext", "tcp", hostPort(guarded.Spec.ClusterIP, 80), ""); err != nil || a.pod != "pod-a" {
		t.Errorf("the Service port itself: %+v, %v", a, err)
	}
	if _, err := dial("ext", hostPort(empty.Spec.ClusterIP, 80)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a Service without endpoints: %v, want connection refused", err)
	}
}

// dmesgCount counts IPVS's "no destination available" lines so far.
func dmesgCount(t *testing.T) int {
	out, err := exec.Command("dmesg").CombinedOutput()
	if err != nil {
		t.Fatalf("dmesg: %v\n%s", err, out)
	}
	return strings.Count(string(out), "no destination available")
}

func quietDrop(t *testing.T, w *world) {
	svc := w.service("quiet", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}, ep{pod: "pod-b", node: "other-node"})
	port := svc.Spec.Ports[0].NodePort
	waitIPVS(t, fmt.Sprintf("TCP 192.168.100.1:%d lc", port), []string{}...)
	syns := func(addr string) (refused, timedOut int) {
		for i := 0; i < 10; i++ {
			err := inNetns("ext", func() error {
				c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return err
			})
			var ne net.Error
			switch {
			case err == nil:
				t.Errorf("%s answered", addr)
			case errors.Is(err, syscall.ECONNREFUSED):
				refused++
			case errors.As(err, &ne) && ne.Timeout():
				timedOut++
			}
		}
		return
	}
	// The control: a virtual server without real servers, as kube-proxy
	// leaves for such a Service, makes the kernel log.
	sh(t, "ipvsadm -A -t 192.168.100.1:30998 -s rr")
	before := dmesgCount(t)
	syns("192.168.100.1:30998")
	logged := dmesgCount(t) - before
	sh(t, "ipvsadm -D -t 192.168.100.1:30998")
	if logged == 0 {
		t.Fatalf("the control made no kernel log line: this check could not fail")
	}

	before = dmesgCount(t)
	refused, timedOut := syns(hostPort("192.168.100.1", port))
	after := dmesgCount(t)
	t.Logf("10 connects to an empty virtual server: %d kernel log lines; 10 to eTP Local NodePort %d without local endpoints: %d refused, %d dropped, %d log lines",
		logged, port, refused, timedOut, after-before)
	if after != before {
		t.Errorf("the kernel logged %d lines of \"no destination available\"", after-before)
	}
	if timedOut != 10 {
		t.Errorf("%d of 10 connects were dropped, want all (kube-proxy drops them too, so load balancers time out and retry elsewhere)", timedOut)
	}
}

// udpControl shows that rollUDP could fail, and why UDP real servers are
// deleted rather than drained: a UDP real server left at weight 0 (as a
// TCP one is) keeps the client's flow, which dies with its pod although
// another pod is ready. (Deleting it is what moves the flow; on this
// kernel, with expire_nodest_conn=1, IPVS then also drops the flow's
// conntrack entry itself, and ipvs-proxy's own clean-up finds nothing
// left. It matters where the kernel does not.)
func udpControl(t *testing.T) {
	const port = 9092
	a, b := startPod(t, "pod-a", port), startPod(t, "pod-b", port)
	defer a.Stop()
	defer b.Stop()
	sh(t, fmt.Sprintf(`ipvsadm -A -u 192.168.100.1:30997 -s rr
ipvsadm -a -u 192.168.100.1:30997 -r 10.244.0.2:%[1]d -m
ipvsadm -a -u 192.168.100.1:30997 -r 10.244.0.3:%[1]d -m`, port))
	defer exec.Command("ipvsadm", "-D", "-u", "192.168.100.1:30997").Run() //nolint:errcheck
	var c net.Conn
	if err := inNetns("ext", func() error {
		var err error
		c, err = net.Dial("udp", "192.168.100.1:30997")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func() string {
		c.SetDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck
		fmt.Fprintln(c, "0")                                  //nolint:errcheck
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return ""
		}
		return podOf(string(buf[:n]))
	}
	first := send()
	servers := map[string]*podServer{"pod-a": a, "pod-b": b}
	if servers[first] == nil {
		t.Fatalf("first answer from %q", first)
	}
	sh(t, fmt.Sprintf("ipvsadm -e -u 192.168.100.1:30997 -r 10.244.0.%d:%d -m -w 0", pods[first], port))
	servers[first].Stop()
	answered := 0
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		if send() != "" {
			answered++
		}
	}
	t.Logf("%s drained at weight 0 instead of deleted, then its pod exits: %d answers in 3 s (the other pod was ready)", first, answered)
	if answered > 0 {
		t.Errorf("the flow left a weight-0 UDP real server by itself: the UDP rollout test would pass without deleting it")
	}
}
