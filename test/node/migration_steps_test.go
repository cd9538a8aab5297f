//go:build conformance

package node

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

//go:embed testdata/kubeadm-kube-proxy.yaml
var kubeadmKubeProxy string

const (
	echoNamespace = "migration"
	echoPods      = 2
)

// migration is the state the migration test's steps share.
type migration struct {
	t                              *testing.T
	node                           node
	ipvsProxyImage, kubeProxyImage string // name:tag, as imported on the node
	directAddr                     string // one echo pod's HTTP address, for the baseline stream
}

// kubectl runs kubectl as the cluster's admin and logs the command and its
// output: these are the user's steps.
func (m *migration) kubectl(args ...string) string {
	m.t.Helper()
	out := run(m.t, filepath.Join(m.node.Bin, "kubectl"), append([]string{"--kubeconfig", m.node.Admin}, args...)...)
	m.t.Logf("$ kubectl %s\n%s", strings.Join(args, " "), strings.TrimSpace(out))
	return out
}

// installKubeProxy applies kube-proxy's objects as kubeadm makes them, with
// the image built here and the API server's address as the node reaches it.
func (m *migration) installKubeProxy() {
	m.t.Helper()
	file := filepath.Join(m.t.TempDir(), "kube-proxy.yaml")
	write(m.t, file, strings.NewReplacer("API_SERVER", "https://"+os.Getenv(envAPI), "IMAGE", m.kubeProxyImage).Replace(kubeadmKubeProxy))
	m.kubectl("apply", "-f", file)
}

// createEchoServers runs the test server with its echo ports as a
// Deployment and returns its pods once Ready.
func (m *migration) createEchoServers() []v1.Pod {
	m.t.Helper()
	c := m.node.Client
	ctx := context.Background()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: echoNamespace}}, metav1.CreateOptions{}); err != nil {
		m.t.Fatal(err)
	}
	d := serverDeployment(echoNamespace, "echo", echoPods, "--http-port=8080", "--tcp-echo-port=8081", "--udp-echo-port=8082")
	waitFor(m.t, "the echo Deployment", time.Minute, func() error {
		_, err := c.AppsV1().Deployments(echoNamespace).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	return waitPodsReady(m.t, c, echoNamespace, "app=echo", echoPods)
}

// createEchoService is a NodePort Service over the echo servers: HTTP on
// 80, the TCP echo on 81 and the UDP echo on 82.
func (m *migration) createEchoService() *v1.Service {
	m.t.Helper()
	port := func(name string, p int32, proto v1.Protocol) v1.ServicePort {
		return v1.ServicePort{Name: name, Port: p, TargetPort: intstr.FromInt32(p + 8000), Protocol: proto}
	}
	s, err := m.node.Client.CoreV1().Services(echoNamespace).Create(context.Background(), &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: echoNamespace},
		Spec: v1.ServiceSpec{
			Type:     v1.ServiceTypeNodePort,
			Selector: map[string]string{"app": "echo"},
			Ports:    []v1.ServicePort{port("http", 80, v1.ProtocolTCP), port("tcp-echo", 81, v1.ProtocolTCP), port("udp-echo", 82, v1.ProtocolUDP)},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

// waitProgrammed waits until the Service's ClusterIP ports have the pods.
func (m *migration) waitProgrammed(svc *v1.Service, pods []v1.Pod) {
	m.t.Helper()
	waitFor(m.t, "the echo Service in IPVS", 4*time.Minute, func() error {
		tb := parseTable(ipvsTable())
		for _, p := range svc.Spec.Ports {
			vs := fmt.Sprintf("%s %s:%d rr", p.Protocol, svc.Spec.ClusterIP, p.Port)
			if len(tb[vs]) != len(pods) {
				return fmt.Errorf("%s has %q", vs, tb[vs])
			}
		}
		return nil
	})
}

// replaceKubeProxy follows the README's "Replacing kube-proxy" for a
// kubeadm cluster: only the DaemonSet's image changes. It returns when
// ipvs-proxy's first sync was seen, after waiting for step 3 too: after
// that sync ipvs-proxy removes kube-proxy's KUBE-* chains and ipsets.
func (m *migration) replaceKubeProxy() (synced time.Time) {
	m.t.Helper()
	m.kubectl("-n", "kube-system", "set", "image", "daemonset/kube-proxy", "kube-proxy="+m.ipvsProxyImage)
	synced = m.waitProxySynced("ipvs-proxy", m.waitProxyPod(m.ipvsProxyImage), "IPv4")
	waitFor(m.t, "kube-proxy's chains and ipsets removed", 4*time.Minute, func() error {
		if c, s := chains(), ipsets(); strings.Contains(c, "KUBE-SERVICES") || strings.Contains(s, "KUBE-") {
			return fmt.Errorf("still there:\n%s\n%s", c, s)
		}
		return nil
	})
	return synced
}

// waitProxyPod waits until the DaemonSet's one pod runs image, and returns
// when its container started.
func (m *migration) waitProxyPod(image string) time.Time {
	m.t.Helper()
	var started time.Time
	waitFor(m.t, "the kube-proxy DaemonSet's pod running "+image, 4*time.Minute, func() error {
		list, err := m.node.Client.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy"})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		p := list.Items[0]
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].Image != image || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("pod %s: %+v", p.Name, p.Status.ContainerStatuses)
		}
		started = p.Status.ContainerStatuses[0].State.Running.StartedAt.Time
		return nil
	})
	return started
}

// waitProxySynced waits for a sync of the proxy on the node that ended
// after since in each of families, and returns when it saw them: kube-proxy
// and ipvs-proxy both say when their last sync of a family ended, in the
// same metric. kube-proxy runs one proxier per family, each syncing on its
// own; ipvs-proxy's syncs cover both.
func (m *migration) waitProxySynced(who string, since time.Time, families ...string) time.Time {
	m.t.Helper()
	at, err := proxySynced(since, 4*time.Minute, families...)
	if err != nil {
		m.t.Fatalf("%s's first sync: %v", who, err)
	}
	return at
}

// proxySynced is waitProxySynced's wait, which reports its failure.
func proxySynced(since time.Time, timeout time.Duration, families ...string) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		ts, err := syncTimestamps()
		for _, f := range families {
			if _, labelled := ts[f]; !labelled {
				f = "" // a metric without the label speaks for every family
			}
			if err == nil && (ts[f] == 0 || ts[f] < float64(since.Unix())) {
				err = fmt.Errorf("no %s sync since %s yet: %v", f, since, ts)
			}
		}
		if err == nil {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Now(), fmt.Errorf("not after %s: %w", timeout, err)
		}
		time.Sleep(time.Second)
	}
}

var syncMetric = regexp.MustCompile(`(?m)^kubeproxy_sync_proxy_rules_last_timestamp_seconds(?:\{ip_family="(\w+)"\})? (\S+)$`)

// syncTimestamps reads when the proxy's last sync of each IP family ended.
func syncTimestamps() (map[string]float64, error) {
	resp, err := http.Get("http://127.0.0.1:10249/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	ts := map[string]float64{}
	for _, match := range syncMetric.FindAllStringSubmatch(string(body), -1) {
		if ts[match[1]], err = strconv.ParseFloat(match[2], 64); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

// scaleAndAddService adds a pod to the echo Deployment and a ClusterIP
// Service over the echo servers, and returns the new pod and Service.
func (m *migration) scaleAndAddService(pods []v1.Pod) (v1.Pod, *v1.Service) {
	m.t.Helper()
	m.kubectl("-n", echoNamespace, "scale", "deployment/echo", "--replicas="+strconv.Itoa(echoPods+1))
	svc, err := m.node.Client.CoreV1().Services(echoNamespace).Create(context.Background(), &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "added", Namespace: echoNamespace},
		Spec: v1.ServiceSpec{
			Selector: map[string]string{"app": "echo"},
			Ports:    []v1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		m.t.Fatal(err)
	}
	now := waitPodsReady(m.t, m.node.Client, echoNamespace, "app=echo", echoPods+1)
	for _, p := range now {
		if p.Status.PodIP != pods[0].Status.PodIP && p.Status.PodIP != pods[1].Status.PodIP {
			return p, svc
		}
	}
	m.t.Fatalf("no new pod among %d", len(now))
	return v1.Pod{}, nil
}

// addPort adds port (to the pods' 8080) to svc, waits up to 2 minutes
// for the proxy to give it backends real servers, and returns its
// clusterIP:port.
func (m *migration) addPort(svc *v1.Service, port int32, backends int) string {
	m.t.Helper()
	services := m.node.Client.CoreV1().Services(svc.Namespace)
	s, err := services.Get(context.Background(), svc.Name, metav1.GetOptions{})
	if err != nil {
		m.t.Fatal(err)
	}
	s.Spec.Ports[0].Name = "http"
	s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "added", Port: port, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP})
	if _, err := services.Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		m.t.Fatal(err)
	}
	vs := fmt.Sprintf("TCP %s:%d rr", svc.Spec.ClusterIP, port)
	deadline := time.Now().Add(2 * time.Minute)
	for rs := parseTable(ipvsTable())[vs]; len(rs) != backends; rs = parseTable(ipvsTable())[vs] {
		if time.Now().After(deadline) {
			// Go on: what follows still measures, and the proxy's log says why.
			m.t.Errorf("%s not programmed after 2 minutes: it has %q", vs, rs)
			m.kubectl("-n", "kube-system", "logs", "--tail=80", "daemonset/kube-proxy")
			break
		}
		time.Sleep(time.Second)
	}
	return fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, port)
}

func (m *migration) deleteService(name string) {
	m.t.Helper()
	m.kubectl("-n", echoNamespace, "delete", "service", name)
}

// cleanupRulesOnly is the rollback's second step: ipvs-proxy's chains and
// ipsets removed by its own binary in a node debugging pod.
func (m *migration) cleanupRulesOnly() {
	m.t.Helper()
	out := m.kubectl("debug", "node/"+nodeName, "--profile=sysadmin", "--image="+m.ipvsProxyImage, "--", "ipvs-proxy", "cleanup", "--rules-only")
	pod := regexp.MustCompile(`pod (node-debugger-\S+)`).FindStringSubmatch(out)
	if pod == nil {
		m.t.Fatalf("kubectl debug named no pod: %s", out)
	}
	waitFor(m.t, "the debugging pod to complete", 3*time.Minute, func() error {
		p, err := m.node.Client.CoreV1().Pods("default").Get(context.Background(), pod[1], metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != v1.PodSucceeded {
			return fmt.Errorf("phase %s: %+v", p.Status.Phase, p.Status.ContainerStatuses)
		}
		return nil
	})
	m.kubectl("logs", pod[1])
	m.kubectl("delete", "pod", pod[1])
}

// checkProxyLog: the ipvs-proxy pod, running under kube-proxy's
// ServiceAccount and ClusterRole, was refused nothing.
func (m *migration) checkProxyLog() {
	m.t.Helper()
	out := m.kubectl("-n", "kube-system", "logs", "daemonset/kube-proxy")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "forbidden") || strings.Contains(line, "Forbidden") {
			m.t.Errorf("ipvs-proxy was refused something: %s", line)
		}
	}
}

// expectTable waits up to a minute for the IPVS table to be want.
func (m *migration) expectTable(what, want string) {
	m.t.Helper()
	m.expectText(what, ipvsTable, want)
}

// expectText waits up to a minute for read() to return want, and reports
// (without stopping the test) the last text read when it does not.
func (m *migration) expectText(what string, read func() string, want string) {
	m.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := read()
		if got == want {
			m.t.Logf("%s, as expected:\n%s", what, got)
			return
		}
		if time.Now().After(deadline) {
			m.t.Errorf("%s:\n%s\nwant:\n%s", what, got, want)
			return
		}
		time.Sleep(time.Second)
	}
}
