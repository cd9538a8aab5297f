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
)

type fieldInfo struct {
	flags []string // kube-proxy's name first, then hidden aliases
	file  string   // path in KubeProxyConfiguration
	copy  func(dst, src *Options)
}

var fields = map[field]fieldInfo{
	fKubeconfig: {[]string{"kubeconfig"}, "clientConnection.kubeconfig",
		func(d, s *Options) { d.Kubeconfig = s.Kubeconfig }},
	fHostnameOverride: {[]string{"hostname-override"}, "hostnameOverride",
		func(d, s *Options) { d.HostnameOverride = s.HostnameOverride }},
	fScheduler: {[]string{"ipvs-scheduler", "scheduler"}, "ipvs.scheduler",
		func(d, s *Options) { d.Scheduler = s.Scheduler }},
	fSyncPeriod: {[]string{"ipvs-sync-period", "sync-period"}, "ipvs.syncPeriod",
		func(d, s *Options) { d.SyncPeriod = s.SyncPeriod }},
	fMinSyncPeriod: {[]string{"ipvs-min-sync-period", "min-sync-period"}, "ipvs.minSyncPeriod",
		func(d, s *Options) { d.MinSyncPeriod = s.MinSyncPeriod }},
	fStrictARP: {[]string{"ipvs-strict-arp", "strict-arp"}, "ipvs.strictARP",
		func(d, s *Options) { d.StrictARP = s.StrictARP }},
	fExcludeCIDRs: {[]string{"ipvs-exclude-cidrs", "exclude-cidrs"}, "ipvs.excludeCIDRs",
		func(d, s *Options) { d.ExcludeCIDRs = s.ExcludeCIDRs }},
	fTCPTimeout: {[]string{"ipvs-tcp-timeout", "tcp-timeout"}, "ipvs.tcpTimeout",
		func(d, s *Options) { d.TCPTimeout = s.TCPTimeout }},
	fTCPFinTimeout: {[]string{"ipvs-tcpfin-timeout", "tcpfin-timeout"}, "ipvs.tcpFinTimeout",
		func(d, s *Options) { d.TCPFinTimeout = s.TCPFinTimeout }},
	fUDPTimeout: {[]string{"ipvs-udp-timeout", "udp-timeout"}, "ipvs.udpTimeout",
		func(d, s *Options) { d.UDPTimeout = s.UDPTimeout }},
	fNodePortAddresses: {[]string{"nodeport-addresses"}, "nodePortAddresses",
		func(d, s *Options) { d.NodePortAddresses = s.NodePortAddresses }},
	fClusterCIDRs: {[]string{"cluster-cidr"}, "clusterCIDR",
		func(d, s *Options) { d.ClusterCIDRs = s.ClusterCIDRs }},
	fMasqueradeAll: {[]string{"masquerade-all"}, "iptables.masqueradeAll",
		func(d, s *Options) { d.MasqueradeAll = s.MasqueradeAll }},
	fHealthzBindAddress: {[]string{"healthz-bind-address"}, "healthzBindAddress",
		func(d, s *Options) { d.HealthzBindAddress = s.HealthzBindAddress }},
	fMetricsBindAddress: {[]string{"metrics-bind-address"}, "metricsBindAddress",
		func(d, s *Options) { d.MetricsBindAddress = s.MetricsBindAddress }},
	fProfiling: {[]string{"profiling"}, "enableProfiling",
		func(d, s *Options) { d.Profiling = s.Profiling }},
}

// problem is one line of Validate's error: the flag as kube-proxy names it,
// or the file field and the file when the value came from --config.
func (o *Options) problem(f field, value, why string) string {
	info := fields[f]
	if o.fromFile[f] {
		return fmt.Sprintf("invalid %s %q in %s: %s", info.file, value, o.ConfigFile, why)
	}
	return fmt.Sprintf("invalid --%s %q: %s", info.flags[0], value, why)
}

// name is how a message refers to f: the file field or the flag.
func (o *Options) name(f field) string {
	if o.fromFile[f] {
		return fields[f].file
	}
	return "--" + fields[f].flags[0]
}
