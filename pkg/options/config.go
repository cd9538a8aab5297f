package options

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const configKind = "KubeProxyConfiguration"

// Complete fills in what parsing the flags cannot: it loads ConfigFile if
// set, keeping the value of every flag given on the command line (flags
// win over the file, as in kube-proxy), and turns kube-proxy's shorthand
// values into full ones (empty scheduler is rr, a bind address without a
// port gets the default port). Call it after fs.Parse, before Validate.
func (o *Options) Complete(fs *pflag.FlagSet) error {
	if o.ConfigFile != "" {
		cfg, err := LoadConfig(o.ConfigFile)
		if err != nil {
			return err
		}
		logger := klog.Background()
		if cfg.Mode != "" && cfg.Mode != "ipvs" {
			logger.Info("ipvs-proxy always programs IPVS; ignoring the config file's mode", "file", o.ConfigFile, "mode", cfg.Mode)
		}
		if ignored := IgnoredFields(cfg); len(ignored) > 0 {
			logger.Info("Ignoring config file fields that do not apply to ipvs-proxy", "file", o.ConfigFile, "fields", strings.Join(ignored, ", "))
		}

		file := NewOptions()
		file.ConfigFile = o.ConfigFile
		file.applyConfig(cfg)
		for f, info := range fields {
			if !file.fromFile[f] || flagGiven(fs, info.flags) {
				continue
			}
			info.copy(o, file)
			o.setBad(f, file.badCIDRs[f])
			o.markFromFile(f)
		}
	}

	if o.Scheduler == "" {
		o.Scheduler = DefaultScheduler
	}
	o.HealthzBindAddress = withPort(o.HealthzBindAddress, DefaultHealthzBindAddress, healthzPort)
	o.MetricsBindAddress = withPort(o.MetricsBindAddress, DefaultMetricsBindAddress, metricsPort)
	return nil
}

func flagGiven(fs *pflag.FlagSet, names []string) bool {
	return slices.ContainsFunc(names, fs.Changed)
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
			good, bad := parsePrefixes(items, keywords)
			*dst = good
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
	// As in kube-proxy, an IPv6 bindAddress makes the default servers IPv6.
	healthz, metrics := cfg.HealthzBindAddress, cfg.MetricsBindAddress
	if ip, err := netip.ParseAddr(cfg.BindAddress); err == nil && ip.Is6() && !ip.Is4In6() {
		healthz = cmp.Or(healthz, "[::]:"+healthzPort)
		metrics = cmp.Or(metrics, "[::1]:"+metricsPort)
	}
	setString(fHealthzBindAddress, &o.HealthzBindAddress, healthz)
	setString(fMetricsBindAddress, &o.MetricsBindAddress, metrics)
}

// LoadConfig reads a KubeProxyConfiguration file.
func LoadConfig(path string) (*v1alpha1.KubeProxyConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	cfg, err := DecodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// DecodeConfig decodes a kubeproxy.config.k8s.io/v1alpha1
// KubeProxyConfiguration. It is strict: unknown and duplicate fields are
// errors that name every one of them, so a typo is not silently ignored.
// (kube-proxy itself falls back to lenient decoding with a warning.)
func DecodeConfig(data []byte) (*v1alpha1.KubeProxyConfiguration, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	cfg := &v1alpha1.KubeProxyConfiguration{}
	strictErrs, err := sigsjson.UnmarshalStrict(j, cfg)
	if err != nil {
		return nil, err
	}
	if want := v1alpha1.SchemeGroupVersion.String(); cfg.APIVersion != want || cfg.Kind != configKind {
		return nil, fmt.Errorf("apiVersion %q, kind %q: want apiVersion %q, kind %q", cfg.APIVersion, cfg.Kind, want, configKind)
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return nil, errors.New(strings.Join(msgs, ", "))
	}
	return cfg, nil
}

// IgnoredFields lists, sorted, the fields of cfg that ipvs-proxy does not
// use and that hold something other than zero or kube-proxy's default
// (conntrack.maxPerCore, featureGates.X, nftables.syncPeriod, ...).
// Zero and default values are left out because kubeadm writes every
// field, and a list of all of them would hide the ones that matter.
func IgnoredFields(cfg *v1alpha1.KubeProxyConfiguration) []string {
	used := map[string]bool{"apiVersion": true, "kind": true, "mode": true}
	for _, info := range fields {
		used[info.file] = true
	}
	got := flatten(cfg)
	zero := flatten(&v1alpha1.KubeProxyConfiguration{})
	def := flatten(kubeProxyDefaults())
	var out []string
	for path, v := range got {
		if used[path] || v == zero[path] || v == def[path] || slices.Contains(alsoDefault[path], v) {
			continue
		}
		out = append(out, path)
	}
	slices.Sort(out)
	return out
}

// kubeProxyDefaults is kube-proxy's defaulting of the fields ipvs-proxy
// ignores (k8s.io/kubernetes pkg/proxy/apis/config/v1alpha1/defaults.go).
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
