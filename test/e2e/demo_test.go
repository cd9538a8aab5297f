package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// envDemo turns on the demo; `make demo` sets it.
const envDemo = "IPVS_PROXY_DEMO"

// TestDemo is `make demo`: a throwaway cluster (a real API server on the
// host, a VM with a real kernel), the sample Services from
// manifests/examples, ipvs-proxy's status and real traffic.
func TestDemo(t *testing.T) {
	if vm.InGuest() || os.Getenv(envDemo) != "1" {
		t.Skip("the demo runs with `make demo`")
	}
	say("starting the API server on the host, building ipvs-proxy, booting the VM (Debian's kernel under QEMU)")
	runInVM(t, "^TestDemoGuest$", []string{envDemo + "=1"})
}

func TestDemoGuest(t *testing.T) {
	if !vm.InGuest() || os.Getenv(envDemo) != "1" {
		t.Skip("part of `make demo`")
	}
	start := time.Now()
	say("VM up; creating three pods (network namespaces 10.244.0.2-4) and an external client (192.168.100.2)")
	w := newWorld(t, "e2e")
	ctx := context.Background()
	if _, err := w.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	say("applying manifests/examples/ to the API server")
	svcs := applyExamples(t, w)
	say("starting ipvs-proxy (it watches the API server on the host through the VM's one forwarded port)")
	w.startProxy()
	w.waitFirstSync()
	waitIPVS(t, "TCP "+hostPort(svcs["web"].Spec.ClusterIP, 80)+" rr", rs("pod-a"), rs("pod-b"), rs("pod-c"))
	say("converged %s after the VM came up", time.Since(start).Round(100*time.Millisecond))

	say("ipvs-proxy status")
	fmt.Print(run(t, "status", os.Getenv(envProxyBin), "status", "--kubeconfig", os.Getenv(envKubeconfig), "--hostname-override", nodeName))

	web := hostPort(svcs["web"].Spec.ClusterIP, 80)
	say("6 requests from the node to demo/web (%s, round robin over 3 pods)", web)
	for i := 1; i <= 6; i++ {
		report(i, web, "", "")
	}
	shop := hostPort("192.168.100.1", svcs["shop"].Spec.Ports[0].NodePort)
	say("4 requests from the external client to demo/shop's NodePort %s (externalTrafficPolicy Local: only pod-a is local, and it sees the client's own address)", shop)
	for i := 1; i <= 4; i++ {
		report(i, shop, "ext", "")
	}
	cart := hostPort(svcs["cart"].Spec.ClusterIP, 80)
	say("4 requests from each of two external addresses to demo/cart (%s, session affinity ClientIP: each client keeps its pod)", cart)
	for _, src := range []string{"192.168.100.10", "192.168.100.11"} {
		for i := 1; i <= 4; i++ {
			report(i, cart, "ext", src)
		}
	}
	say("ipvs-proxy status --service demo/shop (why each endpoint is or is not programmed)")
	fmt.Print(run(t, "status", os.Getenv(envProxyBin), "status", "--kubeconfig", os.Getenv(envKubeconfig), "--hostname-override", nodeName, "--service", "demo/shop"))
	say("done in %s; shutting the VM down", time.Since(start).Round(100*time.Millisecond))
}

func say(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

func report(i int, addr, ns, src string) {
	from := "node"
	if ns != "" {
		from = ns
	}
	if src != "" {
		from = src
	}
	a, err := ask(ns, "tcp", addr, src)
	if err != nil {
		fmt.Printf("    request %d from %-15s -> %s: %v\n", i, from, addr, err)
		return
	}
	fmt.Printf("    request %d from %-15s -> %s answered by %s, which saw the client as %s\n", i, from, addr, a.pod, a.seen)
}

// applyExamples creates every object in manifests/examples and returns the
// Services as the API server filled them in (clusterIPs, nodePorts).
func applyExamples(t *testing.T, w *world) map[string]*v1.Service {
	t.Helper()
	files, err := filepath.Glob("../../manifests/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	ctx := context.Background()
	svcs := map[string]*v1.Service{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufioReader(data))
		for {
			doc, err := r.Read()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch o := obj.(type) {
			case *v1.Service:
				s, err := w.client.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
				if err != nil {
					t.Fatalf("%s: create Service: %v", f, err)
				}
				svcs[s.Name] = s
				fmt.Printf("    service/%s created (%s, clusterIP %s)\n", s.Name, s.Spec.Type, s.Spec.ClusterIP)
			case *discovery.EndpointSlice:
				if _, err := w.client.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err != nil {
					t.Fatalf("%s: create EndpointSlice: %v", f, err)
				}
				fmt.Printf("    endpointslice/%s created (%d endpoints)\n", o.Name, len(o.Endpoints))
			default:
				t.Fatalf("%s: unexpected %T", f, obj)
			}
		}
	}
	return svcs
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
