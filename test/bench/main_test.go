// Package bench runs kube-proxy v1.37's IPVS mode and ipvs-proxy side by side
// on a real kernel, and a bare moby/ipvs loop as the floor under both.
//
// TestVM runs on the host: it starts one real kube-apiserver, builds
// ipvs-proxy and boots one QEMU VM (test/vm) for the whole run, in which
// TestGuestBench measures, for each size N, cold convergence, the latency
// and kernel writes of one endpoint change, CPU and peak RSS of each proxy
// on a freshly cleaned kernel. The host loads the Services when the guest
// asks (load_test.go), and renders the guest's results, returned through a
// shared directory, as a markdown table (report_test.go).
//
// With BENCH_SIZES unset it is a smoke run (20 Services, 5 changes) that
// `make test` runs so the bench cannot rot; `make bench` sets the sizes.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/apiserver"
	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
	"k8s.io/client-go/kubernetes"
)

// Environment the host passes to the guest.
const (
	envProxyBin     = "BENCH_PROXY_BIN"
	envKubeProxyBin = "BENCH_KUBE_PROXY_BIN"
	envProxyConfig  = "BENCH_PROXY_KUBECONFIG" // ipvs-proxy's least-privileged identity
	envAdminConfig  = "BENCH_ADMIN_KUBECONFIG" // the bench's own writes, and kube-proxy's
	envWork         = "BENCH_WORK"             // the shared directory
)

func TestVM(t *testing.T) {
	if vm.InGuest() {
		t.Skip("host side: boots the VM that runs TestGuestBench")
	}
	p, err := planFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tools, err := apiserver.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	kubeProxy := filepath.Join(tools, "kube-proxy")
	if _, err := os.Stat(kubeProxy); err != nil {
		t.Fatalf("kube-proxy v1.37, the reference, is missing (%v): run hack/build-tools.sh", err)
	}
	s := apiserver.Start(t, apiserver.Options{AdvertiseAddress: vm.ForwardAddr, ServiceCIDRs: clusterIPs})
	server := fmt.Sprintf("https://%s:%d", vm.ForwardAddr, s.Port)
	dir := t.TempDir() // under /tmp, which the guest sees through the shared root
	bin := filepath.Join(dir, "ipvs-proxy")
	build := exec.Command("go", "build", "-o", bin, "github.com/ipvs-proxy/ipvs-proxy/cmd/ipvs-proxy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ipvs-proxy: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(s.Admin) // QPS 500, Burst 1000
	if err != nil {
		t.Fatal(err)
	}
	ld := &loader{client: client, work: work}
	if err := ld.prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	admin := s.AdminKubeconfig(t, server)
	t.Logf("host ready in %s; plan %+v", time.Since(start).Round(time.Millisecond), p)

	ctx, cancel := context.WithCancel(t.Context())
	loadErr := make(chan error, 1)
	go func() { loadErr <- ld.serve(ctx) }()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	code, vmErr := vm.Run(ctx, vm.Config{
		Command: []string{exe, "-test.run", "^TestGuestBench$", "-test.v", "-test.count=1",
			"-test.timeout=" + p.Timeout.String()},
		Env: []string{envPlan + "=" + p.encode(), envProxyBin + "=" + bin, envKubeProxyBin + "=" + kubeProxy,
			envProxyConfig + "=" + s.ProxyKubeconfig(t, server), envAdminConfig + "=" + admin, envWork + "=" + work},
		Forwards: []int{s.Port},
		Shares:   map[string]string{work: work},
		Memory:   p.Memory,
		Timeout:  p.Timeout + 2*time.Minute, // the guest's own timeout report comes first
		Stdout:   os.Stdout,
	})
	cancel()
	if err := <-loadErr; err != nil {
		t.Errorf("loading Services: %v", err)
	}

	// Whatever the guest finished is reported, even when it failed later.
	runs, err := readRuns(filepath.Join(work, resultsFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading the guest's results: %v", err)
	}
	cal, _ := readCalibration(work)
	md := render(p, runs, cal, time.Since(start))
	fmt.Println(md)
	if out := os.Getenv(envOut); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Errorf("writing %s: %v", out, err)
		}
		keep(t, work, filepath.Join(filepath.Dir(out), "vm-logs"))
	}
	if vmErr != nil {
		t.Fatalf("VM: %v", vmErr)
	}
	if code != 0 {
		t.Fatalf("guest bench failed (exit code %d); its output is above", code)
	}
	if want := p.runCount(); len(runs) != want {
		t.Fatalf("the guest reported %d runs, want %d (the floors and the proxies at each size)", len(runs), want)
	}
	t.Logf("bench wall time: %s", time.Since(start).Round(time.Second))
}

func readRuns(path string) ([]Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var runs []Run
	return runs, json.Unmarshal(data, &runs)
}

// keep copies the proxies' logs and the raw results out of the work
// directory, which the test removes, next to the table of a `make bench`
// run.
func keep(t *testing.T, work, to string) {
	logs, _ := filepath.Glob(filepath.Join(work, "*.log"))
	profiles, _ := filepath.Glob(filepath.Join(work, "*.pprof"))
	traces, _ := filepath.Glob(filepath.Join(work, "trace-*.out"))
	logs = append(append(append(logs, profiles...), traces...), filepath.Join(work, resultsFile), filepath.Join(work, calibrationFile))
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Logf("keeping logs: %v", err)
		return
	}
	for _, l := range logs {
		if data, err := os.ReadFile(l); err == nil {
			_ = os.WriteFile(filepath.Join(to, filepath.Base(l)), data, 0o644)
		}
	}
}
