//go:build conformance

package node

import (
	"context"
	_ "embed"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

var (
	//go:embed testdata/coredns.yaml
	corednsManifest string
	//go:embed testdata/kube-proxy.yaml
	kubeProxyConfig string
	//go:embed testdata/repo-list.yaml
	repoList string
)

// The proxies the e2e tests run under, in this order, and the names their
// reports carry (hack/conformance-table reads them).
const (
	refProxy = "kube-proxy"
	ourProxy = "ipvs-proxy"
)

// TestGuestConformance makes the VM a node with a cluster DNS, runs the
// e2e selection (e2eParts) under kube-proxy v1.37 in IPVS mode, removes
// kube-proxy as `kube-proxy --cleanup` does, applies manifests/ and runs the
// same selection under ipvs-proxy. An e2e test's failure does not fail this
// test: the outcomes are the reports in $CONFORMANCE_RESULTS. A run that
// leaves no report does.
func TestGuestConformance(t *testing.T) {
	if !vm.InGuest() {
		t.Skip("runs inside the VM, started by TestConformance")
	}
	n := startNode(t)
	results := os.Getenv(envResults)
	// Pods reach the API server's forward (10.0.2.100) only from the VM's
	// own address: the user network answers nothing else. The cluster DNS
	// is the one pod that talks to the API server.
	run(t, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.244.0.0/16", "-d", vm.ForwardAddr+"/32", "-j", "MASQUERADE")

	parts, err := selectedParts()
	if err != nil {
		t.Fatal(err)
	}

	if runsProxy(refProxy) {
		stop := startKubeProxy(t, n, results)
		deployDNS(t, n)
		runE2E(t, n, results, refProxy, parts)
		stop()
		// kube-proxy v1.37's --cleanup exits 1 after an IPVS-mode run: its
		// iptables-mode teardown, which runs too, cannot delete chains the
		// IPVS mode's rules still jump to (KUBE-MARK-MASQ, "Device or
		// resource busy"). That is logged, and what it left is recorded
		// beside the reports.
		out, err := exec.Command(filepath.Join(n.Bin, "kube-proxy"), "--cleanup", "--config="+kubeProxyConfigFile(t, n)).CombinedOutput()
		t.Logf("kube-proxy --cleanup (%v):\n%s", err, lastLines(string(out), 10))
		write(t, filepath.Join(results, "kernel-after-kube-proxy-cleanup.txt"), run(t, "ipvsadm", "-Ln")+run(t, "ip", "addr", "show")+run(t, "iptables-save"))
	}
	if !runsProxy(ourProxy) {
		return
	}
	applyManifests(t, n.Bin, n.Admin)
	pod := waitProxyReady(t, n.Client)
	if runsProxy(refProxy) {
		waitDNS(t)
	} else {
		deployDNS(t, n)
	}
	runE2E(t, n, results, ourProxy, parts)
	// The pod's log lives in the VM; the reports' failures are read with it.
	logs := run(t, filepath.Join(n.Bin, "kubectl"), "--kubeconfig", n.Admin, "logs", "-n", "kube-system", pod)
	write(t, filepath.Join(results, "ipvs-proxy.log"), logs)
}

// startKubeProxy runs kube-proxy v1.37 as a process of the node with the
// configuration file kubeadm's shape gives it (mode ipvs), and returns a
// function that stops it.
func startKubeProxy(t *testing.T, n node, results string) (stop func()) {
	t.Helper()
	log, err := os.Create(filepath.Join(results, "kube-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(n.Bin, "kube-proxy"), "--config="+kubeProxyConfigFile(t, n), "--v=2")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kube-proxy: %v", err)
	}
	done := make(chan struct{})
	var exit error
	go func() { exit = cmd.Wait(); log.Close(); close(done) }()
	// Its /healthz answers once it has synced.
	waitFor(t, "kube-proxy healthy", 3*time.Minute, func() error {
		select {
		case <-done:
			t.Fatalf("kube-proxy exited: %v; its log:\n%s", exit, tailFile(filepath.Join(results, "kube-proxy.log"), 30))
		default:
		}
		_, err := httpGet("http://127.0.0.1:10256/healthz")
		return err
	})
	t.Logf("kube-proxy (IPVS mode) healthy")
	return func() { terminate(cmd.Process, done, 30*time.Second) }
}

func kubeProxyConfigFile(t *testing.T, n node) string {
	t.Helper()
	path := "/etc/kube-proxy/config.conf"
	write(t, path, strings.ReplaceAll(kubeProxyConfig, "KUBECONFIG", n.Admin))
	return path
}

// deployDNS applies the cluster DNS (testdata/coredns.yaml) and waits until
// it answers through the kube-dns Service.
func deployDNS(t *testing.T, n node) {
	t.Helper()
	host, port, _ := strings.Cut(os.Getenv(envAPI), ":")
	path := filepath.Join(t.TempDir(), "coredns.yaml")
	write(t, path, strings.NewReplacer("API_HOST", host, "API_PORT", port).Replace(corednsManifest))
	out := run(t, filepath.Join(n.Bin, "kubectl"), "--kubeconfig", n.Admin, "apply", "-f", path)
	t.Logf("kubectl apply (cluster DNS):\n%s", strings.TrimSpace(out))
	waitDNS(t)
}

// The kube-dns Service's address (kubelet's clusterDNS) and a name every
// cluster has.
const (
	clusterDNS = "10.96.0.10:53"
	dnsProbe   = "kubernetes.default.svc.cluster.local"
)

// waitDNS waits until the cluster DNS answers through the Service, so
// through the proxy that runs now.
func waitDNS(t *testing.T) {
	t.Helper()
	start := time.Now()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, clusterDNS)
	}}
	var addrs []string
	waitFor(t, "the cluster DNS through "+clusterDNS, 5*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		addrs, err = r.LookupHost(ctx, dnsProbe)
		return err
	})
	t.Logf("cluster DNS answers after %s: %s is %v", time.Since(start).Round(100*time.Millisecond), dnsProbe, addrs)
}

// runE2E runs each part of the selection under the proxy that runs now,
// each into its own JUnit report and log in results.
func runE2E(t *testing.T, n node, results, proxy string, parts []e2ePart) {
	t.Helper()
	repoListFile := filepath.Join(t.TempDir(), "repo-list.yaml")
	write(t, repoListFile, repoList)
	for _, p := range parts {
		start := time.Now()
		prefix := proxy + "-" + p.Name + "-"
		log, err := os.Create(filepath.Join(results, "e2e-"+proxy+"-"+p.Name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(n.Bin, "e2e.test"),
			"--kubeconfig="+n.Admin,
			"--provider=skeleton",
			"--kubectl-path="+filepath.Join(n.Bin, "kubectl"),
			"--report-dir="+results,
			"--report-prefix="+prefix,
			"--system-pods-startup-timeout=5m",
			"--ginkgo.focus="+p.Focus(),
			"--ginkgo.timeout="+p.Timeout.String(),
			"--ginkgo.no-color",
			"--ginkgo.v",
		)
		cmd.Env = append(os.Environ(), "KUBE_TEST_REPO_LIST="+repoListFile, "HOME="+t.TempDir())
		cmd.Stdout, cmd.Stderr = log, log
		err = cmd.Run()
		log.Close()
		// e2e.test exits non-zero when a test fails; only a missing report
		// means the run itself went wrong.
		report := filepath.Join(results, "junit_"+prefix+"01.xml")
		if _, statErr := os.Stat(report); statErr != nil {
			t.Fatalf("e2e %s under %s left no report (%v, exit %v); its log ends:\n%s", p.Name, proxy, statErr, err,
				tailFile(log.Name(), 40))
		}
		t.Logf("e2e %s under %s: %s, exit %v, report %s; summary:\n%s", p.Name, proxy,
			time.Since(start).Round(time.Second), err, filepath.Base(report), lastLines(tailFile(log.Name(), 30), 12))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
