package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestGuestKubeadmDaemonSet runs ipvs-proxy as kubeadm's kube-proxy
// DaemonSet does, with only the image changed: the binary under the name
// kube-proxy, kubeadm's command line, and config.conf as `kubeadm init`
// writes it for IPVS mode (pkg/options/testdata/kubeadm-config.yaml; only
// the kubeconfig path is this VM's). It must program Services, and apply
// kube-proxy's conntrack settings: the file's nulls are kube-proxy's
// defaults (established 24h, close-wait 1h), --conntrack-* flags win over
// it, and nf_conntrack_max and the hashsize read back from the kernel.
func TestGuestKubeadmDaemonSet(t *testing.T) {
	guest(t)
	w := newWorld(t, "kubeadm")
	dir := t.TempDir()
	// The guest sees the host's root: read the file beside this source.
	_, self, _, _ := runtime.Caller(0)
	config, err := os.ReadFile(filepath.Join(filepath.Dir(self), "../../pkg/options/testdata/kubeadm-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(config), "kubeconfig: /var/lib/kube-proxy/kubeconfig.conf", "kubeconfig: "+os.Getenv(envKubeconfig), 1)
	conf = strings.Replace(conf, "metricsBindAddress: 0.0.0.0:10249", "metricsBindAddress: 127.0.0.1:10249", 1)
	if err := os.WriteFile(filepath.Join(dir, "config.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "kube-proxy")
	if err := os.Symlink(os.Getenv(envProxyBin), bin); err != nil {
		t.Fatal(err)
	}
	// Lower than they will be, so the raises are seen; the VM's own
	// values come back afterwards, for the tests that follow.
	saved := sh(t, "modprobe nf_conntrack; sysctl -n net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait; cat /sys/module/nf_conntrack/parameters/hashsize")
	t.Cleanup(func() {
		v := strings.Fields(saved)
		sh(t, "sysctl -w net.netfilter.nf_conntrack_max="+v[0]+" net.netfilter.nf_conntrack_tcp_timeout_established="+v[1]+
			" net.netfilter.nf_conntrack_tcp_timeout_close_wait="+v[2]+"; echo "+v[3]+" > /sys/module/nf_conntrack/parameters/hashsize")
	})
	sh(t, "sysctl -w net.netfilter.nf_conntrack_max=65536 net.netfilter.nf_conntrack_tcp_timeout_established=432000 net.netfilter.nf_conntrack_tcp_timeout_close_wait=60; "+
		"echo 16384 > /sys/module/nf_conntrack/parameters/hashsize")

	// kubeadm's command, plus one conntrack flag: the file's maxPerCore is
	// 0 (kind's), which leaves nf_conntrack_max alone.
	w.start(bin, "--config="+filepath.Join(dir, "config.conf"), "--hostname-override="+nodeName, "--conntrack-max-per-core=65536")
	w.waitFirstSync()
	web := w.service("web", nil, ep{pod: "pod-a"}, ep{pod: "pod-b"})
	// ipvs.scheduler is "" in the file: rr.
	waitIPVS(t, "TCP "+hostPort(web.Spec.ClusterIP, 80)+" rr", hostPort("10.244.0.2", 8080)+" Masq 1", hostPort("10.244.0.3", 8080)+" Masq 1")

	n := onlineCPUs(t)
	wantMax := max(65536*n, 131072)
	for _, c := range []struct{ path, want string }{
		{"/proc/sys/net/netfilter/nf_conntrack_max", strconv.Itoa(wantMax)},
		{"/sys/module/nf_conntrack/parameters/hashsize", strconv.Itoa(wantMax / 4)},
		{"/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established", "86400"},
		{"/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait", "3600"},
	} {
		b, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != c.want {
			t.Errorf("%s = %s, want %s", c.path, got, c.want)
		}
	}
	log, _ := os.ReadFile(w.log)
	if !strings.Contains(string(log), "nf_conntrack_max: 65536 -> "+strconv.Itoa(wantMax)) {
		t.Errorf("the log does not say nf_conntrack_max was raised:\n%s", tail(string(log), 40))
	}
}

// onlineCPUs counts /sys/devices/system/cpu/online ("0-1", "0,2-3").
func onlineCPUs(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if found {
			z, _ = strconv.Atoi(hi)
		}
		n += z - a + 1
	}
	return n
}
