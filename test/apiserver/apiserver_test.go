package apiserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/test/apiserver"
)

// TestServer proves the helper end to end: the proxy's kubeconfig can read
// what the proxy needs, is refused everything else (least privilege), and the
// server survives a stop and a restart with its data.
func TestServer(t *testing.T) {
	s := apiserver.Start(t, apiserver.Options{})
	ctx := context.Background()

	admin, err := kubernetes.NewForConfig(s.Admin)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	v, err := admin.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	t.Logf("server version %s", v.GitVersion)

	path := s.ProxyKubeconfig(t, "")
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	proxy, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("proxy client: %v", err)
	}

	checkAccess(t, proxy)

	// The server makes default/kubernetes shortly after it is ready; a
	// restart before that would test nothing about the data (and CI once
	// stopped it first, so the check below found no Service).
	var getErr error
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, getErr = admin.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		return getErr == nil, nil
	}); err != nil {
		t.Fatalf("default/kubernetes before the restart: %v (last: %v)", err, getErr)
	}

	s.Stop()
	if _, err := proxy.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("listing Services succeeded while the apiserver was stopped")
	}
	s.Restart(t)
	checkAccess(t, proxy)

	// The data survived: default/kubernetes is still there, served by the
	// new process.
	if _, err := admin.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{}); err != nil {
		t.Fatalf("default/kubernetes after restart: %v", err)
	}
}

func checkAccess(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	svcs, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	if _, err := c.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list endpointslices: %v", err)
	}
	if _, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	// As the proxy's recorder writes them: core/v1 Events.
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "ipvs-proxy-test-", Namespace: metav1.NamespaceDefault},
		Source:         corev1.EventSource{Component: "ipvs-proxy"},
		Reason:         "Test",
		Message:        "test",
		Type:           corev1.EventTypeNormal,
		InvolvedObject: corev1.ObjectReference{Kind: "Service", Namespace: metav1.NamespaceDefault, Name: "kubernetes"},
	}
	if _, err := c.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create event: %v", err)
	}
	// Least privilege: Secrets (and writing Services) are refused.
	if _, err := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list secrets: want Forbidden, got %v", err)
	}
	if err := c.CoreV1().Services(metav1.NamespaceDefault).Delete(ctx, "kubernetes", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("delete service: want Forbidden, got %v", err)
	}
	t.Logf("proxy identity: %d Services visible, secrets and writes forbidden", len(svcs.Items))
}

// TestVMOptions starts the server as the VM tests do: advertised on the
// address the guest dials (10.0.2.100) and dual-stack. Nothing here dials
// 10.0.2.100: the certificate is checked over loopback with that name.
func TestVMOptions(t *testing.T) {
	s := apiserver.Start(t, apiserver.Options{
		AdvertiseAddress: "10.0.2.100",
		ServiceCIDRs:     "10.96.0.0/16,fd00:10:96::/108",
	})
	ctx := context.Background()
	admin, err := kubernetes.NewForConfig(s.Admin)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}

	ca, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatalf("reading CA: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), &tls.Config{RootCAs: roots, ServerName: "10.0.2.100"})
	if err != nil {
		t.Fatalf("serving certificate does not verify for 10.0.2.100: %v", err)
	}
	conn.Close()

	// default/kubernetes publishes the advertise address and the secure port.
	var slices *discoveryv1.EndpointSliceList
	deadline := time.Now().Add(30 * time.Second)
	for {
		slices, err = admin.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx,
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
		if err == nil && len(slices.Items) > 0 && len(slices.Items[0].Endpoints) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || len(slices.Items) == 0 || len(slices.Items[0].Endpoints) == 0 {
		t.Fatalf("no endpoints for default/kubernetes: %v", err)
	}
	es := slices.Items[0]
	if got := es.Endpoints[0].Addresses[0]; got != "10.0.2.100" || *es.Ports[0].Port != int32(s.Port) {
		t.Fatalf("default/kubernetes endpoint %s:%d, want 10.0.2.100:%d", got, *es.Ports[0].Port, s.Port)
	}

	policy := corev1.IPFamilyPolicyRequireDualStack
	svc, err := admin.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "dual"},
		Spec: corev1.ServiceSpec{
			IPFamilyPolicy: &policy,
			Ports:          []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a dual-stack Service: %v", err)
	}
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Fatalf("dual-stack Service got ClusterIPs %v, want two", svc.Spec.ClusterIPs)
	}
	t.Logf("default/kubernetes -> 10.0.2.100:%d; dual-stack ClusterIPs %v", s.Port, svc.Spec.ClusterIPs)
}
