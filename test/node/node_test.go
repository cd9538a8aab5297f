// Package node proves what a user deploys, on a real Kubernetes node.
// TestNode runs on the host: a kube-apiserver (test/apiserver) with
// kube-controller-manager and kube-scheduler next to it, the images
// (`make image`'s hack/image.sh and hack/node-images.sh), and one QEMU VM
// (test/vm) that runs TestGuestNode. That makes the VM a node (containerd with
// runc, the CNI bridge, kubelet registered with the host's API server), runs
// `kubectl apply -k manifests/` with only the image and the API server
// address changed, and sends traffic from the VM through a ClusterIP and a
// NodePort to real pods that kubelet started.
package node

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/apiserver"
	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

// What the host hands the guest.
const (
	envBin    = "NODE_BIN"         // hack/build-tools.sh's directory: kubelet, kubectl, containerd ...
	envAdmin  = "NODE_ADMIN"       // a system:masters kubeconfig for kubelet and the test
	envAPI    = "NODE_API"         // host:port of the API server as the guest reaches it
	envImages = "NODE_IMAGES"      // OCI archives to import, space-separated
	envProxy  = "NODE_PROXY_IMAGE" // ipvs-proxy's image, name:tag
	envLogs   = "NODE_LOGS"        // a read-write share for the node's logs
	envRepo   = "NODE_REPO"        // the checkout, for manifests/
	envPort   = "NODE_KUBELET_PORT"
	envBuilt  = "NODE_BUILT_IMAGES" // every image built for the run, NAME@DIGEST, space-separated
)

// nodeName is the Node's name, and so the Hostname address kubelet reports,
// which the API server dials first to reach kubelet (logs, exec): "localhost"
// on the host is 127.0.0.1, where a hostfwd leads to kubelet's port in the VM.
const nodeName = "localhost"

func TestNode(t *testing.T) {
	bootNode(t, nodeRun{Guest: "TestGuestNode", Timeout: 15 * time.Minute})
}

// nodeRun is what one host-side test asks of bootNode: the guest test to
// run in the node VM, and what that test needs beyond the node itself.
type nodeRun struct {
	Guest    string        // the guest test's name
	Timeout  time.Duration // the guest test's -test.timeout; the VM gets 2 minutes more
	Archives []string      // more OCI archives to import (host paths under the checkout)
	Env      []string      // more environment for the guest test
	Shares   map[string]string
	// Images are more hack/ scripts that build images (each prints its
	// reference last), run while the control plane starts.
	Images []string
}

// bootNode starts the control plane on the host (kube-apiserver,
// kube-controller-manager, kube-scheduler), builds the images, and boots the
// VM that runs r.Guest as a node. The guest test makes the VM a node
// (startNode) and does the rest.
func bootNode(t *testing.T, r nodeRun) {
	if vm.InGuest() {
		t.Skip("host side: boots the VM that runs " + r.Guest)
	}
	start := time.Now()
	root := repoRoot(t)
	bin, err := apiserver.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kubelet", "kubectl", "kube-controller-manager", "kube-scheduler",
		"containerd", "containerd-shim-runc-v2", "ctr"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			t.Fatalf("%s not found in %s: build it with `hack/build-tools.sh node` (%v)", name, bin, err)
		}
	}
	// The images build while the control plane starts.
	type built struct{ ref, err string }
	images := make(chan built, 1)
	go func() {
		var b built
		for _, script := range append([]string{"hack/image.sh", "hack/node-images.sh"}, r.Images...) {
			ref, err := lastLine(root, script)
			if err != nil {
				b.err += err.Error()
			}
			b.ref += ref + " "
		}
		images <- b
	}()
	// Registered before the API server's, so it runs after that prints its
	// log's tail on a failure: what failed is then the last thing printed.
	logs := t.TempDir()
	guestLog := filepath.Join(logs, "guest.log")
	var failure string
	t.Cleanup(func() {
		if failure != "" {
			t.Logf("%s failed: %s\n--- the guest's last test lines ---\n%s", r.Guest, failure, testLines(guestLog, 15))
		}
	})
	s := apiserver.Start(t, apiserver.Options{AdvertiseAddress: vm.ForwardAddr})
	startControllers(t, s, bin, logs)
	b := <-images
	if b.err != "" {
		failure = b.err
		t.Fatal(failure)
	}
	proxyImage := strings.Fields(b.ref)[0]
	t.Logf("control plane and images ready after %s: %s", time.Since(start).Round(time.Second), b.ref)
	server := fmt.Sprintf("https://%s:%d", vm.ForwardAddr, s.Port)

	// kubelet listens on the same port in the VM as the host's forward, since
	// the API server dials the port kubelet reports.
	kubeletPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(proxyImage, "@") // the tag: the name the archive imports under
	archives := []string{
		filepath.Join(root, "bin/image/ipvs-proxy.oci.tar"),
		filepath.Join(root, "bin/node-images/pause.oci.tar"),
		filepath.Join(root, "bin/node-images/server.oci.tar"),
	}
	archives = append(archives, r.Archives...)
	shares := map[string]string{logs: logs}
	for k, v := range r.Shares {
		shares[k] = v
	}
	out, err := os.Create(guestLog)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	code, err := vm.Run(t.Context(), vm.Config{
		Command: []string{exe, "-test.run", "^" + r.Guest + "$", "-test.v", "-test.count=1", "-test.timeout=" + r.Timeout.String()},
		Env: append([]string{
			envBin + "=" + bin,
			envAdmin + "=" + s.AdminKubeconfig(t, server),
			envAPI + "=" + vm.ForwardAddr + ":" + strconv.Itoa(s.Port),
			envImages + "=" + strings.Join(archives, " "),
			envProxy + "=" + name,
			envLogs + "=" + logs,
			envRepo + "=" + root,
			envPort + "=" + strconv.Itoa(kubeletPort),
			envBuilt + "=" + strings.TrimSpace(b.ref),
		}, r.Env...),
		Forwards:     []int{s.Port},
		HostForwards: []int{kubeletPort},
		Shares:       shares,
		Memory:       "4G",
		Stdout:       io.MultiWriter(os.Stdout, out),
		Timeout:      r.Timeout + 2*time.Minute,
	})
	if err != nil || code != 0 {
		for _, f := range []string{"containerd.log", "kubelet.log", "kube-controller-manager.log", "kube-scheduler.log"} {
			t.Logf("--- last lines of %s ---\n%s", f, tailFile(filepath.Join(logs, f), 30))
		}
	}
	if err != nil {
		failure = fmt.Sprintf("VM: %v", err)
		t.Fatal(failure)
	}
	if code != 0 {
		failure = fmt.Sprintf("guest tests failed (exit code %d); their output is above", code)
		t.Fatal(failure)
	}
	t.Logf("node test wall time: %s", time.Since(start).Round(100*time.Millisecond))
}

// lastLine runs a hack/ script from the checkout and returns the last line
// it printed (the scripts print the image reference there).
func lastLine(root, script string) (string, error) {
	cmd := exec.Command(filepath.Join(root, script))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// freePort is a port free on the host's loopback (until someone takes it).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// tailFile is the last n lines of the file at path (its error if it
// cannot be read).
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(data), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testLines is the last n lines of a guest's output that say what its
// tests did: their log lines and stack frames (the file name ends in
// _test.go), a panic (the test binary's own timeout) and FAIL lines.
func testLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "_test.go:") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "--- FAIL") ||
			strings.HasPrefix(strings.TrimSpace(l), "running tests:") {
			keep = append(keep, l)
		}
	}
	return lastLines(strings.Join(keep, "\n"), n)
}
