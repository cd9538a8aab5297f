package node

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

//go:embed testdata/kustomization.yaml
var overlay string

const (
	namespace   = "node-test"
	serverImage = "localhost/ipvs-proxy-test/server:1"
	serverPods  = 2
)

func TestGuestNode(t *testing.T) {
	if !vm.InGuest() {
		t.Skip("runs inside the VM, started by TestNode")
	}
	start := time.Now()
	n := startNode(t)
	c, bin, admin := n.Client, n.Bin, n.Admin
	applyManifests(t, bin, admin)
	createServers(t, c)
	proxyPod := waitProxyReady(t, c)
	pods := waitServers(t, c)
	clusterIP, nodePort := createServices(t, c)

	// The kernel's table for each Service, in full (without counters), then
	// what the pods answer: rr over two pods, four new connections, each
	// pod twice.
	var backends []string
	for _, p := range pods {
		backends = append(backends, fmt.Sprintf("  -> %s:8080 Masq 1", p.Status.PodIP))
	}
	slices.Sort(backends)
	var want []string
	for _, p := range pods {
		want = append(want, p.Name, p.Name)
	}
	slices.Sort(want)
	for _, vip := range []string{fmt.Sprintf("%s:80", clusterIP), fmt.Sprintf("%s:%d", nodeIP, nodePort)} {
		wantTable := strings.Join(append([]string{"TCP " + vip + " rr"}, backends...), "\n")
		var got string
		waitFor(t, "IPVS for "+vip, time.Minute, func() error {
			if got = ipvsService(vip); got != wantTable {
				return fmt.Errorf("ipvsadm -Ln -t %s:\n%s\nwant:\n%s", vip, got, wantTable)
			}
			return nil
		})
		t.Logf("ipvsadm -Ln -t %s (counters left out):\n%s", vip, got)
		var answers []string
		for range want {
			body, err := httpGet("http://" + vip + "/hostname")
			if err != nil {
				t.Fatalf("through %s: %v", vip, err)
			}
			answers = append(answers, body)
		}
		slices.Sort(answers)
		if strings.Join(answers, " ") != strings.Join(want, " ") {
			t.Fatalf("through %s the pods answered %q, want %q", vip, answers, want)
		}
		t.Logf("through %s: %q", vip, answers)
	}

	// The API server reaches kubelet (the hostfwd): the pod's log, as a
	// user would read it, says ipvs-proxy synced.
	out := run(t, filepath.Join(bin, "kubectl"), "--kubeconfig", admin, "logs", "-n", "kube-system", proxyPod)
	if !strings.Contains(out, "Informer caches synced; starting the sync loop") {
		t.Errorf("kubectl logs %s has no sync loop start:\n%s", proxyPod, out)
	}
	t.Logf("node test in the guest: %s", time.Since(start).Round(100*time.Millisecond))
}

// node is the VM made a Kubernetes node by startNode.
type node struct {
	Client kubernetes.Interface
	Bin    string // kubelet, kubectl, containerd ... (hack/build-tools.sh's directory)
	Admin  string // a system:masters kubeconfig
	Logs   string // where the node's daemons log (shared with the host)
}

// startNode makes the VM a node: containerd with the images imported,
// kubelet registered with the host's API server, and the Node Ready. The
// archives in $NODE_IMAGES are ipvs-proxy's, the pause image and the test
// server's, which are imported before kubelet starts, then any others.
func startNode(t *testing.T) node {
	t.Helper()
	start := time.Now()
	bin, logs, admin := os.Getenv(envBin), os.Getenv(envLogs), os.Getenv(envAdmin)
	cfg, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(cfg)

	// Everything that can overlap does: under TCG each step takes tens of
	// seconds. kubelet needs the pause image before its first pod, and
	// registers while ipvs-proxy's image and the other large ones (a
	// Debian root file system each) are imported.
	prepareHost(t)
	startContainerd(t, bin, logs)
	images := strings.Fields(os.Getenv(envImages)) // ipvs-proxy, pause, server, ...
	importImages(t, bin, images[1:3]...)
	startKubelet(t, bin, logs, admin)
	importImages(t, bin, append(images[:1:1], images[3:]...)...)
	waitNodeReady(t, c, nodeName)
	t.Logf("Node %s Ready after %s", nodeName, time.Since(start).Round(100*time.Millisecond))
	return node{Client: c, Bin: bin, Admin: admin, Logs: logs}
}

// applyManifests runs `kubectl apply -k` on an overlay of manifests/ (see
// testdata/kustomization.yaml).
func applyManifests(t *testing.T, bin, kubeconfig string) {
	t.Helper()
	dir := t.TempDir()
	manifests, err := filepath.Rel(dir, filepath.Join(os.Getenv(envRepo), "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	image := os.Getenv(envProxy)
	i := strings.LastIndex(image, ":")
	host, port, _ := strings.Cut(os.Getenv(envAPI), ":")
	write(t, filepath.Join(dir, "kustomization.yaml"), strings.NewReplacer(
		"MANIFESTS", manifests, "IMAGE_NAME", image[:i], "IMAGE_TAG", image[i+1:],
		"API_HOST", host, "API_PORT", port).Replace(overlay))
	out := run(t, filepath.Join(bin, "kubectl"), "--kubeconfig", kubeconfig, "apply", "-k", dir)
	t.Logf("kubectl apply -k (manifests/, image %s):\n%s", image, strings.TrimSpace(out))
}

// waitProxyReady waits until the DaemonSet's pod on this node is ready:
// kubelet started it from the imported image and its readiness probe
// (/healthz: ipvs-proxy has synced) passed.
func waitProxyReady(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	start := time.Now()
	var pod v1.Pod
	waitFor(t, "the ipvs-proxy pod Ready", 4*time.Minute, func() error {
		list, err := c.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{LabelSelector: "k8s-app=ipvs-proxy"})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		pod = list.Items[0]
		return ready(&pod)
	})
	cs := pod.Status.ContainerStatuses[0]
	if image := os.Getenv(envProxy); cs.Image != image {
		t.Errorf("the pod runs %s, want %s", cs.Image, image)
	}
	t.Logf("DaemonSet pod %s Ready after another %s: image %s (%s), restarts %d", pod.Name,
		time.Since(start).Round(100*time.Millisecond), cs.Image, cs.ImageID, cs.RestartCount)
	return pod.Name
}

// createServers runs the test-server image as a Deployment.
func createServers(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := serverDeployment(namespace, "server", serverPods, "--http-port=8080")
	// The `default` ServiceAccount, which pods need, comes from the
	// controller manager a moment after the namespace.
	waitFor(t, "the server Deployment", time.Minute, func() error {
		_, err := c.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
}

// serverDeployment is a Deployment of the test-server image in ns, its pods
// labelled app=name, ready once they answer HTTP on 8080.
func serverDeployment(ns, name string, replicas int32, args ...string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: v1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](1),
					Containers: []v1.Container{{
						Name:            "server",
						Image:           serverImage,
						ImagePullPolicy: v1.PullNever, // imported on the node; no registry
						Args:            args,
						Ports:           []v1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &v1.Probe{
							ProbeHandler:  v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
}

// waitServers waits for the Deployment's pods to be ready and returns them.
func waitServers(t *testing.T, c kubernetes.Interface) []v1.Pod {
	t.Helper()
	return waitPodsReady(t, c, namespace, "app=server", serverPods)
}

// waitPodsReady waits until n pods in ns match selector and are all ready,
// and returns them.
func waitPodsReady(t *testing.T, c kubernetes.Interface, ns, selector string, n int) []v1.Pod {
	t.Helper()
	start := time.Now()
	var pods []v1.Pod
	waitFor(t, "the "+selector+" pods Ready", 4*time.Minute, func() error {
		list, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(list.Items) != n {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		for i := range list.Items {
			if err := ready(&list.Items[i]); err != nil {
				return err
			}
		}
		pods = list.Items
		return nil
	})
	t.Logf("%d %s pods Ready after another %s", len(pods), selector, time.Since(start).Round(100*time.Millisecond))
	return pods
}

// createServices creates a ClusterIP and a NodePort Service for the servers.
func createServices(t *testing.T, c kubernetes.Interface) (clusterIP string, nodePort int32) {
	t.Helper()
	svc := func(name string, typ v1.ServiceType) *v1.Service {
		s, err := c.CoreV1().Services(namespace).Create(context.Background(), &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec: v1.ServiceSpec{
				Type:     typ,
				Selector: map[string]string{"app": "server"},
				Ports:    []v1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return svc("server", v1.ServiceTypeClusterIP).Spec.ClusterIP, svc("server-nodeport", v1.ServiceTypeNodePort).Spec.Ports[0].NodePort
}

func ready(p *v1.Pod) error {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady && c.Status == v1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("pod %s not ready: phase %s, %+v", p.Name, p.Status.Phase, p.Status.ContainerStatuses)
}

// ipvsService is `ipvsadm -Ln -t VIP` without headers, spacing and
// counters, the real servers sorted.
func ipvsService(vip string) string {
	out, err := exec.Command("ipvsadm", "-Ln", "-t", vip).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ipvsadm: %v: %s", err, out)
	}
	var vs string
	var rs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) < 3 || f[0] == "Prot" || f[1] == "RemoteAddress:Port":
		case f[0] == "->":
			rs = append(rs, "  -> "+strings.Join(f[1:4], " "))
		default:
			vs = strings.Join(f, " ")
		}
	}
	slices.Sort(rs)
	return strings.Join(append([]string{vs}, rs...), "\n")
}
