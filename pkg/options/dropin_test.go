package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestKubeProxySettingsAct: kube-proxy's flags and fields that ipvs-proxy
// acts on set the options; those it does not act on give one warning line
// each, naming the flag or field.
func TestKubeProxySettingsAct(t *testing.T) {
	const ct = "Conntrack = {MaxPerCore:%s Min:%s TCPEstablishedTimeout:%s TCPCloseWaitTimeout:%s TCPBeLiberal:%s UDPTimeout:%s UDPStreamTimeout:%s}"
	conntrack := func(v ...string) string {
		s := ct
		for _, x := range v {
			s = strings.Replace(s, "%s", x, 1)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		file string // config file body; "" for none
		args []string
		want []string // dump lines that differ from the defaults
	}{
		{"kube-proxy's flags that act", "",
			[]string{"--proxy-mode=ipvs", "--kube-api-qps=20", "--kube-api-burst=40", "--bind-address=192.0.2.1",
				"--bind-address-hard-fail", "--oom-score-adj=-500", "-v=3"},
			[]string{"ProxyMode = ipvs", "KubeAPIQPS = 20", "KubeAPIBurst = 40", "BindAddress = 192.0.2.1",
				"BindAddressHardFail = true", "OOMScoreAdj = -500", "LogVerbosity = 3"}},
		{"conntrack flags", "",
			[]string{"--conntrack-max-per-core=0", "--conntrack-min=1000", "--conntrack-tcp-timeout-established=0",
				"--conntrack-tcp-timeout-close-wait=30m", "--conntrack-tcp-be-liberal", "--conntrack-udp-timeout=30s",
				"--conntrack-udp-timeout-stream=2m"},
			[]string{conntrack("0", "1000", "0s", "30m0s", "true", "30s", "2m0s")}},
		{"conntrack fields: null is the default, 0 is 0", `
conntrack:
  maxPerCore: 65536
  min: null
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: null
  tcpBeLiberal: true
  udpTimeout: 10s
  udpStreamTimeout: 0s
`, nil,
			[]string{conntrack("65536", "131072", "0s", "1h0m0s", "true", "10s", "0s")}},
		{"a conntrack flag wins over the file", "\nconntrack:\n  maxPerCore: 65536\n  min: 5\n",
			[]string{"--conntrack-min=7"},
			[]string{conntrack("65536", "7", "24h0m0s", "1h0m0s", "false", "0s", "0s"),
				"Warnings = flags given with --config win over the file here, where kube-proxy ignores them: --conntrack-min"}},
		{"feature gates from flags", "",
			[]string{"--feature-gates=AllowServiceExternalIPs=false,TopologyAwareHints=true"},
			[]string{"FeatureGates = map[AllowServiceExternalIPs:false TopologyAwareHints:true]", "AllowExternalIPs = false",
				"Warnings = feature gates that ipvs-proxy does not act on are ignored: TopologyAwareHints=true"}},
		{"feature gates from the file", "\nfeatureGates:\n  AllowServiceExternalIPs: false\n", nil,
			[]string{"FeatureGates = map[AllowServiceExternalIPs:false]", "AllowExternalIPs = false"}},
		{"the logging gates act (LoggingFeatureGate): only other gates are warned about", "",
			[]string{"--feature-gates=LoggingAlphaOptions=true,LoggingBetaOptions=false,ContextualLogging=false,TopologyAwareHints=true"},
			[]string{"FeatureGates = map[ContextualLogging:false LoggingAlphaOptions:true LoggingBetaOptions:false TopologyAwareHints:true]",
				"Warnings = feature gates that ipvs-proxy does not act on are ignored: TopologyAwareHints=true"}},
		{"a negative QPS is no limit, as in kube-proxy (flag)", "", []string{"--kube-api-qps=-1"},
			[]string{"KubeAPIQPS = -1"}},
		{"a negative QPS is no limit, as in kube-proxy (file)", "\nclientConnection:\n  qps: -1\n", nil,
			[]string{"KubeAPIQPS = -1"}},
		{"flags that do not apply warn once each", "",
			[]string{"--iptables-masquerade-bit=15",
				"--kube-api-content-type=application/json", "--config-sync-period=1m", "--iptables-sync-period=10s"},
			[]string{"Warnings = " + strings.Join([]string{
				"flag --kube-api-content-type=application/json does not apply to ipvs-proxy and is ignored: ipvs-proxy always asks for protobuf",
				"flag --iptables-masquerade-bit=15 does not apply to ipvs-proxy and is ignored: ipvs-proxy's marks are fixed: 0x1000 (masquerade), 0x2000 (keep the source) and 0x40000000 under the mask 0xc000f000 (the externalTrafficPolicy Local short-circuit), apart from kube-proxy's 0x4000 and 0x8000",
				"flag --iptables-sync-period=10s does not apply to ipvs-proxy and is ignored: " + notIPVS,
				"flag --config-sync-period=1m0s does not apply to ipvs-proxy and is ignored: ipvs-proxy's informers do not resync; `--ipvs-sync-period` repairs drift",
			}, "\n  ")}},
		{"values that ask for what ipvs-proxy does are quiet", "",
			[]string{"--kube-api-content-type=application/vnd.kubernetes.protobuf"}, nil},
		{"unknown and ignored fields warn, as kube-proxy's lenient loader", `
ipvs:
  schedular: lc
proxyMode: ipvs
winkernel:
  enableDSR: true
`, nil,
			[]string{`Warnings = config file %s: unknown field "ipvs.schedular" (ignored, as kube-proxy's lenient loader does)
  config file %s: unknown field "proxyMode" (ignored, as kube-proxy's lenient loader does)
  config file %s: fields that do not apply to ipvs-proxy are ignored: winkernel.enableDSR`}},
		{"detect-local from the file", "\ndetectLocalMode: BridgeInterface\ndetectLocal:\n  bridgeInterface: cni0\n", nil,
			[]string{"DetectLocal = BridgeInterface cni0 "}},
		{"deprecated port flags", "",
			[]string{"--healthz-port=0", "--metrics-bind-address=10.0.0.1", "--metrics-port=9000"},
			[]string{"HealthzBindAddress = ", "MetricsBindAddress = 10.0.0.1:9000"}},
		{"nodePortAddresses primary from the file, with a later field", "\nnodePortAddresses: [primary, 10.0.0.0/8]\nclusterCIDR: 10.244.0.0/16\n", nil,
			[]string{"NodePortAddresses = [10.0.0.0/8]", "NodePortPrimary = true", "ClusterCIDRs = [10.244.0.0/16]"}},
		{"the file's logging, with the flags over it", "\nlogging:\n  verbosity: 4\n  flushFrequency: 0\n", nil,
			[]string{"LogVerbosity = 4"}},
		{"-v wins over the file's logging", "\nlogging:\n  verbosity: 4\n", []string{"-v=2"},
			[]string{"LogVerbosity = 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, file := tc.args, ""
			want := tc.want
			if tc.file != "" {
				file = writeConfig(t, tc.file)
				args = append([]string{"--config=" + file}, args...)
				want = append([]string{"ConfigFile = " + file}, want...)
				for i := range want {
					want[i] = strings.ReplaceAll(want[i], "%s", file)
				}
			}
			o, stage, err := parse(args...)
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			diff(t, "options", defaultsDump(t, want...), dump(o))
		})
	}
}

// TestWriteConfig: what --write-config-to writes, --config reads back as
// the same options.
func TestWriteConfig(t *testing.T) {
	o, stage, err := parse("--config="+kubeadmConfig, "--ipvs-scheduler=wlc", "--conntrack-tcp-be-liberal",
		"--feature-gates=AllowServiceExternalIPs=false", "--nodeport-addresses=10.0.0.0/8,primary", "--kube-api-qps=7", "-v=2")
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	data, err := yaml.Marshal(o.KubeProxyConfiguration())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "written.conf")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	back, stage, err := parse("--config=" + file)
	if err != nil {
		t.Fatalf("reading back: %s: %v\n%s", stage, err, data)
	}
	o.ConfigFile = file
	// The warning about flags beside --config is the command line's; the
	// file read back has none.
	o.Warnings = nil
	diff(t, "options read back", dump(o), dump(back))
	if !strings.Contains(string(data), "mode: ipvs\n") {
		t.Errorf("written config lacks mode: ipvs:\n%s", data)
	}
}
