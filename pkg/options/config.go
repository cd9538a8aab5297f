package options

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const configKind = "KubeProxyConfiguration"

// Complete fills in what parsing the flags cannot: it loads ConfigFile if
// set, keeping the value of every flag given on the command line (flags
// win over the file; kube-proxy ignores them there, but the logging ones
// and --hostname-override, and a warning names each such flag), and turns kube-proxy's shorthand
// values into full ones (empty scheduler is rr, a bind address without a
// port gets the default port). Call it after fs.Parse, before Validate.
func (o *Options) Complete(fs *pflag.FlagSet) error {
	o.Warnings = flagWarnings(fs)
	if o.ConfigFile != "" {
		cfg, warnings, err := LoadConfig(o.ConfigFile)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			o.Warnings = append(o.Warnings, fmt.Sprintf("config file %s: %s (ignored, as kube-proxy's lenient loader does)", o.ConfigFile, w))
		}
		if ignored := IgnoredFields(cfg); len(ignored) > 0 {
			o.Warnings = append(o.Warnings, fmt.Sprintf("config file %s: fields that do not apply to ipvs-proxy are ignored: %s", o.ConfigFile, strings.Join(ignored, ", ")))
		}

		if flags := overFile(fs); len(flags) > 0 {
			o.Warnings = append(o.Warnings, fmt.Sprintf("flags given with --config win over the file here, where kube-proxy ignores them: %s", strings.Join(flags, ", ")))
		}

		file := NewOptions()
		file.ConfigFile = o.ConfigFile
		file.applyConfig(cfg)
		for f, info := range fields {
			if !file.fromFile[f] || fs.Changed(info.flag) {
				continue
			}
			info.copy(o, file)
			o.setBad(f, file.badCIDRs[f])
			o.markFromFile(f)
		}
		if err := o.loggingFromFile(fs, cfg.Logging); err != nil {
			return err
		}
	}

	if o.Scheduler == "" {
		o.Scheduler = DefaultScheduler
	}
	o.HealthzBindAddress = withPort(o.HealthzBindAddress, DefaultHealthzBindAddress, healthzPort)
	o.MetricsBindAddress = withPort(o.MetricsBindAddress, DefaultMetricsBindAddress, metricsPort)
	// The deprecated port flags: 0 turns the server off, another port
	// replaces the address's. kube-proxy only adds a port to an address
	// that has none, and ignores the flags with --config; here they win
	// over the file, as every flag does.
	if fs.Changed("healthz-port") {
		o.HealthzBindAddress = replacePort(o.HealthzBindAddress, o.healthzPort)
	}
	if fs.Changed("metrics-port") {
		o.MetricsBindAddress = replacePort(o.MetricsBindAddress, o.metricsPort)
	}
	o.completeFeatureGates()
	return nil
}

// overFile names the kube-proxy flags given on the command line beside
// --config that kube-proxy would ignore: with a file it takes every
// setting from it, but the logging flags and --hostname-override (and
// --master, which has no field). A kube-proxy DaemonSet that carries such
// flags next to its file then behaves differently under ipvs-proxy, which
// applies them.
func overFile(fs *pflag.FlagSet) []string {
	var out []string
	for _, s := range KubeProxySettings {
		switch {
		case s.Flag == "" || !fs.Changed(s.Flag):
		case s.Field == "" && s.Flag != "healthz-port" && s.Flag != "metrics-port":
			// Not a setting of the file: --config itself, --master,
			// --cleanup and the like.
		case s.Flag == "hostname-override" || strings.HasPrefix(s.Field, "logging."):
		default:
			out = append(out, "--"+s.Flag)
		}
	}
	return out
}

// allowExternalIPsGate is the feature gate ipvs-proxy acts on itself; the
// logging gates (loggingGates) act through LoggingFeatureGate.
const allowExternalIPsGate = "AllowServiceExternalIPs"

func (o *Options) completeFeatureGates() {
	o.AllowExternalIPs = true
	logging := loggingGates()
	var other []string
	for gate, on := range o.FeatureGates {
		if gate == allowExternalIPsGate {
			o.AllowExternalIPs = on
			continue
		}
		if logging[gate] {
			continue
		}
		if allGates[gate] && on {
			o.Warnings = append(o.Warnings, fmt.Sprintf("feature gate %s=true acts on the logging gates only (LoggingAlphaOptions, LoggingBetaOptions, ContextualLogging): ipvs-proxy has no other alpha or beta gates", gate))
			continue
		}
		other = append(other, fmt.Sprintf("%s=%t", gate, on))
	}
	if len(other) > 0 {
		slices.Sort(other)
		o.Warnings = append(o.Warnings, "feature gates that ipvs-proxy does not act on are ignored: "+strings.Join(other, ","))
	}
}

// allGates are the gates every feature gate has, which set all alpha or
// all beta gates at once.
var allGates = map[string]bool{"AllAlpha": true, "AllBeta": true}

// newLoggingGate is a feature gate holding only component-base's logging
// gates (ContextualLogging, LoggingAlphaOptions, LoggingBetaOptions) at
// their defaults.
func newLoggingGate() featuregate.MutableVersionedFeatureGate {
	gate := featuregate.NewFeatureGate()
	if err := logsapi.AddFeatureGates(gate); err != nil {
		panic(err) // cannot happen: a new gate has none of them yet
	}
	return gate
}

// loggingGates are the names of component-base's logging gates: those of
// newLoggingGate but AllAlpha and AllBeta, which every gate has.
func loggingGates() map[string]bool {
	every := featuregate.NewFeatureGate().GetAllVersioned()
	out := map[string]bool{}
	for name := range newLoggingGate().GetAllVersioned() {
		if _, ok := every[name]; !ok {
			out[string(name)] = true
		}
	}
	return out
}

// LoggingFeatureGate is the feature gate the logging configuration is
// validated and applied with (logsapi.ValidateAndApply), as kube-proxy
// applies its own: the logging gates as FeatureGates (--feature-gates or
// featureGates, the flag winning) sets them, the others at their
// defaults. LoggingAlphaOptions=true, say, allows --log-text-split-stream.
func (o *Options) LoggingFeatureGate() (featuregate.FeatureGate, error) {
	gate := newLoggingGate()
	logging := loggingGates()
	set := map[string]bool{}
	for name, on := range o.FeatureGates {
		// AllAlpha and AllBeta too: in kube-proxy they turn on every
		// alpha or beta gate not set by name, the logging ones included.
		if logging[name] || allGates[name] {
			set[name] = on
		}
	}
	if err := gate.SetFromMap(set); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", o.name(fFeatureGates), err)
	}
	return gate, nil
}

func replacePort(addr string, port int32) string {
	if port == 0 {
		return ""
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // Validate names the bad address
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// loggingFromFile makes the file's logging configuration the one in
// effect, with the logging flags given on the command line applied over it,
// as kube-proxy does (so --config with -v=5 still logs at 5).
func (o *Options) loggingFromFile(fs *pflag.FlagSet, fileCfg logsapi.LoggingConfiguration) error {
	merged := fileCfg.DeepCopy()
	logsapi.SetRecommendedLoggingConfiguration(merged)
	var clone pflag.FlagSet
	// AddFlags registers the split-stream flags with the default false,
	// which it writes over the file's value: keep the file's, so that only
	// a flag given on the command line (set below) changes them.
	textSplit, jsonSplit := merged.Options.Text.SplitStream, merged.Options.JSON.SplitStream
	logsapi.AddFlags(merged, &clone)
	merged.Options.Text.SplitStream, merged.Options.JSON.SplitStream = textSplit, jsonSplit
	vmodule := merged.VModule
	merged.VModule = nil
	var err error
	clone.VisitAll(func(f *pflag.Flag) {
		given := fs.Lookup(f.Name)
		if err != nil || given == nil || !given.Changed {
			return
		}
		if setErr := f.Value.Set(given.Value.String()); setErr != nil {
			err = fmt.Errorf("logging flag --%s: %w", f.Name, setErr)
		}
	})
	merged.VModule = append(merged.VModule, vmodule...)
	*o.Logging = *merged
	return err
}

// withPort is kube-proxy's handling of bind addresses: empty means the
// default, and an IP without a port gets the default port.
func withPort(addr, def, port string) string {
	if addr == "" {
		return def
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		return net.JoinHostPort(ip.String(), port)
	}
	return addr
}

func (o *Options) markFromFile(f field) {
	if o.fromFile == nil {
		o.fromFile = map[field]bool{}
	}
	o.fromFile[f] = true
}

// applyConfig sets the fields the file gives. Zero values mean "unset",
// as they do for kube-proxy, whose defaulting fills them in: kubeadm writes
// every field, most of them as zero ("0s", "", null).
func (o *Options) applyConfig(cfg *v1alpha1.KubeProxyConfiguration) {
	setString := func(f field, dst *string, v string) {
		if v != "" {
			*dst = v
			o.markFromFile(f)
		}
	}
	setDuration := func(f field, dst *time.Duration, v metav1.Duration) {
		if v.Duration != 0 {
			*dst = v.Duration
			o.markFromFile(f)
		}
	}
	setBool := func(f field, dst *bool, v bool) {
		if v {
			*dst = v
			o.markFromFile(f)
		}
	}
	setPrefixes := func(f field, dst *[]netip.Prefix, items []string, keywords bool) {
		if len(items) > 0 {
			good, bad, primary := parsePrefixes(items, keywords)
			*dst = good
			o.NodePortPrimary = o.NodePortPrimary || primary
			o.setBad(f, bad)
			o.markFromFile(f)
		}
	}

	setString(fKubeconfig, &o.Kubeconfig, cfg.ClientConnection.Kubeconfig)
	setString(fHostnameOverride, &o.HostnameOverride, cfg.HostnameOverride)
	setString(fScheduler, &o.Scheduler, cfg.IPVS.Scheduler)
	setDuration(fSyncPeriod, &o.SyncPeriod, cfg.IPVS.SyncPeriod)
	// kube-proxy does not default ipvs.minSyncPeriod in a file: "0s", as
	// kubeadm writes it, or no value at all is 0 there, and so here.
	o.MinSyncPeriod = cfg.IPVS.MinSyncPeriod.Duration
	o.markFromFile(fMinSyncPeriod)
	setBool(fStrictARP, &o.StrictARP, cfg.IPVS.StrictARP)
	setPrefixes(fExcludeCIDRs, &o.ExcludeCIDRs, cfg.IPVS.ExcludeCIDRs, false)
	setDuration(fTCPTimeout, &o.TCPTimeout, cfg.IPVS.TCPTimeout)
	setDuration(fTCPFinTimeout, &o.TCPFinTimeout, cfg.IPVS.TCPFinTimeout)
	setDuration(fUDPTimeout, &o.UDPTimeout, cfg.IPVS.UDPTimeout)
	setPrefixes(fNodePortAddresses, &o.NodePortAddresses, cfg.NodePortAddresses, true)
	if cfg.ClusterCIDR != "" {
		setPrefixes(fClusterCIDRs, &o.ClusterCIDRs, strings.Split(cfg.ClusterCIDR, ","), false)
	}
	// v1alpha1 has no top-level masqueradeAll; kube-proxy's IPVS mode reads
	// the iptables one (nftables.masqueradeAll is for nftables mode only).
	setBool(fMasqueradeAll, &o.MasqueradeAll, cfg.IPTables.MasqueradeAll)
	setBool(fProfiling, &o.Profiling, cfg.EnableProfiling)
	setString(fProxyMode, &o.ProxyMode, string(cfg.Mode))
	if len(cfg.FeatureGates) > 0 {
		o.FeatureGates = cfg.FeatureGates
		o.markFromFile(fFeatureGates)
	}
	if cfg.ClientConnection.QPS != 0 {
		o.KubeAPIQPS = cfg.ClientConnection.QPS
		o.markFromFile(fKubeAPIQPS)
	}
	if cfg.ClientConnection.Burst != 0 {
		o.KubeAPIBurst = cfg.ClientConnection.Burst
		o.markFromFile(fKubeAPIBurst)
	}
	setString(fDetectLocalMode, &o.DetectLocalMode, string(cfg.DetectLocalMode))
	setString(fPodBridgeInterface, &o.PodBridgeInterface, cfg.DetectLocal.BridgeInterface)
	setString(fPodInterfaceNamePrefix, &o.PodInterfaceNamePrefix, cfg.DetectLocal.InterfaceNamePrefix)
	setString(fBindAddress, &o.BindAddress, cfg.BindAddress)
	setBool(fBindAddressHardFail, &o.BindAddressHardFail, cfg.BindAddressHardFail)
	// Pointer fields: null is kube-proxy's default, an explicit 0 is 0.
	setInt32 := func(f field, dst *int32, v *int32) {
		if v != nil {
			*dst = *v
			o.markFromFile(f)
		}
	}
	setDurationPtr := func(f field, dst *time.Duration, v *metav1.Duration) {
		if v != nil {
			*dst = v.Duration
			o.markFromFile(f)
		}
	}
	setInt32(fOOMScoreAdj, &o.OOMScoreAdj, cfg.OOMScoreAdj)
	ct := cfg.Conntrack
	setInt32(fConntrackMaxPerCore, &o.Conntrack.MaxPerCore, ct.MaxPerCore)
	setInt32(fConntrackMin, &o.Conntrack.Min, ct.Min)
	setDurationPtr(fConntrackTCPEstablished, &o.Conntrack.TCPEstablishedTimeout, ct.TCPEstablishedTimeout)
	setDurationPtr(fConntrackTCPCloseWait, &o.Conntrack.TCPCloseWaitTimeout, ct.TCPCloseWaitTimeout)
	setBool(fConntrackTCPBeLiberal, &o.Conntrack.TCPBeLiberal, ct.TCPBeLiberal)
	setDuration(fConntrackUDPTimeout, &o.Conntrack.UDPTimeout, ct.UDPTimeout)
	setDuration(fConntrackUDPStreamTimeout, &o.Conntrack.UDPStreamTimeout, ct.UDPStreamTimeout)
	// As in kube-proxy, an IPv6 bindAddress makes the default servers IPv6.
	healthz, metrics := cfg.HealthzBindAddress, cfg.MetricsBindAddress
	if ip, err := netip.ParseAddr(cfg.BindAddress); err == nil && ip.Is6() && !ip.Is4In6() {
		healthz = cmp.Or(healthz, "[::]:"+healthzPort)
		metrics = cmp.Or(metrics, "[::1]:"+metricsPort)
	}
	setString(fHealthzBindAddress, &o.HealthzBindAddress, healthz)
	setString(fMetricsBindAddress, &o.MetricsBindAddress, metrics)
}

// LoadConfig reads a KubeProxyConfiguration file. warnings are its
// unknown and duplicate fields, which kube-proxy's lenient loader also
// accepts with a warning.
func LoadConfig(path string) (cfg *v1alpha1.KubeProxyConfiguration, warnings []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config file: %w", err)
	}
	cfg, warnings, err = DecodeConfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, warnings, nil
}

// DecodeConfig decodes a kubeproxy.config.k8s.io/v1alpha1
// KubeProxyConfiguration. Unknown and duplicate fields are not errors:
// each is one warning, so a typo is seen but does not stop the node's
// proxy, as with kube-proxy. Bad YAML and another kind are errors.
func DecodeConfig(data []byte) (*v1alpha1.KubeProxyConfiguration, []string, error) {
	var warnings []string
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		// Duplicate keys fail the strict conversion; the last one wins
		// in the lenient one, as in kube-proxy.
		warnings = append(warnings, err.Error())
		if j, err = yaml.YAMLToJSON(data); err != nil {
			return nil, nil, err
		}
	}
	cfg := &v1alpha1.KubeProxyConfiguration{}
	strictErrs, err := sigsjson.UnmarshalStrict(j, cfg)
	if err != nil {
		return nil, nil, err
	}
	if want := v1alpha1.SchemeGroupVersion.String(); cfg.APIVersion != want || cfg.Kind != configKind {
		return nil, nil, fmt.Errorf("apiVersion %q, kind %q: want apiVersion %q, kind %q", cfg.APIVersion, cfg.Kind, want, configKind)
	}
	for _, e := range strictErrs {
		warnings = append(warnings, e.Error())
	}
	return cfg, warnings, nil
}

// IgnoredFields lists, sorted, the fields of cfg that ipvs-proxy does not
// act on and that hold something other than zero or kube-proxy's default
// (nftables.syncPeriod, detectLocalMode, ...).
// Zero and default values are left out because kubeadm writes every
// field, and a list of all of them would hide the ones that matter.
func IgnoredFields(cfg *v1alpha1.KubeProxyConfiguration) []string {
	got := flatten(cfg)
	zero := flatten(&v1alpha1.KubeProxyConfiguration{})
	def := flatten(kubeProxyDefaults())
	var out []string
	for path, v := range got {
		if s, ok := settingOfField(path); path == "apiVersion" || path == "kind" || ok && s.Does != Warns {
			continue
		}
		if v == zero[path] || v == def[path] || slices.Contains(alsoDefault[path], v) {
			continue
		}
		out = append(out, path)
	}
	slices.Sort(out)
	return out
}

// kubeProxyDefaults is kube-proxy's defaulting (k8s.io/kubernetes pkg/proxy/apis/config/v1alpha1/defaults.go).
func kubeProxyDefaults() *v1alpha1.KubeProxyConfiguration {
	i32 := func(v int32) *int32 { return &v }
	yes := true
	c := &v1alpha1.KubeProxyConfiguration{
		BindAddress:      "0.0.0.0",
		ConfigSyncPeriod: metav1.Duration{Duration: 15 * time.Minute},
		DetectLocalMode:  "ClusterCIDR",
		OOMScoreAdj:      i32(-999),
		IPTables: v1alpha1.KubeProxyIPTablesConfiguration{
			MasqueradeBit:      i32(14),
			LocalhostNodePorts: &yes,
			SyncPeriod:         metav1.Duration{Duration: 30 * time.Second},
			MinSyncPeriod:      metav1.Duration{Duration: time.Second},
		},
		NFTables: v1alpha1.KubeProxyNFTablesConfiguration{
			MasqueradeBit: i32(14),
			SyncPeriod:    metav1.Duration{Duration: 30 * time.Second},
			MinSyncPeriod: metav1.Duration{Duration: time.Second},
		},
		Conntrack: v1alpha1.KubeProxyConntrackConfiguration{
			MaxPerCore:            i32(32 * 1024),
			Min:                   i32(128 * 1024),
			TCPEstablishedTimeout: &metav1.Duration{Duration: 24 * time.Hour},
			TCPCloseWaitTimeout:   &metav1.Duration{Duration: time.Hour},
		},
	}
	c.ClientConnection.ContentType = "application/vnd.kubernetes.protobuf"
	c.ClientConnection.QPS = 5
	c.ClientConnection.Burst = 10
	logsapi.SetRecommendedLoggingConfiguration(&c.Logging)
	return c
}

// alsoDefault are defaults that depend on the node: kubeadm writes "::"
// as bindAddress on IPv6 clusters.
var alsoDefault = map[string][]string{"bindAddress": {`"::"`}}

// flatten maps each leaf of cfg's JSON form to its JSON text, keyed by the
// dotted path a user writes in the file ("ipvs.syncPeriod").
func flatten(cfg *v1alpha1.KubeProxyConfiguration) map[string]string {
	out := map[string]string{}
	b, err := json.Marshal(cfg)
	if err != nil {
		return out // cannot happen: the type marshals
	}
	var tree map[string]any
	if err := json.Unmarshal(b, &tree); err != nil {
		return out
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, child := range m {
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(k, child)
			}
			return
		}
		leaf, _ := json.Marshal(v)
		out[prefix] = string(leaf)
	}
	walk("", tree)
	return out
}

// KubeProxyConfiguration is the configuration in effect, as a file for
// --config: kube-proxy's defaults with ipvs-proxy's settings over them
// (--write-config-to).
func (o *Options) KubeProxyConfiguration() *v1alpha1.KubeProxyConfiguration {
	c := kubeProxyDefaults()
	c.APIVersion, c.Kind = v1alpha1.SchemeGroupVersion.String(), configKind
	c.Mode = "ipvs"
	dur := func(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }
	strs := func(ps []netip.Prefix) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.String())
		}
		return out
	}
	c.FeatureGates = o.FeatureGates
	c.ClientConnection.Kubeconfig = o.Kubeconfig
	c.ClientConnection.QPS, c.ClientConnection.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	c.Logging = *o.Logging
	c.HostnameOverride = o.HostnameOverride
	c.BindAddress = cmp.Or(o.BindAddress, c.BindAddress)
	c.HealthzBindAddress, c.MetricsBindAddress = o.HealthzBindAddress, o.MetricsBindAddress
	c.BindAddressHardFail = o.BindAddressHardFail
	c.EnableProfiling = o.Profiling
	c.IPTables.MasqueradeAll = o.MasqueradeAll
	c.IPVS = v1alpha1.KubeProxyIPVSConfiguration{
		SyncPeriod: dur(o.SyncPeriod), MinSyncPeriod: dur(o.MinSyncPeriod), Scheduler: o.Scheduler,
		ExcludeCIDRs: strs(o.ExcludeCIDRs), StrictARP: o.StrictARP,
		TCPTimeout: dur(o.TCPTimeout), TCPFinTimeout: dur(o.TCPFinTimeout), UDPTimeout: dur(o.UDPTimeout),
	}
	c.ClusterCIDR = joinPrefixes(o.ClusterCIDRs)
	c.DetectLocalMode = v1alpha1.LocalMode(o.DetectLocalMode)
	c.DetectLocal.BridgeInterface, c.DetectLocal.InterfaceNamePrefix = o.PodBridgeInterface, o.PodInterfaceNamePrefix
	c.NodePortAddresses = strs(o.NodePortAddresses)
	if o.NodePortPrimary {
		c.NodePortAddresses = append(c.NodePortAddresses, "primary")
	}
	oom := o.OOMScoreAdj
	c.OOMScoreAdj = &oom
	ct := o.Conntrack
	tcpEst, tcpCW := dur(ct.TCPEstablishedTimeout), dur(ct.TCPCloseWaitTimeout)
	c.Conntrack = v1alpha1.KubeProxyConntrackConfiguration{
		MaxPerCore: &ct.MaxPerCore, Min: &ct.Min,
		TCPEstablishedTimeout: &tcpEst, TCPCloseWaitTimeout: &tcpCW, TCPBeLiberal: ct.TCPBeLiberal,
		UDPTimeout: dur(ct.UDPTimeout), UDPStreamTimeout: dur(ct.UDPStreamTimeout),
	}
	return c
}
