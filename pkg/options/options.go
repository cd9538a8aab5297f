// Package options holds the settings of `ipvs-proxy run`. The flag names are
// kube-proxy's (--ipvs-scheduler, --nodeport-addresses, ...) and --config
// reads kube-proxy's KubeProxyConfiguration file, so ipvs-proxy can replace
// the kube-proxy DaemonSet without changing its arguments or ConfigMap.
//
// Use: NewOptions, AddFlags, parse the flags, Complete, Validate.
// Flags given on the command line win over the file. Every flag and field
// of kube-proxy v1.37 is accepted; KubeProxySettings says what each does.
package options

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json and its flags
)

// Defaults. SyncPeriod and the bind addresses are kube-proxy's.
//
// MinSyncPeriod is 0 whichever way ipvs-proxy is started. kube-proxy's IPVS
// mode differs by path: started with flags only it takes 1s, so a change
// that comes right after a sync waits up to a second; started with a
// --config file (as kubeadm starts it) it takes the file's
// ipvs.minSyncPeriod, which kube-proxy does not default, so kubeadm's "0s"
// (or no value) means 0 and every change syncs at once. ipvs-proxy reads
// the file the same way, and takes a flag or file value as the same
// end-to-start gap kube-proxy does.
//
// What kube-proxy's 1s buys, a bounded CPU under a storm of changes, comes
// here from SyncCPUShare instead, which spaces syncs only while changes
// keep coming (see runner.Limits): one endpoint change costs milliseconds
// of sync, so a gap in front of every change would be nearly all of its
// latency.
const (
	DefaultScheduler                  = "rr"
	DefaultSyncPeriod                 = 30 * time.Second
	DefaultMinSyncPeriod              = 0
	DefaultSyncCPUShare               = 0.5
	DefaultHealthzBindAddress         = "0.0.0.0:10256"
	DefaultMetricsBindAddress         = "127.0.0.1:10249"
	DefaultGracefulTerminationTimeout = 60 * time.Second
	// DefaultMaxVirtualServersPerService is far above real use (a Service
	// with 10 ports on 3 addresses and 30 node IPs has 330) and far below
	// what would slow the node (100 ports x 1,000 externalIPs is 100,100).
	DefaultMaxVirtualServersPerService = 1000
	// DefaultOOMScoreAdj is kube-proxy's (qos.KubeProxyOOMScoreAdj).
	DefaultOOMScoreAdj = -999

	healthzPort = "10256"
	metricsPort = "10249"
)

// Options are the settings of `ipvs-proxy run`.
type Options struct {
	// ConfigFile is a KubeProxyConfiguration (--config); see Complete.
	ConfigFile string

	Kubeconfig       string
	Master           string
	HostnameOverride string

	// Scheduler is the IPVS scheduler for Services without an annotation.
	Scheduler string
	// SyncPeriod is how often everything is listed and repaired;
	// MinSyncPeriod is the least time from the end of one sync to the start
	// of the next, under any load (see DefaultMinSyncPeriod).
	SyncPeriod, MinSyncPeriod time.Duration
	// SyncCPUShare is the most of one CPU the sync loop may use while
	// changes keep coming; a change after a quiet spell always syncs at
	// once. 1 turns the bound off (ipvs-proxy's own).
	SyncCPUShare float64
	// StrictARP sets arp_ignore=1 and arp_announce=2 so the node does not
	// answer ARP for the VIPs on the dummy interface (MetalLB L2 needs it).
	StrictARP bool
	// ExcludeCIDRs are virtual server addresses ipvs-proxy never deletes.
	ExcludeCIDRs []netip.Prefix
	// IPVS connection timeouts; 0 leaves the kernel's value.
	TCPTimeout, TCPFinTimeout, UDPTimeout time.Duration
	// NodePortAddresses restricts NodePorts to node addresses inside these
	// prefixes; empty means every usable address.
	NodePortAddresses []netip.Prefix
	// NodePortPrimary is kube-proxy's keyword "primary" in the list: the
	// Node's primary IPs (model.PrimaryNodeIPs) join NodePortAddresses
	// once the Node has been read.
	NodePortPrimary bool
	// DetectLocalMode says how Service traffic from this node's pods is told
	// apart (kube-proxy's --detect-local-mode): ClusterCIDR, NodeCIDR,
	// BridgeInterface or InterfaceNamePrefix. That traffic keeps its
	// source; other traffic to a clusterIP is masqueraded.
	DetectLocalMode                            string
	PodBridgeInterface, PodInterfaceNamePrefix string
	// ClusterCIDRs are the pod ranges, at most one per IP family.
	ClusterCIDRs  []netip.Prefix
	MasqueradeAll bool

	HealthzBindAddress string
	MetricsBindAddress string
	// Profiling serves Go's pprof under /debug/pprof/ on the metrics server,
	// and /debug/flags/v, which sets the log verbosity, as kube-proxy does.
	Profiling bool

	// StateFile, if set, keeps the ownership record in a file instead of
	// the kernel sets (ipvs-proxy's own; kube-proxy has no such record).
	StateFile string
	// GracefulTerminationTimeout is how long a removed real server keeps
	// weight 0 while it still has connections (ipvs-proxy's own).
	GracefulTerminationTimeout time.Duration
	// CleanupKubeProxy removes kube-proxy's iptables chains and ipsets once
	// the first sync has programmed the node (ipvs-proxy only).
	CleanupKubeProxy bool
	// MaxVirtualServersPerService caps one Service's virtual servers, so
	// that one tenant cannot fill the node's IPVS table (ipvs-proxy only).
	MaxVirtualServersPerService int
	// ServiceCIDRs are the cluster's Service ranges (kube-apiserver's
	// --service-cluster-ip-range): an externalIP or LoadBalancer IP inside
	// them that is not the Service's own clusterIP is refused (ipvs-proxy
	// only; empty skips that check).
	ServiceCIDRs       []netip.Prefix
	serviceCIDRStrings []string

	// ProxyMode is kube-proxy's mode; Validate accepts only "ipvs" and "".
	ProxyMode string
	// FeatureGates are kube-proxy's feature gates as given; the logging
	// ones take effect through LoggingFeatureGate.
	FeatureGates map[string]bool
	// AllowExternalIPs is the AllowServiceExternalIPs gate (default true):
	// false means Services' spec.externalIPs are not programmed.
	AllowExternalIPs bool
	// KubeAPIQPS and KubeAPIBurst limit requests to the API server; 0
	// means ipvs-proxy's defaults, and a negative QPS no limit.
	KubeAPIQPS   float32
	KubeAPIBurst int32
	// BindAddress overrides the node's primary IP, as in kube-proxy.
	BindAddress string
	// BindAddressHardFail makes a server that cannot listen fatal.
	BindAddressHardFail bool
	// OOMScoreAdj is written to /proc/self/oom_score_adj at start.
	OOMScoreAdj int32
	// Conntrack is kube-proxy's conntrack configuration.
	Conntrack sysctl.Conntrack
	// Logging is component-base's logging configuration (-v, --logging-format, ...).
	Logging *logsapi.LoggingConfiguration

	// WriteConfigTo, InitOnly and Cleanup make `run` do one thing and
	// exit, as the kube-proxy flags of the same names do.
	WriteConfigTo string
	InitOnly      bool
	Cleanup       bool

	// Warnings are the lines Complete wants logged once logging is set up:
	// kube-proxy settings given that ipvs-proxy does not act on.
	Warnings []string

	healthzPort, metricsPort int32
	ignored                  ignoredFlags

	// fromFile marks the fields Complete took from ConfigFile, so that
	// Validate names the file field rather than a flag nobody gave.
	fromFile map[field]bool
	// badCIDRs holds the list items that did not parse, per field, so that
	// Validate reports every one of them instead of failing on the first.
	badCIDRs map[field][]badValue
}

type badValue struct{ value, why string }

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Scheduler:                   DefaultScheduler,
		SyncPeriod:                  DefaultSyncPeriod,
		MinSyncPeriod:               DefaultMinSyncPeriod,
		SyncCPUShare:                DefaultSyncCPUShare,
		HealthzBindAddress:          DefaultHealthzBindAddress,
		MetricsBindAddress:          DefaultMetricsBindAddress,
		GracefulTerminationTimeout:  DefaultGracefulTerminationTimeout,
		CleanupKubeProxy:            true,
		DetectLocalMode:             "ClusterCIDR",
		MaxVirtualServersPerService: DefaultMaxVirtualServersPerService,
		AllowExternalIPs:            true,
		OOMScoreAdj:                 DefaultOOMScoreAdj,
		Conntrack:                   sysctl.DefaultConntrack(),
		Logging:                     logsapi.NewLoggingConfiguration(),
		healthzPort:                 10256,
		metricsPort:                 10249,
	}
}

// AddFlags registers kube-proxy's flag names, bound to o.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	// kube-proxy's normalization: --ipvs_scheduler is --ipvs-scheduler.
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile,
		"Path to a KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1), such as config.conf from kubeadm's kube-proxy ConfigMap. Flags given on the command line override it; fields that do not apply to ipvs-proxy are logged and ignored.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig file with the API server address and credentials. Empty means the in-cluster service account.")
	fs.StringVar(&o.Master, "master", o.Master,
		"Address of the Kubernetes API server; overrides the server in the kubeconfig.")
	fs.StringVar(&o.HostnameOverride, "hostname-override", o.HostnameOverride,
		"Name of the Node this proxy runs on. Empty means the host name, lowercased.")

	fs.StringVar(&o.Scheduler, "ipvs-scheduler", o.Scheduler,
		"IPVS scheduler for Services that do not choose one (annotation ipvs-proxy.io/scheduler): any the kernel offers, e.g. rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos.")
	fs.DurationVar(&o.SyncPeriod, "ipvs-sync-period", o.SyncPeriod,
		"How often to list the whole IPVS table and repair any drift (e.g. '30s', '1m'). Must be greater than 0.")
	fs.DurationVar(&o.MinSyncPeriod, "ipvs-min-sync-period", o.MinSyncPeriod,
		"Least time from the end of one sync to the start of the next, whatever the load (e.g. '1s', kube-proxy's default when started without --config). 0, the default, syncs a change at once; changes that arrive during a sync are served together by the next. Must be at least 0 and at most --ipvs-sync-period.")
	fs.Float64Var(&o.SyncCPUShare, "sync-cpu-share", o.SyncCPUShare,
		"Most of one CPU the sync loop may use while changes keep coming (0.5: half a core): syncs are spaced only after a rested loop has run about 4 s of them back to back, so a change after a quiet spell always syncs at once. 1 turns the bound off (ipvs-proxy only).")
	fs.BoolVar(&o.StrictARP, "ipvs-strict-arp", o.StrictARP,
		"Set net.ipv4.conf.all.arp_ignore=1 and arp_announce=2, so the node does not answer ARP for Service IPs (needed by MetalLB in L2 mode).")
	fs.Var(o.prefixFlag(fExcludeCIDRs, &o.ExcludeCIDRs, false), "ipvs-exclude-cidrs",
		"Comma-separated CIDRs whose IPVS virtual servers ipvs-proxy must never delete, e.g. ones made by another tool.")
	fs.DurationVar(&o.TCPTimeout, "ipvs-tcp-timeout", o.TCPTimeout,
		"Timeout for idle IPVS TCP connections (e.g. '900s'); 0 leaves the kernel's value.")
	fs.DurationVar(&o.TCPFinTimeout, "ipvs-tcpfin-timeout", o.TCPFinTimeout,
		"Timeout for IPVS TCP connections after a FIN (e.g. '120s'); 0 leaves the kernel's value.")
	fs.DurationVar(&o.UDPTimeout, "ipvs-udp-timeout", o.UDPTimeout,
		"Timeout for IPVS UDP flows (e.g. '300s'); 0 leaves the kernel's value.")

	fs.Var(o.prefixFlag(fNodePortAddresses, &o.NodePortAddresses, true), "nodeport-addresses",
		"Comma-separated CIDRs and keywords: NodePorts listen only on node addresses inside them. Keywords: 'primary' (the Node's primary IPv4 and IPv6 addresses, or --bind-address), 'all', 'localhost' (loopback NodePorts are never served in IPVS mode). An IP family with no CIDR in the list gets every address, as in kube-proxy. Empty means every node address.")
	fs.Var(o.prefixFlag(fClusterCIDRs, &o.ClusterCIDRs, false), "cluster-cidr",
		"The pods' CIDR range; for dual-stack, one IPv4 and one IPv6 CIDR separated by a comma.")
	fs.BoolVar(&o.MasqueradeAll, "masquerade-all", o.MasqueradeAll,
		"SNAT all traffic sent to Service IPs, not only traffic from outside the cluster CIDR. Some CNI plugins need it.")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling,
		"Serve Go's profiling handlers under /debug/pprof/ on the metrics server, and /debug/flags/v, where a PUT of a number sets the log verbosity.")
	fs.StringVar(&o.HealthzBindAddress, "healthz-bind-address", o.HealthzBindAddress,
		"IP:port of the health check server. An IP alone gets port "+healthzPort+".")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"IP:port of the metrics server; '0.0.0.0:"+metricsPort+"' serves on every interface. An IP alone gets port "+metricsPort+".")

	fs.StringVar(&o.StateFile, "state-file", o.StateFile,
		"A file for ipvs-proxy's record of the virtual servers it made on node addresses, instead of the kernel ipsets IPVS-PROXY-OWNED and IPVS-PROXY-OWNED6 (the default, which need no volume); it must outlive the proxy's container (ipvs-proxy only).")
	fs.DurationVar(&o.GracefulTerminationTimeout, "graceful-termination-timeout", o.GracefulTerminationTimeout,
		"How long a removed endpoint keeps weight 0 while it still has connections, before it is deleted; 0 deletes at once (ipvs-proxy only).")

	fs.BoolVar(&o.CleanupKubeProxy, "cleanup-kube-proxy-rules", o.CleanupKubeProxy,
		"After the first sync, remove the iptables chains and ipsets kube-proxy left behind (never IPVS state: ipvs-proxy adopts what its Services want). Set to false while kube-proxy still runs on the node (ipvs-proxy only).")

	fs.IntVar(&o.MaxVirtualServersPerService, "max-virtual-servers-per-service", o.MaxVirtualServersPerService,
		"Most IPVS virtual servers one Service may have; past it, externalIPs and LoadBalancer IPs are left out first, with an Event. 0 means no cap (ipvs-proxy only).")
	fs.StringVar(&o.DetectLocalMode, "detect-local-mode", o.DetectLocalMode,
		"How Service traffic from this node's pods is told apart (it keeps its source; other traffic to a clusterIP is masqueraded): ClusterCIDR (--cluster-cidr), NodeCIDR (the Node's podCIDRs), BridgeInterface (--pod-bridge-interface) or InterfaceNamePrefix (--pod-interface-name-prefix).")
	fs.StringVar(&o.PodBridgeInterface, "pod-bridge-interface", o.PodBridgeInterface,
		"The bridge the pods are on, for --detect-local-mode=BridgeInterface.")
	fs.StringVar(&o.PodInterfaceNamePrefix, "pod-interface-name-prefix", o.PodInterfaceNamePrefix,
		"The name prefix of the pods' host-side interfaces, for --detect-local-mode=InterfaceNamePrefix.")
	fs.StringSliceVar(&o.serviceCIDRStrings, "service-cluster-ip-range", nil,
		"The cluster's Service CIDRs, as given to kube-apiserver: an externalIP or LoadBalancer IP inside them that is not the Service's own clusterIP is refused. Empty skips this check (ipvs-proxy only).")

	fs.StringVar(&o.ProxyMode, "proxy-mode", o.ProxyMode,
		"kube-proxy's proxy mode: only 'ipvs' (or empty) is valid; ipvs-proxy always programs IPVS.")
	fs.Var(cliflag.NewMapStringBool(&o.FeatureGates), "feature-gates",
		"kube-proxy's feature gates, key=value pairs. ipvs-proxy acts on AllowServiceExternalIPs (default true) and on the logging gates (LoggingAlphaOptions, LoggingBetaOptions, ContextualLogging); others are accepted and logged.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS,
		"Requests per second to the API server (Event writes and the first lists); 0 means 50, a negative value no limit.")
	fs.Int32Var(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst,
		"Burst of requests to the API server; 0 means 100.")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress,
		"The node's primary IP, as in kube-proxy (it binds nothing): used for --nodeport-addresses=primary. In a config file (bindAddress), an IPv6 address also makes the default health and metrics addresses IPv6; the flag does not, as in kube-proxy.")
	fs.BoolVar(&o.BindAddressHardFail, "bind-address-hard-fail", o.BindAddressHardFail,
		"Stop if the health check or metrics server cannot listen; otherwise the server tries again every 5s, as kube-proxy's.")
	fs.Int32Var(&o.OOMScoreAdj, "oom-score-adj", o.OOMScoreAdj,
		"The oom_score_adj of the ipvs-proxy process, from -1000 to 1000.")
	fs.Int32Var(&o.healthzPort, "healthz-port", o.healthzPort, "Port of the health check server; 0 turns it off.")
	_ = fs.MarkDeprecated("healthz-port", "use --healthz-bind-address instead")
	fs.Int32Var(&o.metricsPort, "metrics-port", o.metricsPort, "Port of the metrics server; 0 turns it off.")
	_ = fs.MarkDeprecated("metrics-port", "use --metrics-bind-address instead")
	fs.StringVar(&o.WriteConfigTo, "write-config-to", o.WriteConfigTo,
		"Write the configuration in effect to this file as a KubeProxyConfiguration, and exit.")
	fs.BoolVar(&o.InitOnly, "init-only", o.InitOnly,
		"Apply the sysctls, conntrack settings and IPVS timeouts (what needs full root privileges), and exit.")
	fs.BoolVar(&o.Cleanup, "cleanup", o.Cleanup,
		"Remove what ipvs-proxy and kube-proxy made, as 'ipvs-proxy cleanup --kube-proxy' does, and exit.")
	o.addConntrackFlags(fs)
	o.addIgnoredFlags(fs)
	logsapi.AddFlags(o.Logging, fs)
}

// NodeName is the name of this node's Node object: --hostname-override, or
// else the host name, lowercased and trimmed as kube-proxy does.
func (o *Options) NodeName() (string, error) {
	name := o.HostnameOverride
	if strings.TrimSpace(name) == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("get host name (set --hostname-override instead): %w", err)
		}
		name = h
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return "", fmt.Errorf("empty host name: set --hostname-override")
	}
	return name, nil
}
