package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/options"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// TestEveryKubeProxyFlag: each of kube-proxy v1.37's flags (the list taken
// from its binary) is a flag of plain `ipvs-proxy` and of `ipvs-proxy run`.
func TestEveryKubeProxyFlag(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("../../pkg/options", options.FlagListFile))
	if err != nil {
		t.Fatal(err)
	}
	shown, hidden := options.ParseFlagList(data)
	root := newRoot()
	run, _, err := root.Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"ipvs-proxy", "ipvs-proxy run"} {
		c := root
		if cmd != "ipvs-proxy" {
			c = run
		}
		c.InitDefaultHelpFlag()
		for _, name := range append(shown, hidden...) {
			if c.Flags().Lookup(name) == nil {
				t.Errorf("%s has no --%s", cmd, name)
			}
		}
	}
}

// TestKubeadmCommandLine: kubeadm's kube-proxy command line, with only the
// binary's name changed, runs the proxy with the file's settings (seen
// through --write-config-to, which exits before anything needs root).
func TestKubeadmCommandLine(t *testing.T) {
	out := filepath.Join(t.TempDir(), "written.conf")
	code := run([]string{"--config=../../pkg/options/testdata/kubeadm-config.yaml", "--hostname-override=node-1", "--write-config-to=" + out})
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mode: ipvs\n", "hostnameOverride: node-1\n", "  strictARP: true\n", "  tcpTimeout: 15m0s\n",
		"clusterCIDR: 10.244.0.0/16,fd00:10:244::/56\n", "  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("written config lacks %q:\n%s", want, data)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--version"}, 0},
		{[]string{"run", "--version=raw"}, 0},
		{[]string{"--proxy-mode=iptables", "--write-config-to=/nonexistent/x"}, 2},
		{[]string{"--no-such-flag"}, 2},
		{[]string{"no-such-command"}, 2},
		{[]string{"--ipvs-scheduler=fast", "--write-config-to=/nonexistent/x"}, 2},
	} {
		if got := run(tc.args); got != tc.want {
			t.Errorf("ipvs-proxy %s: exit code %d, want %d", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}

// TestKubeProxyPages: /proxyMode and /configz answer as kube-proxy's do,
// and the metrics are still served beside them.
func TestKubeProxyPages(t *testing.T) {
	o := options.NewOptions()
	o.Scheduler = "wlc"
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) })
	srv := httptest.NewServer(withKubeProxyPages(metrics, o))
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get("/proxyMode"); got != "ipvs" {
		t.Errorf("/proxyMode = %q, want ipvs", got)
	}
	var configz map[string]v1alpha1.KubeProxyConfiguration
	if err := json.Unmarshal([]byte(get("/configz")), &configz); err != nil {
		t.Fatal(err)
	}
	if c := configz["kubeproxy.config.k8s.io"]; c.Mode != "ipvs" || c.IPVS.Scheduler != "wlc" {
		t.Errorf("/configz: mode %q, scheduler %q; want ipvs, wlc", c.Mode, c.IPVS.Scheduler)
	}
	if got := get("/metrics"); got != "metrics" {
		t.Errorf("/metrics = %q", got)
	}
}

func TestBirthCry(t *testing.T) {
	r := record.NewFakeRecorder(1)
	r.IncludeObject = true
	birthCry(r, "node-1")
	want := "Normal Starting Starting ipvs-proxy. involvedObject{kind=Node,apiVersion=v1}"
	if got := <-r.Events; got != want {
		t.Errorf("event %q, want %q", got, want)
	}
}

func TestHealthCheckFailedEvent(t *testing.T) {
	r := record.NewFakeRecorder(1)
	r.IncludeObject = true
	healthCheckFailed(r, "node-1")(types.NamespacedName{Namespace: "ns", Name: "web"}, 31000, errors.New("address already in use"))
	want := `Warning FailedToStartServiceHealthcheck node node-1 failed to start healthcheck "ns/web" on port 31000: address already in use involvedObject{kind=Service,apiVersion=v1}`
	if got := <-r.Events; got != want {
		t.Errorf("event %q, want %q", got, want)
	}
}
