package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
)

const kubeadmConfig = "testdata/kubeadm-config.yaml"

func TestKubeadmConfig(t *testing.T) {
	o, stage, err := parse("--config=" + kubeadmConfig)
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	want := defaultsDump(t,
		"ConfigFile = "+kubeadmConfig,
		"Kubeconfig = /var/lib/kube-proxy/kubeconfig.conf",
		"SyncPeriod = 1m0s",
		"StrictARP = true",
		"ExcludeCIDRs = [10.103.0.0/24]",
		"TCPTimeout = 15m0s",
		"ClusterCIDRs = [10.244.0.0/16,fd00:10:244::/56]",
		"MetricsBindAddress = 0.0.0.0:10249",
		"ProxyMode = ipvs",
		"BindAddress = 0.0.0.0",
		// kind's maxPerCore: 0 leaves nf_conntrack_max alone; the
		// nulls are kube-proxy's defaults.
		"Conntrack = {MaxPerCore:0 Min:131072 TCPEstablishedTimeout:24h0m0s TCPCloseWaitTimeout:1h0m0s TCPBeLiberal:false UDPTimeout:0s UDPStreamTimeout:0s}",
	)
	diff(t, "options from "+kubeadmConfig, want, dump(o))
}

func TestIPv6BindAddress(t *testing.T) {
	file := writeConfig(t, "\nbindAddress: \"::\"\nmetricsBindAddress: \"[fd00::1]:9999\"\n")
	o, stage, err := parse("--config=" + file)
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	diff(t, "options", defaultsDump(t,
		"ConfigFile = "+file,
		"HealthzBindAddress = [::]:10256",
		"MetricsBindAddress = [fd00::1]:9999",
		"BindAddress = ::",
	), dump(o))
}

func TestFlagsOverrideFile(t *testing.T) {
	file := writeConfig(t, `
ipvs:
  scheduler: lc
  strictARP: true
  syncPeriod: 1m
  minSyncPeriod: 5s
  excludeCIDRs: [10.103.0.0/24]
clusterCIDR: 10.244.0.0/16
hostnameOverride: from-file
iptables:
  masqueradeAll: true
`)
	o, stage, err := parse("--config="+file,
		"--ipvs-scheduler=sh",                 // kube-proxy name
		"--ipvs_sync_period=2m",               // kube-proxy's normalization
		"--ipvs-strict-arp=false",             // explicit default still wins
		"--ipvs-exclude-cidrs=192.168.0.0/16", // list replaces, not appends
		"--hostname-override=from-flag",       // kube-proxy applies it over a file too: no warning
		"--state-file=/tmp/owned")             // ipvs-proxy's own: no warning
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	want := defaultsDump(t,
		"ConfigFile = "+file,
		"HostnameOverride = from-flag",
		"Scheduler = sh",
		"SyncPeriod = 2m0s",
		"MinSyncPeriod = 5s",
		"ExcludeCIDRs = [192.168.0.0/16]",
		"ClusterCIDRs = [10.244.0.0/16]",
		"MasqueradeAll = true",
		"StateFile = /tmp/owned",
		"Warnings = flags given with --config win over the file here, where kube-proxy ignores them: --ipvs-scheduler, --ipvs-sync-period, --ipvs-strict-arp, --ipvs-exclude-cidrs",
	)
	diff(t, "options", want, dump(o))
}

// TestMinSyncPeriodByPath pins down each way of starting: flags only, and
// a file, where "0s" (kubeadm's value) or no value is 0, as kube-proxy
// reads it, not "unset". The baseline before parsing is 1s, so a file
// value mistaken for unset would show as 1s.
func TestMinSyncPeriodByPath(t *testing.T) {
	kubeadmZero := writeConfig(t, "\nipvs:\n  minSyncPeriod: 0s\n")
	noValue := writeConfig(t, "\nipvs:\n  syncPeriod: 30s\n")
	quarter := writeConfig(t, "\nipvs:\n  minSyncPeriod: 250ms\n")
	for _, tc := range []struct {
		name string
		args []string
		want time.Duration
	}{
		{"flags only, unset: the baseline", nil, time.Second},
		{"flags only", []string{"--ipvs-min-sync-period=0"}, 0},
		{"file with 0s", []string{"--config=" + kubeadmZero}, 0},
		{"file without a value", []string{"--config=" + noValue}, 0},
		{"file with 250ms", []string{"--config=" + quarter}, 250 * time.Millisecond},
		{"a flag wins over the file's 0s", []string{"--config=" + kubeadmZero, "--ipvs-min-sync-period=2s"}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			o.MinSyncPeriod = time.Second
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := o.Complete(fs); err != nil {
				t.Fatal(err)
			}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			if o.MinSyncPeriod != tc.want {
				t.Errorf("MinSyncPeriod = %v, want %v", o.MinSyncPeriod, tc.want)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		args       []string
		stage      string
		want       string // %s is the file's path
	}{
		{"the last of duplicate fields wins, as in kube-proxy", `
mode: ipvs
mode: iptables
`, nil, "validate",
			`invalid mode "iptables" in %s: ipvs-proxy programs IPVS only: want "ipvs" or empty`},
		{"not a KubeProxyConfiguration", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n", nil, "complete",
			`config file %s: apiVersion "kubelet.config.k8s.io/v1beta1", kind "KubeletConfiguration": want apiVersion "kubeproxy.config.k8s.io/v1alpha1", kind "KubeProxyConfiguration"`},
		{"bad values name the file field", `
ipvs:
  scheduler: fast
  minSyncPeriod: 2m
  excludeCIDRs: [10.0.0.0/33, 10.1.0.0/16]
  tcpTimeout: -1s
nodePortAddresses: [primary, 10.0.0.1]
clusterCIDR: 10.244.0.0/16,nope
healthzBindAddress: "[::1]"
hostnameOverride: Bad_Name
`, nil, "validate",
			`invalid hostnameOverride "Bad_Name" in %[1]s: not a valid Node name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')
invalid ipvs.scheduler "fast" in %[1]s: unknown IPVS scheduler "fast" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)
invalid ipvs.minSyncPeriod "2m0s" in %[1]s: must not be greater than --ipvs-sync-period (30s)
invalid ipvs.tcpTimeout "-1s" in %[1]s: must not be negative (0 leaves the kernel's value)
invalid ipvs.excludeCIDRs "10.0.0.0/33" in %[1]s: not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)
invalid nodePortAddresses "10.0.0.1" in %[1]s: not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)
invalid clusterCIDR "nope" in %[1]s: not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)
invalid healthzBindAddress "[::1]" in %[1]s: want IP:port, e.g. 0.0.0.0:10256 or [::]:10256`},
		{"a pod bridge the file's mode needs names the file field", `
detectLocalMode: BridgeInterface
`, nil, "validate",
			`invalid detectLocal.bridgeInterface "" in %s: must be set with detectLocalMode BridgeInterface`},
		{"a pod interface prefix the file's mode needs names the file field", `
detectLocalMode: InterfaceNamePrefix
detectLocal:
  bridgeInterface: cni0
`, nil, "validate",
			`invalid detectLocal.interfaceNamePrefix "" in %s: must be set with detectLocalMode InterfaceNamePrefix`},
		{"a mode given as a flag names the flag", `
detectLocalMode: BridgeInterface
`, []string{"--detect-local-mode=InterfaceNamePrefix"}, "validate",
			`invalid --pod-interface-name-prefix "": must be set with detect-local-mode InterfaceNamePrefix`},
		{"a flag replaces a bad file value", `
ipvs:
  scheduler: fast
  excludeCIDRs: [bogus]
`, []string{"--ipvs-scheduler=rr", "--ipvs-exclude-cidrs=bad2"}, "validate",
			`invalid --ipvs-exclude-cidrs "bad2": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if !strings.Contains(body, "kind:") {
				body = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration" + body
			}
			file := writeConfig(t, body)
			_, stage, err := parse(append([]string{"--config=" + file}, tc.args...)...)
			if err == nil {
				t.Fatalf("no error, want:\n%s", tc.want)
			}
			if stage != tc.stage {
				t.Errorf("failed in %s, want %s", stage, tc.stage)
			}
			diff(t, "error", strings.ReplaceAll(strings.ReplaceAll(tc.want, "%[1]s", file), "%s", file), err.Error())
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	_, stage, err := parse("--config=/nonexistent/config.conf")
	want := "read config file: open /nonexistent/config.conf: no such file or directory"
	if stage != "complete" || err == nil || err.Error() != want {
		t.Errorf("got %s error %v, want complete error %q", stage, err, want)
	}
}

func TestIgnoredFields(t *testing.T) {
	kubeadm, warnings, err := LoadConfig(kubeadmConfig)
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	custom := kubeadm.DeepCopy()
	custom.BindAddress = "::" // kubeadm's default on IPv6: not listed
	custom.FeatureGates = map[string]bool{"KubeProxyIPVS": true}
	custom.NFTables.SyncPeriod = metav1.Duration{Duration: 10 * time.Second}
	custom.DetectLocalMode = "NodeCIDR"
	custom.Logging.Verbosity = 4
	custom.Mode = "iptables" // an error of its own, not listed
	custom.Conntrack.MaxPerCore = nil
	custom.IPTables.MasqueradeBit = new(int32)

	for _, tc := range []struct {
		name string
		cfg  *v1alpha1.KubeProxyConfiguration
		want string
	}{
		{"zero", &v1alpha1.KubeProxyConfiguration{}, ""},
		{"kube-proxy's defaults", kubeProxyDefaults(), ""},
		{"kubeadm with kind's maxPerCore", kubeadm, ""},
		{"custom", custom, "iptables.masqueradeBit, nftables.syncPeriod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Maps iterate at random: the list must come out the same each time.
			for range 20 {
				if got := strings.Join(IgnoredFields(tc.cfg), ", "); got != tc.want {
					t.Fatalf("IgnoredFields = %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	if !strings.Contains(body, "kind:") {
		body = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration" + body
	}
	path := filepath.Join(t.TempDir(), "config.conf")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
