// Package options holds the settings of `ipvs-proxy run`. The flag names are
// kube-proxy's (--ipvs-scheduler, --nodeport-addresses, ...) and --config
// reads kube-proxy's KubeProxyConfiguration file, so ipvs-proxy can replace
// the kube-proxy DaemonSet without changing its arguments or ConfigMap.
//
// Use: NewOptions, AddFlags, parse the flags, Complete, Validate.
// Flags given on the command line win over the file, as in kube-proxy.
// The shorter names some early issues used (--scheduler, --sync-period,
// --strict-arp, ...) are accepted as hidden aliases of kube-proxy's names.
package options

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
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
	DefaultStateFile                  = "/run/ipvs-proxy/owned"
	DefaultGracefulTerminationTimeout = 60 * time.Second

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
	// ClusterCIDRs are the pod ranges, at most one per IP family.
	ClusterCIDRs  []netip.Prefix
	MasqueradeAll bool

	HealthzBindAddress string
	MetricsBindAddress string
	// Profiling serves Go's pprof under /debug/pprof/ on the metrics server.
	Profiling bool

	// StateFile records the kernel objects ipvs-proxy made, so a restart
	// deletes only those (ipvs-proxy's own; kube-proxy has no such file).
	StateFile string
	// GracefulTerminationTimeout is how long a removed real server keeps
	// weight 0 while it still has connections (ipvs-proxy's own).
	GracefulTerminationTimeout time.Duration
	// CleanupKubeProxy removes kube-proxy's iptables chains and ipsets once
	// the first sync has programmed the node (ipvs-proxy only).
	CleanupKubeProxy bool

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
		Scheduler:                  DefaultScheduler,
		SyncPeriod:                 DefaultSyncPeriod,
		MinSyncPeriod:              DefaultMinSyncPeriod,
		SyncCPUShare:               DefaultSyncCPUShare,
		HealthzBindAddress:         DefaultHealthzBindAddress,
		MetricsBindAddress:         DefaultMetricsBindAddress,
		StateFile:                  DefaultStateFile,
		GracefulTerminationTimeout: DefaultGracefulTerminationTimeout,
		CleanupKubeProxy:           true,
	}
}

// AddFlags registers kube-proxy's flag names, bound to o.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile,
		"Path to a KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1), such as config.conf from kubeadm's kube-proxy ConfigMap. Flags given on the command line override it; fields that do not apply to ipvs-proxy are logged and ignored.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig file with the API server address and credentials. Empty means the in-cluster service account.")
	fs.StringVar(&o.Master, "master", o.Master,
		"Address of the Kubernetes API server; overrides the server in the kubeconfig.")
	fs.StringVar(&o.HostnameOverride, "hostname-override", o.HostnameOverride,
		"Name of the Node this proxy runs on. Empty means the host name, lowercased.")

	fs.StringVar(&o.Scheduler, "ipvs-scheduler", o.Scheduler,
		"IPVS scheduler for Services that do not choose one: rr, lc, sh, wrr or mh.")
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
		"Comma-separated CIDRs: NodePorts listen only on node addresses inside them. Also accepts kube-proxy's keywords 'all' and 'localhost' (loopback NodePorts are never served in IPVS mode), not 'primary'. Empty means every node address.")
	fs.Var(o.prefixFlag(fClusterCIDRs, &o.ClusterCIDRs, false), "cluster-cidr",
		"The pods' CIDR range; for dual-stack, one IPv4 and one IPv6 CIDR separated by a comma.")
	fs.BoolVar(&o.MasqueradeAll, "masquerade-all", o.MasqueradeAll,
		"SNAT all traffic sent to Service IPs, not only traffic from outside the cluster CIDR. Some CNI plugins need it.")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling,
		"Serve Go's profiling handlers under /debug/pprof/ on the metrics server.")
	fs.StringVar(&o.HealthzBindAddress, "healthz-bind-address", o.HealthzBindAddress,
		"IP:port of the health check server. An IP alone gets port "+healthzPort+".")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"IP:port of the metrics server; '0.0.0.0:"+metricsPort+"' serves on every interface. An IP alone gets port "+metricsPort+".")

	fs.StringVar(&o.StateFile, "state-file", o.StateFile,
		"File where ipvs-proxy records the kernel objects it made, so a restart cleans up only those (ipvs-proxy only).")
	fs.DurationVar(&o.GracefulTerminationTimeout, "graceful-termination-timeout", o.GracefulTerminationTimeout,
		"How long a removed endpoint keeps weight 0 while it still has connections, before it is deleted; 0 deletes at once (ipvs-proxy only).")

	fs.BoolVar(&o.CleanupKubeProxy, "cleanup-kube-proxy-rules", o.CleanupKubeProxy,
		"After the first sync, remove the iptables chains and ipsets kube-proxy left behind (never IPVS state: ipvs-proxy adopts what its Services want). Set to false while kube-proxy still runs on the node (ipvs-proxy only).")

	// Hidden aliases bound to the same variables: the names early issues used.
	alias := func(name string) { _ = fs.MarkHidden(name) }
	fs.StringVar(&o.Scheduler, "scheduler", o.Scheduler, "Alias of --ipvs-scheduler.")
	alias("scheduler")
	fs.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod, "Alias of --ipvs-sync-period.")
	alias("sync-period")
	fs.DurationVar(&o.MinSyncPeriod, "min-sync-period", o.MinSyncPeriod, "Alias of --ipvs-min-sync-period.")
	alias("min-sync-period")
	fs.BoolVar(&o.StrictARP, "strict-arp", o.StrictARP, "Alias of --ipvs-strict-arp.")
	alias("strict-arp")
	fs.Var(fs.Lookup("ipvs-exclude-cidrs").Value, "exclude-cidrs", "Alias of --ipvs-exclude-cidrs.")
	alias("exclude-cidrs")
	fs.DurationVar(&o.TCPTimeout, "tcp-timeout", o.TCPTimeout, "Alias of --ipvs-tcp-timeout.")
	alias("tcp-timeout")
	fs.DurationVar(&o.TCPFinTimeout, "tcpfin-timeout", o.TCPFinTimeout, "Alias of --ipvs-tcpfin-timeout.")
	alias("tcpfin-timeout")
	fs.DurationVar(&o.UDPTimeout, "udp-timeout", o.UDPTimeout, "Alias of --ipvs-udp-timeout.")
	alias("udp-timeout")
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
