package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
	libipvs "github.com/moby/ipvs"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// guest is the bench inside the VM.
type guest struct {
	p       plan
	work    string
	client  kubernetes.Interface
	env     map[string]string
	nl      *netlinkCounter
	poll    *libipvs.Handle // reads one virtual server during changes
	runs    []Run
	svcKeys map[string]vsKey // bench Service name → its virtual server
	changes int              // changes made so far; each gets a fresh address
}

// TestGuestBench runs in the VM, started by TestVM.
func TestGuestBench(t *testing.T) {
	if !vm.InGuest() {
		t.Skip("runs inside the VM, started by TestVM")
	}
	g := newGuest(t)
	for _, n := range g.p.allSizes() {
		if !t.Run(fmt.Sprintf("services=%d", n), func(t *testing.T) { g.size(t, n) }) && g.dirty() != "" {
			t.Fatalf("the kernel was left dirty; later sizes would measure on top of it: %s", g.dirty())
		}
	}
}

func newGuest(t *testing.T) *guest {
	p, err := decodePlan(os.Getenv(envPlan))
	if err != nil {
		t.Fatal(err)
	}
	g := &guest{p: p, work: os.Getenv(envWork), env: map[string]string{}, svcKeys: map[string]vsKey{}}
	for _, name := range []string{envProxyBin, envKubeProxyBin, envProxyConfig, envAdminConfig, envWork} {
		if g.env[name] = os.Getenv(name); g.env[name] == "" {
			t.Fatalf("%s is not set: TestVM starts this test", name)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", g.env[envAdminConfig])
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000 // listing 10,000 objects at the default 5/s would take half an hour
	if g.client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	before, err := calibrate(g.work)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyUpExecs(g.env[envProxyBin], g.env[envKubeProxyBin]); err != nil {
		t.Fatal(err)
	}
	after, err := calibrate(g.work)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one exec of `ipset version`: %s over 9p, %s once copied up", duration(before.ExecS), duration(after.ExecS))
	if g.nl, err = startNetlinkCounter(); err != nil {
		t.Fatal(err)
	}
	if g.poll, err = libipvs.New(""); err != nil {
		t.Fatal(err)
	}
	if d := g.dirty(); d != "" {
		t.Fatalf("the kernel is not clean at start: %s", d)
	}
	return g
}

// size measures the floor, then kube-proxy, then ipvs-proxy at n Services,
// each on a clean kernel. want follows the changes each run makes, and is
// listed from the API again before each proxy.
func (g *guest) size(t *testing.T, n int) {
	start := time.Now()
	if err := g.requestLoad(n); err != nil {
		t.Fatal(err)
	}
	want, err := g.expected(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	vs, rs := want.counts()
	t.Logf("%d Services loaded and listed in %s: %d virtual servers, %d real servers wanted",
		n, time.Since(start).Round(100*time.Millisecond), vs, rs)

	if g.p.Only == "" {
		g.runFloor(t, n, want, rs)
	}
	fl, err := g.runInformerFloor(n, want)
	if err != nil {
		fl.Error = err.Error()
		t.Error(err)
	}
	g.record(t, fl)
	for _, c := range fl.Cases {
		t.Logf("%s: %s", informerName, caseText(c, g.p.ChangeCap.Seconds(), false))
	}
	for _, px := range g.proxies() {
		if !g.p.runs(px.name, n) {
			continue
		}
		// Listed again before each proxy: the API is the truth, and a
		// write that timed out on a loaded host may still have been
		// applied (want then kept the endpoint it moved, and every proxy
		// "failed" to converge to a table the API no longer held).
		if want, err = g.expected(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Run(px.name, func(t *testing.T) { g.record(t, g.runProxy(t, px, n, want)) })
		for _, step := range px.cleanup {
			_, err := runCmd(step.argv...)
			switch {
			case err == nil:
			case step.mayFail:
				first, _, _ := strings.Cut(err.Error(), "\n")
				t.Logf("cleanup after %s: %s: %s (as expected; the kernel is checked next)", px.name, filepath.Base(step.argv[0]), first)
			default:
				t.Errorf("cleanup after %s: %s: %v", px.name, strings.Join(step.argv, " "), err)
			}
		}
		if d := g.dirty(); d != "" {
			t.Fatalf("after %s and its cleanup: %s", px.name, d)
		}
		if px.name != ipvsProxyName || n != g.p.allSizes()[len(g.p.allSizes())-1] { // nothing runs after the last
			waitTrash(t, rs)
		}
	}
}

func (g *guest) runFloor(t *testing.T, n int, want table, realServers int) {
	fl, err := floor(n, want, max(20, g.p.Changes))
	if err != nil {
		fl.Error = err.Error()
		t.Error(err)
	}
	g.record(t, fl)
	t.Logf("floor: %s cold, %s per change", duration(fl.ColdS), changeCell(&fl, 0.5).text)
	if d := g.dirty(); d != "" {
		t.Fatalf("after the floor: %s", d)
	}
	waitTrash(t, realServers)
}

// proxySpec is how to run one proxy and how to remove all it made; the
// kernel must be clean after its cleanup either way.
type proxySpec struct {
	name string
	argv []string
	// spaced: the proxy also gets the spaced changes of the main table;
	// kube-proxy as kubeadm starts it gets only the churn cases.
	spaced  bool
	cleanup []cleanupStep
}

type cleanupStep struct {
	argv []string
	// mayFail: kube-proxy --cleanup also removes its iptables mode's
	// chains, which its IPVS mode's rules still reference when it runs, and
	// exits 1 having removed the rest; `ipvs-proxy cleanup --kube-proxy`
	// follows it, and the kernel is checked afterwards.
	mayFail bool
}

// proxySettings are what each proxy runs with, as the report states them.
var proxySettings = map[string]string{
	kubeProxyName:        "flags only: --ipvs-min-sync-period 1s (its default without --config), --ipvs-sync-period 30s",
	kubeProxyKubeadmName: "--config file as kubeadm writes it: ipvs.minSyncPeriod 0s, ipvs.syncPeriod 30s",
	ipvsProxyName:        "flags only: --ipvs-min-sync-period 0 and --sync-cpu-share 0.5 (its defaults), --ipvs-sync-period 30s",
}

// proxies run with their defaults (scheduler rr, sync period 30s), as the
// same node would, and kube-proxy also as kubeadm starts it (see
// proxySettings). kube-proxy gets the admin kubeconfig (in a cluster it
// holds system:node-proxier); ipvs-proxy its least-privileged one, and
// -v=2, so its kept log shows each full sync's phases and each resync
// (the bench reads "Resync done"), not each change's sync: kube-proxy,
// at its default verbosity, logs no line per sync either.
func (g *guest) proxies() []proxySpec {
	common := []string{"--hostname-override=" + benchNode, "--cluster-cidr=" + podCIDR,
		"--metrics-bind-address=127.0.0.1:10249", "--healthz-bind-address=127.0.0.1:10256"}
	kp, ip := g.env[envKubeProxyBin], g.env[envProxyBin]
	kpCleanup := []cleanupStep{{argv: []string{kp, "--proxy-mode=ipvs", "--kubeconfig=" + g.env[envAdminConfig],
		"--hostname-override=" + benchNode, "--cleanup"}, mayFail: true}, {argv: []string{ip, "cleanup", "--kube-proxy"}}}
	return []proxySpec{
		{
			name: kubeProxyName,
			argv: append([]string{kp, "--proxy-mode=ipvs", "--kubeconfig=" + g.env[envAdminConfig]}, common...),
			// kube-proxy's own cleanup, then ours for whatever it leaves.
			cleanup: kpCleanup,
			spaced:  true,
		},
		{
			name:    kubeProxyKubeadmName,
			argv:    []string{kp, "--config=" + g.kubeadmConfig()},
			cleanup: kpCleanup,
		},
		{
			name:    ipvsProxyName,
			argv:    append([]string{ip, "run", "--kubeconfig=" + g.env[envProxyConfig], "--profiling=" + fmt.Sprint(g.p.Profile), "--v=2"}, common...),
			cleanup: []cleanupStep{{argv: []string{ip, "cleanup"}}},
			spaced:  true,
		},
	}
}

// kubeadmConfig writes kube-proxy's configuration as kubeadm makes it for
// IPVS mode (the fields that matter here; kube-proxy defaults the rest,
// but not ipvs.minSyncPeriod) and returns its path.
func (g *guest) kubeadmConfig() string {
	path := filepath.Join(g.work, "kube-proxy-kubeadm.conf")
	conf := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
clusterCIDR: %s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
ipvs:
  minSyncPeriod: 0s
  syncPeriod: 30s
  scheduler: ""
`, g.env[envAdminConfig], benchNode, podCIDR)
	_ = os.WriteFile(path, []byte(conf), 0o644) // a failure shows as kube-proxy's own error
	return path
}

// record keeps a run and rewrites the results file at once, so the host
// reports it even if a later run hangs the VM.
func (g *guest) record(t *testing.T, r Run) {
	g.runs = append(g.runs, r)
	if err := writeRuns(filepath.Join(g.work, resultsFile), g.runs); err != nil {
		t.Errorf("writing results: %v", err)
	}
}

// requestLoad asks the host to load Services up to n (load_test.go).
func (g *guest) requestLoad(n int) error {
	if err := writeFileAtomic(filepath.Join(g.work, wantFile), strconv.Itoa(n)); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(filepath.Join(g.work, loadedFile))
		if err == nil {
			s := strings.TrimSpace(string(data))
			if strings.HasPrefix(s, "error") {
				return fmt.Errorf("the host could not load %d Services: %s", n, s)
			}
			if v, err := strconv.Atoi(s); err == nil && v >= n {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the host did not load %d Services in 15 minutes", n)
}
