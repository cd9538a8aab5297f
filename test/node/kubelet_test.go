package node

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

var (
	//go:embed testdata/containerd.toml
	containerdConfig string
	//go:embed testdata/kubelet.yaml
	kubeletConfig string
	//go:embed testdata/10-bridge.conflist
	cniConfig string
)

// nodeIP is the VM's address (test/vm's /init gives eth0 10.0.2.15/24).
const nodeIP = "10.0.2.15"

// prepareHost does for the VM what a node's distribution does at boot: the
// cgroup v2 hierarchy with the controllers kubelet needs, tmpfs for the
// runtime's and kubelet's state (overlayfs, the snapshotter, cannot use the
// VM's overlay root as its upper layer), a shared root mount for kubelet's
// mount propagation, no swap, bridged packets through netfilter's hooks
// (kubeadm's preflight requires it: a pod's request to a ClusterIP whose
// backend is on the same bridge is answered across the bridge, and IPVS sees
// that reply, to undo its DNAT, only when bridged packets pass its hooks;
// Kubernetes' Service e2e tests failed by ClusterIP without it), and the CNI
// configuration.
func prepareHost(t *testing.T) {
	t.Helper()
	rootOnRoot(t)
	steps := [][]string{
		{"mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup"},
		{"sh", "-c", "echo '+cpu +cpuset +memory +pids +io +hugetlb' > /sys/fs/cgroup/cgroup.subtree_control"},
		{"mount", "--make-rshared", "/"},
		{"swapoff", "-a"},
		{"modprobe", "br_netfilter"},
		{"sh", "-c", "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables && echo 1 > /proc/sys/net/bridge/bridge-nf-call-ip6tables"},
	}
	for _, dir := range []string{"/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods", "/var/log/containers"} {
		steps = append(steps, []string{"mkdir", "-p", dir}, []string{"mount", "-t", "tmpfs", "tmpfs", dir})
	}
	for _, s := range steps {
		run(t, s[0], s[1:]...)
	}
	write(t, "/etc/containerd/config.toml", containerdConfig)
	write(t, "/etc/cni/net.d/10-bridge.conflist", cniConfig)
	write(t, "/var/lib/kubelet/config.yaml", kubeletConfig)
}

// rootOnRoot moves the VM's root file system (an overlay that test/vm's
// init chroots into, mounted at /newroot of the initramfs) onto the
// initramfs's own root, as switch_root would. A process that joins a
// container's mount namespace (runc exec: kubectl exec, exec probes) gets
// that namespace's root with the mounts on top of it; with the overlay
// only chrooted into, that is the initramfs, and exec'd commands ran its
// busybox instead of the container's image. init keeps its own root and
// still sees its files underneath.
func rootOnRoot(t *testing.T) {
	t.Helper()
	if err := syscall.Mount("/proc/1/root/newroot", "/proc/1/root", "", syscall.MS_MOVE, ""); err != nil {
		t.Fatalf("move the root overlay onto the initramfs root: %v", err)
	}
}

// startContainerd starts containerd and waits until it answers.
func startContainerd(t *testing.T, bin, logs string) {
	t.Helper()
	start := time.Now()
	// The shim is found on PATH; runc is the configured /usr/sbin/runc.
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	background(t, env, filepath.Join(logs, "containerd.log"), filepath.Join(bin, "containerd"),
		"--config", "/etc/containerd/config.toml")
	waitFor(t, "containerd's socket", time.Minute, func() error {
		// Bounded: ctr waits as long as it is let on a socket that is
		// there but not yet served.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, filepath.Join(bin, "ctr"), "version").Run()
	})
	t.Logf("containerd up in %s", time.Since(start).Round(100*time.Millisecond))
}

// importImages imports OCI archives into the namespace kubelet's pods use.
func importImages(t *testing.T, bin string, archives ...string) {
	t.Helper()
	for _, a := range archives {
		s := time.Now()
		run(t, filepath.Join(bin, "ctr"), "-n", "k8s.io", "images", "import", a)
		t.Logf("imported %s in %s", filepath.Base(a), time.Since(s).Round(100*time.Millisecond))
	}
}

// startKubelet starts kubelet with the admin kubeconfig.
func startKubelet(t *testing.T, bin, logs, kubeconfig string) {
	t.Helper()
	background(t, os.Environ(), filepath.Join(logs, "kubelet.log"), filepath.Join(bin, "kubelet"),
		"--config=/var/lib/kubelet/config.yaml",
		"--kubeconfig="+kubeconfig,
		"--hostname-override="+nodeName,
		"--node-ip="+nodeIP,
		"--port="+os.Getenv(envPort),
		"--v=2",
	)
}

// waitNodeReady waits until kubelet has registered the Node and it is Ready
// (the runtime and the CNI network ready).
func waitNodeReady(t *testing.T, c kubernetes.Interface, node string) {
	t.Helper()
	waitFor(t, "Node "+node+" Ready", 4*time.Minute, func() error {
		n, err := c.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == v1.NodeReady {
				if cond.Status == v1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("Ready %s: %s", cond.Status, cond.Message)
			}
		}
		return fmt.Errorf("no Ready condition yet")
	})
}

// background starts a node daemon that lives as long as the VM.
func background(t *testing.T, env []string, logPath, bin string, args ...string) {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(log, "=== %s exited: %v\n", filepath.Base(bin), err)
		log.Close()
	}()
}

// run runs a command to its end, at most runTimeout: a command that hangs
// (an import into a wedged containerd, say) then fails the test by name
// instead of leaving the guest silent until the VM is killed.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %s (killed at %s)", err, time.Since(start).Round(time.Second), runTimeout)
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// runTimeout is far above the slowest command here under TCG (importing
// ipvs-proxy's image: about 35 s).
const runTimeout = 5 * time.Minute

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls check every second until it returns nil, or fails the test
// with its last error.
func waitFor(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(time.Second)
	}
}

// httpGet is one GET on a connection of its own; the body as text.
func httpGet(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %q", url, resp.Status, body)
	}
	return string(body), err
}

// A new connection per request, so IPVS schedules each one.
var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
