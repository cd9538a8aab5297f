//go:build conformance

package node

import (
	"context"
	_ "embed"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

var (
	//go:embed testdata/coredns.yaml
	corednsManifest string
	//go:embed testdata/repo-list.yaml
	repoList string
)

// The proxies the e2e tests run under, in this order, and the names their
// reports carry (hack/conformance-table reads them).
const (
	refProxy = "kube-proxy"
	ourProxy = "ipvs-proxy"
)

// TestGuestConformance makes the VM a node with a cluster DNS and runs the
// e2e selection (e2eParts) first under kube-proxy v1.37 in IPVS mode,
// installed as kubeadm installs it (its DaemonSet and ConfigMap), then under
// ipvs-proxy after the README's "Replacing kube-proxy" for a kubeadm
// cluster: only the DaemonSet's image changes. An e2e test's failure does
// not fail this test: the outcomes are the reports in $CONFORMANCE_RESULTS.
// A run that leaves no report does. With CONFORMANCE_PROXIES=ipvs-proxy the
// node gets manifests/ instead.
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
	m := &migration{t: t, node: n, ipvsProxyImage: os.Getenv(envProxy)}
	if runsProxy(refProxy) {
		m.kubeProxyImage = builtImage(t, "/kube-proxy:")
		m.installKubeProxy()
		m.waitProxySynced("kube-proxy", m.waitProxyPod(m.kubeProxyImage), "IPv4", "IPv6")
		deployDNS(t, n)
		runE2E(t, n, results, refProxy, parts)
		write(t, filepath.Join(results, "kube-proxy.log"), m.kubectl("-n", "kube-system", "logs", "daemonset/kube-proxy"))
	}
	if !runsProxy(ourProxy) {
		return
	}
	if runsProxy(refProxy) {
		m.replaceKubeProxy()
		write(t, filepath.Join(results, "kernel-after-swap.txt"), run(t, "ipvsadm", "-Ln")+run(t, "ip", "addr", "show")+run(t, "iptables-save"))
		waitDNS(t)
	} else {
		applyManifests(t, n.Bin, n.Admin)
		waitProxyReady(t, n.Client)
		deployDNS(t, n)
	}
	runE2E(t, n, results, ourProxy, parts)
	// The pod's log lives in the VM; the reports' failures are read with it.
	ds := "daemonset/ipvs-proxy"
	if runsProxy(refProxy) {
		ds = "daemonset/kube-proxy"
	}
	write(t, filepath.Join(results, "ipvs-proxy.log"), m.kubectl("-n", "kube-system", "logs", ds))
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
	procs, err := e2eProcs()
	if err != nil {
		t.Fatal(err)
	}
	repoListFile := filepath.Join(t.TempDir(), "repo-list.yaml")
	write(t, repoListFile, repoList)
	for _, p := range parts {
		start := time.Now()
		prefix := proxy + "-" + p.Name + "-"
		log, err := os.Create(filepath.Join(results, "e2e-"+proxy+"-"+p.Name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		// The ginkgo CLI runs e2e.test on parallel processes, as upstream's
		// CI does; the tests marked [Serial] run alone at the end.
		cmd := exec.Command(filepath.Join(n.Bin, "ginkgo"),
			"--procs="+strconv.Itoa(procs),
			"--focus="+p.Focus(),
			"--timeout="+p.Timeout.String(),
			"--no-color",
			"-v",
			filepath.Join(n.Bin, "e2e.test"), "--",
			"--kubeconfig="+n.Admin,
			"--provider=skeleton",
			"--kubectl-path="+filepath.Join(n.Bin, "kubectl"),
			"--report-dir="+results,
			"--report-prefix="+prefix,
			"--system-pods-startup-timeout=5m",
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
