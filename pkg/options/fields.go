package options

import "fmt"

// field names one Options field that a flag and the config file can both
// set. The table below is what lets Complete make flags win over the file
// and Validate name the source of a bad value.
type field int

const (
	fKubeconfig field = iota
	fHostnameOverride
	fScheduler
	fSyncPeriod
	fMinSyncPeriod
	fStrictARP
	fExcludeCIDRs
	fTCPTimeout
	fTCPFinTimeout
	fUDPTimeout
	fNodePortAddresses
	fClusterCIDRs
	fMasqueradeAll
	fHealthzBindAddress
	fMetricsBindAddress
	fProfiling
	fProxyMode
	fFeatureGates
	fKubeAPIQPS
	fKubeAPIBurst
	fBindAddress
	fBindAddressHardFail
	fOOMScoreAdj
	fConntrackMaxPerCore
	fConntrackMin
	fConntrackTCPEstablished
	fConntrackTCPCloseWait
	fConntrackTCPBeLiberal
	fConntrackUDPTimeout
	fConntrackUDPStreamTimeout
	fDetectLocalMode
	fPodBridgeInterface
	fPodInterfaceNamePrefix
)

type fieldInfo struct {
	flag string // kube-proxy's name
	file string // path in KubeProxyConfiguration
	copy func(dst, src *Options)
}

var fields = map[field]fieldInfo{
	fKubeconfig: {"kubeconfig", "clientConnection.kubeconfig",
		func(d, s *Options) { d.Kubeconfig = s.Kubeconfig }},
	fHostnameOverride: {"hostname-override", "hostnameOverride",
		func(d, s *Options) { d.HostnameOverride = s.HostnameOverride }},
	fScheduler: {"ipvs-scheduler", "ipvs.scheduler",
		func(d, s *Options) { d.Scheduler = s.Scheduler }},
	fSyncPeriod: {"ipvs-sync-period", "ipvs.syncPeriod",
		func(d, s *Options) { d.SyncPeriod = s.SyncPeriod }},
	fMinSyncPeriod: {"ipvs-min-sync-period", "ipvs.minSyncPeriod",
		func(d, s *Options) { d.MinSyncPeriod = s.MinSyncPeriod }},
	fStrictARP: {"ipvs-strict-arp", "ipvs.strictARP",
		func(d, s *Options) { d.StrictARP = s.StrictARP }},
	fExcludeCIDRs: {"ipvs-exclude-cidrs", "ipvs.excludeCIDRs",
		func(d, s *Options) { d.ExcludeCIDRs = s.ExcludeCIDRs }},
	fTCPTimeout: {"ipvs-tcp-timeout", "ipvs.tcpTimeout",
		func(d, s *Options) { d.TCPTimeout = s.TCPTimeout }},
	fTCPFinTimeout: {"ipvs-tcpfin-timeout", "ipvs.tcpFinTimeout",
		func(d, s *Options) { d.TCPFinTimeout = s.TCPFinTimeout }},
	fUDPTimeout: {"ipvs-udp-timeout", "ipvs.udpTimeout",
		func(d, s *Options) { d.UDPTimeout = s.UDPTimeout }},
	fNodePortAddresses: {"nodeport-addresses", "nodePortAddresses",
		func(d, s *Options) { d.NodePortAddresses, d.NodePortPrimary = s.NodePortAddresses, s.NodePortPrimary }},
	fClusterCIDRs: {"cluster-cidr", "clusterCIDR",
		func(d, s *Options) { d.ClusterCIDRs = s.ClusterCIDRs }},
	fMasqueradeAll: {"masquerade-all", "iptables.masqueradeAll",
		func(d, s *Options) { d.MasqueradeAll = s.MasqueradeAll }},
	fHealthzBindAddress: {"healthz-bind-address", "healthzBindAddress",
		func(d, s *Options) { d.HealthzBindAddress = s.HealthzBindAddress }},
	fMetricsBindAddress: {"metrics-bind-address", "metricsBindAddress",
		func(d, s *Options) { d.MetricsBindAddress = s.MetricsBindAddress }},
	fProfiling: {"profiling", "enableProfiling",
		func(d, s *Options) { d.Profiling = s.Profiling }},
	fProxyMode: {"proxy-mode", "mode",
		func(d, s *Options) { d.ProxyMode = s.ProxyMode }},
	fFeatureGates: {"feature-gates", "featureGates",
		func(d, s *Options) { d.FeatureGates = s.FeatureGates }},
	fKubeAPIQPS: {"kube-api-qps", "clientConnection.qps",
		func(d, s *Options) { d.KubeAPIQPS = s.KubeAPIQPS }},
	fKubeAPIBurst: {"kube-api-burst", "clientConnection.burst",
		func(d, s *Options) { d.KubeAPIBurst = s.KubeAPIBurst }},
	fDetectLocalMode: {"detect-local-mode", "detectLocalMode",
		func(d, s *Options) { d.DetectLocalMode = s.DetectLocalMode }},
	fPodBridgeInterface: {"pod-bridge-interface", "detectLocal.bridgeInterface",
		func(d, s *Options) { d.PodBridgeInterface = s.PodBridgeInterface }},
	fPodInterfaceNamePrefix: {"pod-interface-name-prefix", "detectLocal.interfaceNamePrefix",
		func(d, s *Options) { d.PodInterfaceNamePrefix = s.PodInterfaceNamePrefix }},
	fBindAddress: {"bind-address", "bindAddress",
		func(d, s *Options) { d.BindAddress = s.BindAddress }},
	fBindAddressHardFail: {"bind-address-hard-fail", "bindAddressHardFail",
		func(d, s *Options) { d.BindAddressHardFail = s.BindAddressHardFail }},
	fOOMScoreAdj: {"oom-score-adj", "oomScoreAdj",
		func(d, s *Options) { d.OOMScoreAdj = s.OOMScoreAdj }},
	fConntrackMaxPerCore: {"conntrack-max-per-core", "conntrack.maxPerCore",
		func(d, s *Options) { d.Conntrack.MaxPerCore = s.Conntrack.MaxPerCore }},
	fConntrackMin: {"conntrack-min", "conntrack.min",
		func(d, s *Options) { d.Conntrack.Min = s.Conntrack.Min }},
	fConntrackTCPEstablished: {"conntrack-tcp-timeout-established", "conntrack.tcpEstablishedTimeout",
		func(d, s *Options) { d.Conntrack.TCPEstablishedTimeout = s.Conntrack.TCPEstablishedTimeout }},
	fConntrackTCPCloseWait: {"conntrack-tcp-timeout-close-wait", "conntrack.tcpCloseWaitTimeout",
		func(d, s *Options) { d.Conntrack.TCPCloseWaitTimeout = s.Conntrack.TCPCloseWaitTimeout }},
	fConntrackTCPBeLiberal: {"conntrack-tcp-be-liberal", "conntrack.tcpBeLiberal",
		func(d, s *Options) { d.Conntrack.TCPBeLiberal = s.Conntrack.TCPBeLiberal }},
	fConntrackUDPTimeout: {"conntrack-udp-timeout", "conntrack.udpTimeout",
		func(d, s *Options) { d.Conntrack.UDPTimeout = s.Conntrack.UDPTimeout }},
	fConntrackUDPStreamTimeout: {"conntrack-udp-timeout-stream", "conntrack.udpStreamTimeout",
		func(d, s *Options) { d.Conntrack.UDPStreamTimeout = s.Conntrack.UDPStreamTimeout }},
}

// problem is one line of Validate's error: the flag as kube-proxy names it,
// or the file field and the file when the value came from --config.
func (o *Options) problem(f field, value, why string) string {
	info := fields[f]
	if o.fromFile[f] {
		return fmt.Sprintf("invalid %s %q in %s: %s", info.file, value, o.ConfigFile, why)
	}
	return fmt.Sprintf("invalid --%s %q: %s", info.flag, value, why)
}

// name is how a message refers to f: the file field or the flag.
func (o *Options) name(f field) string {
	if o.fromFile[f] {
		return fields[f].file
	}
	return "--" + fields[f].flag
}
