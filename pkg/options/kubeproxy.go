package options

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Does is what ipvs-proxy does with one of kube-proxy's flags or config
// fields.
type Does string

const (
	// Acts: the setting has the effect it has in kube-proxy's IPVS mode.
	Acts Does = "acts"
	// Warns: accepted, and one warning line names it; nothing else happens.
	Warns Does = "warns"
	// Errors: some values stop start-up (Note says which).
	Errors Does = "errors"
)

// Setting is one of kube-proxy v1.37's flags, its config field, or both.
type Setting struct {
	Flag  string // without the dashes; "" when the field has no flag
	Field string // dotted path in KubeProxyConfiguration; "" when the flag has no field
	Does  Does
	Note  string
	// Quiet are values that ask for what ipvs-proxy does anyway, so a
	// Warns flag given one of them is not warned about.
	Quiet []string
}

const (
	notIPVS = "not used by IPVS mode (kube-proxy ignores it too when its mode is ipvs)"
	otherOS = "Windows only"
)

// KubeProxySettings is every flag and config field of kube-proxy v1.37 on
// Linux. The README's table is generated from it, and tests check it
// against kube-proxy's own flag set (testdata/kube-proxy-flags.txt, from
// the binary) and config type, so it cannot go stale.
var KubeProxySettings = []Setting{
	{"config", "", Acts, "reads a `KubeProxyConfiguration`; unknown fields are warned about, as kube-proxy's lenient loader does; flags given on the command line win over it (kube-proxy ignores all but the logging flags and `--hostname-override` there; a warning names them)", nil},
	{"write-config-to", "", Acts, "writes the configuration in effect as a `KubeProxyConfiguration` and exits", nil},
	{"cleanup", "", Acts, "removes what ipvs-proxy and kube-proxy made (as `ipvs-proxy cleanup --kube-proxy`) and exits", nil},
	{"init-only", "", Acts, "applies the sysctls, conntrack settings and IPVS timeouts, then exits", nil},
	{"version", "", Acts, "prints ipvs-proxy's version and exits (`--version=raw`: with build details)", nil},
	{"help", "", Acts, "prints the flags", nil},
	{"proxy-mode", "mode", Errors, "`ipvs` or empty; any other mode is an error", nil},
	{"feature-gates", "featureGates", Acts, "`AllowServiceExternalIPs=false` stops programming Services' externalIPs; the logging gates (`LoggingAlphaOptions`, `LoggingBetaOptions`, `ContextualLogging`) act as in kube-proxy, and `AllAlpha`/`AllBeta` on them; other gates are accepted and named in one warning line", nil},
	{"kubeconfig", "clientConnection.kubeconfig", Acts, "", nil},
	{"master", "", Acts, "", nil},
	{"kube-api-qps", "clientConnection.qps", Acts, "0 or unset: ipvs-proxy's 50; negative: no limit, as in kube-proxy", nil},
	{"kube-api-burst", "clientConnection.burst", Acts, "0 or unset: ipvs-proxy's 100", nil},
	{"kube-api-content-type", "clientConnection.contentType", Warns, "ipvs-proxy always asks for protobuf", []string{"", "application/vnd.kubernetes.protobuf"}},
	{"", "clientConnection.acceptContentTypes", Warns, "ipvs-proxy always asks for protobuf", nil},
	{"hostname-override", "hostnameOverride", Acts, "", nil},
	{"bind-address", "bindAddress", Acts, "the node's primary IP (for `nodePortAddresses: [primary]`); in a config file, an IPv6 address makes the default health and metrics addresses IPv6 (the flag does not, as in kube-proxy)", nil},
	{"healthz-bind-address", "healthzBindAddress", Acts, "", nil},
	{"healthz-port", "", Acts, "deprecated in kube-proxy; 0 turns the health server off", nil},
	{"metrics-bind-address", "metricsBindAddress", Acts, "", nil},
	{"metrics-port", "", Acts, "deprecated in kube-proxy; 0 turns the metrics server off", nil},
	{"bind-address-hard-fail", "bindAddressHardFail", Acts, "a health or metrics server that cannot listen stops ipvs-proxy; without it the server tries again every 5 s, as kube-proxy's", nil},
	{"profiling", "enableProfiling", Acts, "`/debug/pprof/` and `/debug/flags/v` (a PUT of a number sets the log verbosity) on the metrics server", nil},
	{"show-hidden-metrics-for-version", "showHiddenMetricsForVersion", Warns, "ipvs-proxy hides no metrics", nil},
	{"ipvs-scheduler", "ipvs.scheduler", Acts, "any scheduler of the kernel's IPVS, checked at start", nil},
	{"ipvs-sync-period", "ipvs.syncPeriod", Acts, "", nil},
	{"ipvs-min-sync-period", "ipvs.minSyncPeriod", Acts, "", nil},
	{"ipvs-strict-arp", "ipvs.strictARP", Acts, "", nil},
	{"ipvs-exclude-cidrs", "ipvs.excludeCIDRs", Acts, "", nil},
	{"ipvs-tcp-timeout", "ipvs.tcpTimeout", Acts, "", nil},
	{"ipvs-tcpfin-timeout", "ipvs.tcpFinTimeout", Acts, "", nil},
	{"ipvs-udp-timeout", "ipvs.udpTimeout", Acts, "", nil},
	{"masquerade-all", "iptables.masqueradeAll", Acts, "", nil},
	{"iptables-masquerade-bit", "iptables.masqueradeBit", Warns, "ipvs-proxy's marks are fixed: 0x1000 (masquerade), 0x2000 (keep the source) and 0x40000000 under the mask 0xc000f000 (the externalTrafficPolicy Local short-circuit), apart from kube-proxy's 0x4000 and 0x8000", nil},
	{"iptables-localhost-nodeports", "iptables.localhostNodePorts", Warns, "IPVS cannot serve NodePorts on 127.0.0.1; kube-proxy's IPVS mode does not either", nil},
	{"iptables-sync-period", "iptables.syncPeriod", Warns, notIPVS, nil},
	{"iptables-min-sync-period", "iptables.minSyncPeriod", Warns, notIPVS, nil},
	{"", "nftables.masqueradeAll", Warns, notIPVS, nil},
	{"", "nftables.masqueradeBit", Warns, notIPVS, nil},
	{"", "nftables.syncPeriod", Warns, notIPVS, nil},
	{"", "nftables.minSyncPeriod", Warns, notIPVS, nil},
	{"detect-local-mode", "detectLocalMode", Acts, "ClusterCIDR (default), NodeCIDR (the Node's podCIDRs, waited for up to 5 min at start; a change restarts ipvs-proxy, as kube-proxy), BridgeInterface, InterfaceNamePrefix: how Service traffic from this node's pods is told apart, which is not masqueraded", nil},
	{"pod-bridge-interface", "detectLocal.bridgeInterface", Acts, "with BridgeInterface", nil},
	{"pod-interface-name-prefix", "detectLocal.interfaceNamePrefix", Acts, "with InterfaceNamePrefix", nil},
	{"cluster-cidr", "clusterCIDR", Acts, "", nil},
	{"nodeport-addresses", "nodePortAddresses", Acts, "CIDRs and the keywords `primary` (the Node's IPs at start; a change of them restarts ipvs-proxy, as kube-proxy), `all`, `localhost`; per IP family as kube-proxy (a family without a CIDR in the list gets every address)", nil},
	{"oom-score-adj", "oomScoreAdj", Acts, "default -999, as kube-proxy", nil},
	{"conntrack-max-per-core", "conntrack.maxPerCore", Acts, "nf_conntrack_max raised (never lowered) to maxPerCore × CPUs capped at 1M, or min if larger, and the hash size raised to a quarter of it (as kube-proxy); 0 leaves it alone", nil},
	{"conntrack-min", "conntrack.min", Acts, "", nil},
	{"conntrack-tcp-timeout-established", "conntrack.tcpEstablishedTimeout", Acts, "default 24h; 0 leaves it alone", nil},
	{"conntrack-tcp-timeout-close-wait", "conntrack.tcpCloseWaitTimeout", Acts, "default 1h; 0 leaves it alone", nil},
	{"conntrack-tcp-be-liberal", "conntrack.tcpBeLiberal", Acts, "", nil},
	{"conntrack-udp-timeout", "conntrack.udpTimeout", Acts, "0 leaves it alone", nil},
	{"conntrack-udp-timeout-stream", "conntrack.udpStreamTimeout", Acts, "0 leaves it alone", nil},
	{"config-sync-period", "configSyncPeriod", Warns, "ipvs-proxy's informers do not resync; `--ipvs-sync-period` repairs drift", nil},
	{"", "portRange", Warns, "ignored by kube-proxy v1.37 too", nil},
	{"", "winkernel.networkName", Warns, otherOS, nil},
	{"", "winkernel.sourceVip", Warns, otherOS, nil},
	{"", "winkernel.enableDSR", Warns, otherOS, nil},
	{"", "winkernel.rootHnsEndpointName", Warns, otherOS, nil},
	{"", "winkernel.forwardHealthCheckVip", Warns, otherOS, nil},
	{"", "windowsRunAsService", Warns, otherOS, nil},
	{"logging-format", "logging.format", Acts, "", nil},
	{"log-flush-frequency", "logging.flushFrequency", Acts, "", nil},
	{"v", "logging.verbosity", Acts, "", nil},
	{"vmodule", "logging.vmodule", Acts, "", nil},
	{"log-json-info-buffer-size", "logging.options.json.infoBufferSize", Acts, "", nil},
	{"log-json-split-stream", "logging.options.json.splitStream", Acts, "", nil},
	{"log-text-info-buffer-size", "logging.options.text.infoBufferSize", Acts, "", nil},
	{"log-text-split-stream", "logging.options.text.splitStream", Acts, "", nil},
}

// setting returns the entry of a flag, or of a config field path (a map
// field's keys, "featureGates.X", belong to the map's entry).
func settingOfFlag(name string) (Setting, bool) {
	i := slices.IndexFunc(KubeProxySettings, func(s Setting) bool { return s.Flag == name })
	if i < 0 {
		return Setting{}, false
	}
	return KubeProxySettings[i], true
}

func settingOfField(path string) (Setting, bool) {
	for _, s := range KubeProxySettings {
		if s.Field != "" && (path == s.Field || strings.HasPrefix(path, s.Field+".")) {
			return s, true
		}
	}
	return Setting{}, false
}

// SettingsTable is the README's table of kube-proxy's flags and fields.
func SettingsTable() string {
	var b strings.Builder
	b.WriteString("| kube-proxy flag | config field | ipvs-proxy | notes |\n|---|---|---|---|\n")
	code := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + s + "`"
	}
	for _, s := range KubeProxySettings {
		flag := ""
		if s.Flag != "" {
			flag = "--" + s.Flag
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code(flag), code(s.Field), s.Does, s.Note)
	}
	return b.String()
}

func (o *Options) addConntrackFlags(fs *pflag.FlagSet) {
	c := &o.Conntrack
	fs.Int32Var(&c.MaxPerCore, "conntrack-max-per-core", c.MaxPerCore,
		"nf_conntrack_max per CPU: it is set to max(this × CPUs, --conntrack-min) if lower. 0 leaves nf_conntrack_max alone and ignores --conntrack-min.")
	fs.Int32Var(&c.Min, "conntrack-min", c.Min,
		"Least nf_conntrack_max, whatever --conntrack-max-per-core gives.")
	fs.DurationVar(&c.TCPEstablishedTimeout, "conntrack-tcp-timeout-established", c.TCPEstablishedTimeout,
		"Idle timeout of established TCP connections in conntrack (0 leaves it alone).")
	fs.DurationVar(&c.TCPCloseWaitTimeout, "conntrack-tcp-timeout-close-wait", c.TCPCloseWaitTimeout,
		"Timeout of TCP connections in CLOSE_WAIT in conntrack (0 leaves it alone).")
	fs.BoolVar(&c.TCPBeLiberal, "conntrack-tcp-be-liberal", c.TCPBeLiberal,
		"Set nf_conntrack_tcp_be_liberal to 1: out-of-window TCP packets are not marked INVALID.")
	fs.DurationVar(&c.UDPTimeout, "conntrack-udp-timeout", c.UDPTimeout,
		"Idle timeout of UNREPLIED UDP flows in conntrack (0 leaves it alone).")
	fs.DurationVar(&c.UDPStreamTimeout, "conntrack-udp-timeout-stream", c.UDPStreamTimeout,
		"Idle timeout of ASSURED UDP flows in conntrack (0 leaves it alone).")
}

// ignoredFlags holds the values of the kube-proxy flags ipvs-proxy does
// not act on: they are parsed with kube-proxy's types, so a bad value is
// still an error, and then only warned about.
type ignoredFlags struct {
	contentType, showHidden         string
	masqBit                         int32
	localhostNodePorts              bool
	iptSync, iptMinSync, configSync time.Duration
}

func (o *Options) addIgnoredFlags(fs *pflag.FlagSet) {
	ig := &o.ignored
	usage := func(name string) string {
		s, _ := settingOfFlag(name)
		// pflag would read a `quoted` word as the flag's type name.
		return "kube-proxy's flag, accepted and ignored: " + strings.ReplaceAll(s.Note, "`", "") + "."
	}
	fs.StringVar(&ig.contentType, "kube-api-content-type", "application/vnd.kubernetes.protobuf", usage("kube-api-content-type"))
	fs.StringVar(&ig.showHidden, "show-hidden-metrics-for-version", "", usage("show-hidden-metrics-for-version"))
	fs.Int32Var(&ig.masqBit, "iptables-masquerade-bit", 14, usage("iptables-masquerade-bit"))
	fs.BoolVar(&ig.localhostNodePorts, "iptables-localhost-nodeports", true, usage("iptables-localhost-nodeports"))
	fs.DurationVar(&ig.iptSync, "iptables-sync-period", 30*time.Second, usage("iptables-sync-period"))
	fs.DurationVar(&ig.iptMinSync, "iptables-min-sync-period", time.Second, usage("iptables-min-sync-period"))
	fs.DurationVar(&ig.configSync, "config-sync-period", 15*time.Minute, usage("config-sync-period"))
}

// flagWarnings is one line for each Warns flag given on the command line
// with a value that asks for something ipvs-proxy does not do.
func flagWarnings(fs *pflag.FlagSet) []string {
	var out []string
	for _, s := range KubeProxySettings {
		if s.Does != Warns || s.Flag == "" || !fs.Changed(s.Flag) {
			continue
		}
		v := fs.Lookup(s.Flag).Value.String()
		if slices.Contains(s.Quiet, v) {
			continue
		}
		out = append(out, fmt.Sprintf("flag --%s=%s does not apply to ipvs-proxy and is ignored: %s", s.Flag, v, s.Note))
	}
	return out
}

// FlagListFile is kube-proxy's flag names, taken from its binary: one a
// line, "hidden" after a name its --help does not show, # comments.
const FlagListFile = "testdata/kube-proxy-flags.txt"

// ParseFlagList reads FlagListFile's format.
func ParseFlagList(data []byte) (shown, hidden []string) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case len(f) > 1 && f[1] == "hidden":
			hidden = append(hidden, f[0])
		default:
			shown = append(shown, f[0])
		}
	}
	return shown, hidden
}
