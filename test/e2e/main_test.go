// Package e2e proves ipvs-proxy on a real kernel. TestVM runs on the host: it
// starts a real kube-apiserver, builds the ipvs-proxy binary and boots one
// QEMU VM (Debian's kernel, see test/vm) that runs this package's TestGuest*
// tests, where IPVS, dummy links, netfilter and network namespaces are real
// and the proxy watches the host's API server through the VM's one
// forwarded port.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/apiserver"
	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

// Environment the host passes to the guest tests.
const (
	envProxyBin   = "E2E_PROXY_BIN"
	envKubeconfig = "E2E_PROXY_KUBECONFIG" // the proxy's least-privileged identity
	envAdmin      = "E2E_ADMIN_KUBECONFIG" // the tests' own, to create objects
)

func TestVM(t *testing.T) {
	if vm.InGuest() {
		t.Skip("host side: boots the VM that runs the TestGuest* tests")
	}
	// E2E_GUEST_RUN narrows the guest tests while working on one of them.
	pattern := "^TestGuest"
	if p := os.Getenv("E2E_GUEST_RUN"); p != "" {
		pattern = p
	}
	runInVM(t, pattern, nil)
}

// runInVM starts the API server, builds ipvs-proxy and boots one VM that
// runs the tests matching pattern, with env added to theirs.
func runInVM(t *testing.T, pattern string, env []string) {
	start := time.Now()
	s := apiserver.Start(t, apiserver.Options{AdvertiseAddress: vm.ForwardAddr, ServiceCIDRs: "10.96.0.0/16,fd00:10:96::/108"})
	server := fmt.Sprintf("https://%s:%d", vm.ForwardAddr, s.Port)
	dir := t.TempDir() // under /tmp, which the guest sees through the shared root
	bin := filepath.Join(dir, "ipvs-proxy")
	build := exec.Command("go", "build", "-o", bin, "github.com/ipvs-proxy/ipvs-proxy/cmd/ipvs-proxy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ipvs-proxy: %v\n%s", err, out)
	}
	admin := s.AdminKubeconfig(t, server)
	t.Logf("host ready in %s: API server %s (guest: %s), binary %s", time.Since(start).Round(time.Millisecond), s.URL, server, bin)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{exe, "-test.run", pattern, "-test.v", "-test.count=1", "-test.timeout=20m"}
	code, err := vm.Run(t.Context(), vm.Config{
		Command:  args,
		Env:      append([]string{envProxyBin + "=" + bin, envKubeconfig + "=" + s.ProxyKubeconfig(t, server), envAdmin + "=" + admin}, env...),
		Forwards: []int{s.Port},
		Stdout:   os.Stdout,
		Timeout:  25 * time.Minute,
	})
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	if code != 0 {
		t.Fatalf("guest tests failed (exit code %d); their output is above", code)
	}
	t.Logf("VM e2e wall time: %s", time.Since(start).Round(100*time.Millisecond))
}

// guest skips a test outside the VM; TestVM runs it inside.
func guest(t *testing.T) {
	t.Helper()
	if !vm.InGuest() {
		t.Skip("runs inside the VM, started by TestVM")
	}
}
