package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/cleanup"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/daemon"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/healthcheck"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/healthz"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/options"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"
)

// LinkName is the dummy interface holding the VIPs. It is kube-proxy's
// name on purpose: a node moving from kube-proxy keeps its VIPs in place,
// and ipvs-proxy adopts the virtual servers its Services still want.
const LinkName = "kube-ipvs0"

func runCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the proxy: watch the API server and keep IPVS programmed (the default command)",
		Args:  cobra.NoArgs,
	}
	addRun(cmd)
	return cmd
}

// addRun gives cmd kube-proxy's flags and makes it run the proxy: both
// `ipvs-proxy run` and plain `ipvs-proxy`, so that kube-proxy's command
// line works with only the binary's name changed.
func addRun(cmd *cobra.Command) {
	o := options.NewOptions()
	version := addVersionFlag(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if version.print(cmd.OutOrStdout()) {
			return nil
		}
		if err := o.Complete(cmd.Flags()); err != nil {
			return usageError{err}
		}
		if err := o.Validate(); err != nil {
			return usageError{err}
		}
		// The logging gates (LoggingAlphaOptions, ...) decide which
		// logging options are allowed, as in kube-proxy.
		gate, err := o.LoggingFeatureGate()
		if err != nil {
			return usageError{err}
		}
		if err := logsapi.ValidateAndApply(o.Logging, gate); err != nil {
			return usageError{err}
		}
		for _, w := range o.Warnings {
			klog.Warning(w)
		}
		switch {
		case o.WriteConfigTo != "":
			return writeConfig(o)
		case o.Cleanup:
			return runCleanup(o.StateFile, true, false)
		}
		return runProxy(cmd.Context(), o)
	}
	o.AddFlags(cmd.Flags())
}

// writeConfig is kube-proxy's --write-config-to: the configuration in
// effect, as a file --config reads back.
func writeConfig(o *options.Options) error {
	data, err := yaml.Marshal(o.KubeProxyConfiguration())
	if err != nil {
		return fmt.Errorf("encode configuration: %w", err)
	}
	if err := os.WriteFile(o.WriteConfigTo, data, 0o644); err != nil {
		return err
	}
	klog.InfoS("Wrote configuration", "file", o.WriteConfigTo)
	return nil
}

// setUpNode makes the settings that need full root privileges: the IPVS
// module, sysctls, conntrack and IPVS timeouts, the OOM score. It is all
// --init-only does.
func setUpNode(o *options.Options) (*ipvs.Linux, string, error) {
	// IPVS first: opening it loads ip_vs, which creates the net/ipv4/vs
	// sysctls set next (after a reboot the module is not loaded yet).
	kipvs, err := ipvs.NewLinux()
	if err != nil {
		return nil, "", err
	}
	kver, err := sysctl.KernelVersion()
	if err != nil {
		klog.InfoS("Cannot read the kernel version; conn_reuse_mode is left alone", "err", err)
	}
	// A scheduler the kernel lacks would fail every virtual server.
	switch err := ipvs.SchedulerAvailable("/", kver, o.Scheduler); {
	case errors.Is(err, ipvs.ErrSchedulerUnknown):
		klog.InfoS("Cannot check the IPVS scheduler; mount /lib/modules to have it checked", "err", err)
	case err != nil:
		kipvs.Close()
		return nil, "", err
	}
	sys := sysctl.NewLinux()
	changed, err := sysctl.Apply(sys, sysctl.Required(o.StrictARP, kver))
	for _, c := range changed {
		klog.InfoS("Set sysctl", "change", c)
	}
	if err != nil {
		kipvs.Close()
		return nil, "", err
	}
	changed, err = sysctl.ApplyConntrack(sys, sysctl.NewModuleParams(), o.Conntrack, sysctl.NumCPU())
	for _, c := range changed {
		klog.InfoS("Set conntrack setting", "change", c)
	}
	if err != nil {
		// kube-proxy stops here too: a table too small drops connections.
		kipvs.Close()
		return nil, "", fmt.Errorf("apply conntrack settings: %w", err)
	}
	if err := kipvs.SetTimeouts(o.TCPTimeout, o.TCPFinTimeout, o.UDPTimeout); err != nil {
		kipvs.Close()
		return nil, "", err
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(int(o.OOMScoreAdj))), 0); err != nil {
		klog.InfoS("Cannot set the OOM score; going on", "oomScoreAdj", o.OOMScoreAdj, "err", err)
	}
	return kipvs, kver, nil
}

func runProxy(ctx context.Context, o *options.Options) error {
	nodeName, err := o.NodeName()
	if err != nil {
		return err
	}
	kipvs, kver, err := setUpNode(o)
	if err != nil {
		return err
	}
	defer kipvs.Close()
	if o.InitOnly {
		return nil
	}
	client, err := newClient(o.Kubeconfig, o.Master, o.KubeAPIQPS, o.KubeAPIBurst)
	if err != nil {
		return err
	}
	owned, err := loadOwned(o.StateFile)
	if err != nil {
		return err
	}
	// The health server answers from here on, before the waits for the
	// Node (its podCIDRs can take minutes): a liveness probe must not kill
	// the proxy while it waits. Until the sync loop starts it says healthy,
	// kube-proxy's answer while starting. With --bind-address-hard-fail a
	// server that cannot listen, or fails later, stops the proxy (cause).
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	hardFail := context.CancelCauseFunc(nil)
	if o.BindAddressHardFail {
		hardFail = fail
	}
	clk := clock.RealClock{}
	health := healthz.New(clk, o.SyncPeriod)
	if err := serve(ctx, "healthz", o.HealthzBindAddress, health.Handler(), hardFail); err != nil {
		return err
	}
	npa, primary := nodePortAddresses(ctx, client, nodeName, o)
	local, podCIDRs, err := localDetection(ctx, client, nodeName, o)
	if err != nil {
		return err
	}
	// The rules come before the proxier: the families they cover are the
	// families it programs (modelOptions).
	rules, err := iptablesRules(local)
	if err != nil {
		return err
	}
	buildOptions := modelOptions(o, nodeName, npa, unavailableSchedulers(kver), rules)
	p := proxier.New(buildOptions, kipvs, netif.NewLinux(LinkName), ipset.NewLinux(), owned)
	p.Exclude = o.ExcludeCIDRs
	p.AdoptNodePorts = kubeProxyNodePortsLeft()
	p.DrainTimeout = o.GracefulTerminationTimeout
	p.Conntrack = conntrack.NewLinux()

	families := metricFamilies(rules, append(slices.Clone(o.ClusterCIDRs), o.ServiceCIDRs...))
	health.SetFamilies(families)
	m := metrics.New(families...)
	health.OnServe(m.ProbeServed)
	metricsHandler := withDebug(withBuildOptions(withKubeProxyPages(m.Handler(), o), buildOptions), o.Profiling)
	if err := serve(ctx, "metrics", o.MetricsBindAddress, metricsHandler, hardFail); err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(client.EventSink())
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(kubeclient.Scheme, v1.EventSource{Component: "ipvs-proxy", Host: nodeName})
	birthCry(recorder, nodeName)

	klog.InfoS("Starting ipvs-proxy", "node", nodeName, "scheduler", o.Scheduler, "kernel", kver)
	// Health-check node ports listen where NodePorts do, as kube-proxy's:
	// on every address without --nodeport-addresses (on a VIP they are then
	// refused by the VIP filter like any other port that is not a
	// Service's), else on the node addresses inside it.
	checks := healthcheck.New(healthcheck.Config{ProxyHealthy: health.Healthy, ListenFailed: healthCheckFailed(recorder, nodeName),
		Addresses: healthCheckAddresses(netif.NewLinux(LinkName), npa)})
	defer checks.Close()
	cfg := daemon.Config{
		Client: client, NodeName: nodeName, Proxier: p, Rules: rules,
		SyncPeriod: o.SyncPeriod, MinSyncPeriod: o.MinSyncPeriod, MaxSyncShare: o.SyncCPUShare,
		Health: health, Metrics: m, Recorder: recorder, Clock: clk,
		HealthChecks: checks, Restart: nodeRestart(podCIDRs, o.NodePortPrimary, primary, o.BindAddress),
	}
	if o.CleanupKubeProxy {
		cfg.AfterFirstSync = cleanupKubeProxyRules
	}
	err = daemon.Run(ctx, cfg)
	if cause := context.Cause(ctx); errors.Is(cause, errServerFailed) {
		return cause
	}
	return err
}

// modelOptions are the options every Service is built with. Without
// IPv6 rules (no ip6tables: see iptablesRules) IPv6 is not programmed at
// all (model.Options.NoIPv6), as kube-proxy then runs single-stack: the VIP
// filter, the loadBalancerSourceRanges firewall and the masquerading are
// iptables rules, and IPv6 virtual servers without them would fail open.
func modelOptions(o *options.Options, nodeName string, npa []netip.Prefix, unavailable map[string]bool, rules []daemon.RuleSync) model.Options {
	return model.Options{NodeName: nodeName, Scheduler: o.Scheduler, NodePortAddresses: npa,
		DenyExternalIPs: !o.AllowExternalIPs, ClusterCIDRs: o.ClusterCIDRs, ServiceCIDRs: o.ServiceCIDRs,
		Unavailable: unavailable, NoIPv6: !hasIPv6Rules(rules),
		MaxVirtualServers: o.MaxVirtualServersPerService, ReservedNodePorts: reservedNodePorts(o)}
}

// hasIPv6Rules reports whether the host has ip6tables (iptablesRules
// returned an IPv6 rule set): whether IPv6 is programmed and can be a
// metrics family.
func hasIPv6Rules(rules []daemon.RuleSync) bool {
	return slices.ContainsFunc(rules, func(r daemon.RuleSync) bool { return r.Rules.Family == iptables.IPv6 })
}

// unavailableSchedulers are the IPVS schedulers this node's kernel has
// neither loaded nor can load; one it cannot tell about counts as there.
func unavailableSchedulers(kver string) map[string]bool {
	out := map[string]bool{}
	for _, s := range ipvs.Schedulers {
		if err := ipvs.SchedulerAvailable("/", kver, s); err != nil && !errors.Is(err, ipvs.ErrSchedulerUnknown) {
			out[s] = true
		}
	}
	if len(out) > 0 {
		klog.InfoS("IPVS schedulers this kernel lacks; Services that ask for one get the default", "schedulers", slices.Sorted(maps.Keys(out)))
	}
	return out
}

// healthCheckAddresses are, by family, the node addresses inside
// --nodeport-addresses, read once at start: nil (every address) for a
// family it names no prefix of, as kube-proxy's health server of that
// family then listens on its wildcard address.
func healthCheckAddresses(link netif.Interface, prefixes []netip.Prefix) [2][]net.IP {
	var out [2][]net.IP
	var listed [2]bool
	for _, p := range prefixes {
		listed[model.FamilyIndex(p.Addr())] = true
	}
	if !listed[0] && !listed[1] {
		return out
	}
	hosts, err := link.HostAddresses()
	if err != nil {
		klog.ErrorS(err, "Cannot read the node's addresses; health-check node ports listen on every address")
		return out
	}
	var ips []netip.Addr
	for _, h := range hosts {
		ips = append(ips, h.Addr)
	}
	inside := model.NodePortIPs(ips, prefixes)
	for f := range listed {
		if !listed[f] {
			continue
		}
		out[f] = []net.IP{} // listen nowhere rather than everywhere
		for _, a := range inside {
			if model.FamilyIndex(a) == f {
				out[f] = append(out[f], net.IP(a.AsSlice()))
			}
		}
		if len(out[f]) == 0 {
			klog.InfoS("No node address of this family is inside --nodeport-addresses: its health-check node ports will not listen",
				"family", []string{"IPv4", "IPv6"}[f], "nodePortAddresses", prefixes)
		}
	}
	return out
}

// loadOwned reads the ownership record: from the kernel sets, or from
// --state-file when given.
func loadOwned(stateFile string) (*proxier.Owned, error) {
	if stateFile != "" {
		return proxier.LoadOwned(stateFile)
	}
	return proxier.LoadOwnedInSets(ipset.NewLinux())
}

// kubeProxyNodePortsLeft reports whether kube-proxy's IPVS mode ran on this
// node: its NodePort sets are still there. Its NodePort virtual servers on
// node addresses are then taken over by the first full sync.
func kubeProxyNodePortsLeft() bool {
	names, err := ipset.HostSetNames()
	if err != nil {
		return false
	}
	for _, n := range names {
		if strings.HasPrefix(n, "KUBE-NODE-PORT-") {
			klog.InfoS("kube-proxy's NodePort sets are present: its NodePort virtual servers will be taken over", "set", n)
			return true
		}
	}
	return false
}

// birthCry is kube-proxy's Normal "Starting" Event on this node's Node, which
// `kubectl describe node` shows beside the kubelet's.
func birthCry(r record.EventRecorder, nodeName string) {
	r.Event(&v1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: nodeName}, v1.EventTypeNormal, "Starting", "Starting ipvs-proxy.")
}

// healthCheckFailed is kube-proxy's Warning Event on a Service whose
// health-check node port cannot be opened.
func healthCheckFailed(r record.EventRecorder, nodeName string) func(types.NamespacedName, uint16, error) {
	return func(svc types.NamespacedName, port uint16, err error) {
		ref := &v1.ObjectReference{APIVersion: "v1", Kind: "Service", Namespace: svc.Namespace, Name: svc.Name}
		r.Eventf(ref, v1.EventTypeWarning, "FailedToStartServiceHealthcheck",
			"node %s failed to start healthcheck %q on port %d: %v", nodeName, svc.String(), port, err)
	}
}

// nodePortAddresses is o's list with the keyword "primary" replaced by the
// Node's primary IPs, read once at start as kube-proxy does (a change
// restarts the proxy: see nodeRestart), and those IPs. A Node that cannot
// be read leaves --bind-address only; a list left empty means every
// address, as in kube-proxy.
func nodePortAddresses(ctx context.Context, client *kubeclient.Client, nodeName string, o *options.Options) ([]netip.Prefix, []netip.Addr) {
	if !o.NodePortPrimary {
		return o.NodePortAddresses, nil
	}
	var addrs []v1.NodeAddress
	if node, err := client.WaitForNode(ctx, nodeName, nodeTimeout, kubeclient.NodeExists); err != nil {
		klog.ErrorS(err, "Cannot read this node's addresses for nodePortAddresses' primary; using --bind-address only until the Node is read, which restarts ipvs-proxy with its IPs", "node", nodeName)
	} else {
		addrs = node.Status.Addresses
	}
	primary := model.PrimaryNodeIPs(addrs, o.BindAddress)
	out := append(slices.Clone(o.NodePortAddresses), model.PrimaryPrefixes(primary)...)
	klog.InfoS("Expanded nodePortAddresses' primary", "primaryIPs", primary, "nodePortAddresses", out)
	return out, primary
}

// nodeRestart says why an update of the Node must restart the proxy, ""
// when it need not: what was read from the Node at start and built into
// the rules or the NodePorts has changed. kube-proxy exits when the Node's
// podCIDRs change in NodeCIDR mode, and when its IPs change; ipvs-proxy
// reads the IPs only for nodePortAddresses' primary, so only then does a
// change of them restart it.
func nodeRestart(podCIDRs []string, usePrimary bool, primary []netip.Addr, bindAddress string) func(*v1.Node) string {
	return func(n *v1.Node) string {
		if podCIDRs != nil && !slices.Equal(n.Spec.PodCIDRs, podCIDRs) {
			return fmt.Sprintf("podCIDRs %v, not %v (detect-local-mode NodeCIDR)", n.Spec.PodCIDRs, podCIDRs)
		}
		if now := model.PrimaryNodeIPs(n.Status.Addresses, bindAddress); usePrimary && !slices.Equal(now, primary) {
			return fmt.Sprintf("primary IPs %v, not %v (nodePortAddresses primary)", now, primary)
		}
		return ""
	}
}

// nodeTimeout is how long ipvs-proxy waits for its Node at start:
// kube-proxy's 30 s.
const nodeTimeout = 30 * time.Second

// podCIDRsTimeout is how long NodeCIDR mode waits for the Node's podCIDRs
// after the Node exists: kube-proxy's 5 minutes.
var podCIDRsTimeout = 5 * time.Minute

// localDetection is how the rules tell Service traffic from this node's
// pods apart (--detect-local-mode), as kube-proxy does. In NodeCIDR mode
// it also returns the Node's podCIDRs, which the daemon watches: like
// kube-proxy, ipvs-proxy waits for them (a node controller assigns them
// after the kubelet registers the Node), fails to start without them, and
// exits when they change, to start again with rules for the new ones.
func localDetection(ctx context.Context, client *kubeclient.Client, nodeName string, o *options.Options) (iptables.Config, []string, error) {
	var podCIDRs []string
	cfg := iptables.Config{MasqueradeAll: o.MasqueradeAll}
	switch o.DetectLocalMode {
	case "BridgeInterface":
		cfg.LocalBridge = o.PodBridgeInterface
	case "InterfaceNamePrefix":
		cfg.LocalInterfacePrefix = o.PodInterfaceNamePrefix
	case "NodeCIDR":
		node, err := waitForPodCIDRs(ctx, client, nodeName)
		if err != nil {
			return cfg, nil, fmt.Errorf("detect-local-mode NodeCIDR: %w", err)
		}
		podCIDRs = node.Spec.PodCIDRs
		var bad []string
		cfg.LocalCIDRs, bad = options.ParsePrefixes(podCIDRs)
		klog.InfoS("Local traffic is told apart by the Node's podCIDRs", "podCIDRs", podCIDRs, "unparsable", bad)
	default:
		cfg.LocalCIDRs = o.ClusterCIDRs
	}
	if cfg.LocalBridge == "" && cfg.LocalInterfacePrefix == "" && len(cfg.LocalCIDRs) == 0 {
		klog.InfoS("No local traffic can be told apart (no --cluster-cidr, podCIDRs or pod interface): clusterIP traffic is not masqueraded; NodePort, externalIP and LoadBalancer traffic is", "detectLocalMode", o.DetectLocalMode)
	}
	return cfg, podCIDRs, nil
}

// waitForPodCIDRs reads this node's Node once it has podCIDRs: the Node
// within nodeTimeout, then its podCIDRs within podCIDRsTimeout more.
func waitForPodCIDRs(ctx context.Context, client *kubeclient.Client, nodeName string) (*v1.Node, error) {
	if _, err := client.WaitForNode(ctx, nodeName, nodeTimeout, kubeclient.NodeExists); err != nil {
		return nil, fmt.Errorf("no Node %s within %s: %w", nodeName, nodeTimeout, err)
	}
	klog.InfoS("Waiting for the Node's podCIDRs", "node", nodeName, "timeout", podCIDRsTimeout)
	node, err := client.WaitForNode(ctx, nodeName, podCIDRsTimeout, func(n *v1.Node) bool { return len(n.Spec.PodCIDRs) > 0 })
	if err != nil {
		return nil, fmt.Errorf("no podCIDRs assigned to Node %s within %s: %w", nodeName, podCIDRsTimeout, err)
	}
	return node, nil
}

// cleanupKubeProxyRules removes kube-proxy's chains and ipsets once this
// node is programmed, so its stale sets stop steering masquerade decisions.
// IPVS and kube-ipvs0 are left out: ipvs-proxy has already adopted or
// replaced what is there.
func cleanupKubeProxyRules() {
	ipts, errs := cleanup.HostIPTables()
	removed, cerrs := (&cleanup.Cleaner{IPTables: ipts, IPSets: cleanup.NewLinuxIPSets()}).Run()
	for _, r := range removed {
		klog.InfoS("Removed kube-proxy leftover", "what", r)
	}
	for _, err := range append(errs, cerrs...) {
		klog.ErrorS(err, "Cannot remove a kube-proxy leftover")
	}
}

// newClient is pkg/kubeclient's client, which asks for protobuf, rather
// than a clientset, which would link every API group into the binary.
// qps and burst 0 mean ipvs-proxy's defaults.
func newClient(kubeconfig, master string, qps float32, burst int32) (*kubeclient.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags(master, kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load client configuration (--kubeconfig %q, --master %q): %w", kubeconfig, master, err)
	}
	cfg.UserAgent = "ipvs-proxy"
	// Watches carry the load; these only bound Event writes and the first
	// lists, so the defaults are higher than kube-proxy's 5 and 10.
	cfg.QPS, cfg.Burst = cmp.Or(qps, 50), int(cmp.Or(burst, 100))
	return kubeclient.New(cfg)
}

// metricFamilies are the ip_family label values: the families kube-proxy
// would run a proxier for. IPv4 always; IPv6 when the node has ip6tables
// (without, IPv6 is not programmed at all: modelOptions) and the cluster
// is IPv6 too: an IPv6 cluster or Service CIDR, or, with none given, a
// global IPv6 address on the host. (Most IPv4 nodes have
// ip6tables; a second family there would double every sum over ip_family
// against kube-proxy's.)
func metricFamilies(rules []daemon.RuleSync, cidrs []netip.Prefix) []string {
	out := []string{"IPv4"}
	if !hasIPv6Rules(rules) {
		return out
	}
	v6 := slices.ContainsFunc(cidrs, func(p netip.Prefix) bool { return p.Addr().Is6() && !p.Addr().Is4In6() })
	if len(cidrs) == 0 {
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP.IsGlobalUnicast() {
				v6 = true
			}
		}
	}
	if v6 {
		out = append(out, "IPv6")
	}
	return out
}

// iptablesRules returns the rule set of each family the host has iptables
// for. IPv4 is required; a host without ip6tables runs IPv4 only: no IPv6
// Service, nor the IPv6 side of a dual-stack one, is programmed
// (modelOptions), as kube-proxy creates no proxier for a family without
// iptables and says so once at start.
func iptablesRules(cfg iptables.Config) ([]daemon.RuleSync, error) {
	var out []daemon.RuleSync
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		ipt, err := iptables.NewLinux(fam)
		if err != nil {
			if fam == iptables.IPv4 {
				return nil, err
			}
			klog.InfoS("IPv6 Services are not programmed: the host has no ip6tables "+
				"(dual-stack Services get their IPv4 side only, as kube-proxy runs single-stack)", "err", err)
			continue
		}
		out = append(out, daemon.RuleSync{IPTables: ipt, Rules: iptables.Desired(cfg, fam)})
	}
	return out, nil
}

// withKubeProxyPages adds what kube-proxy serves beside its metrics:
// /proxyMode (the mode's name) and /configz (the configuration in effect,
// under the key kube-proxy uses).
func withKubeProxyPages(h http.Handler, o *options.Options) http.Handler {
	configz, err := json.Marshal(map[string]any{"kubeproxy.config.k8s.io": o.KubeProxyConfiguration()})
	if err != nil {
		configz = []byte("{}") // cannot happen: the type marshals
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/proxyMode", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte("ipvs"))
	})
	mux.HandleFunc("/configz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(configz)
	})
	return mux
}

// withDebug adds what kube-proxy's --profiling adds to its metrics
// server: Go's pprof handlers under /debug/pprof/, and /debug/flags/v,
// where a PUT of a number sets klog's verbosity (kube-proxy's
// routes.DebugFlags with logs.GlogSetter). Without profiling, /debug/ is
// not found, rather than the metrics h serves for every other path.
func withDebug(h http.Handler, profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	if !profiling {
		mux.Handle("/debug/", http.NotFoundHandler())
		return mux
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/flags", debugFlagsIndex)
	mux.HandleFunc("/debug/flags/", debugFlagsIndex)
	mux.HandleFunc("/debug/flags/v", stringFlagPutHandler(logs.GlogSetter))
	return mux
}

// debugFlagsIndex lists the flags /debug/flags/ sets, as the API server
// library's routes.DebugFlags does (that package would bring in much of
// k8s.io/apiserver, a module ipvs-proxy does not otherwise need).
func debugFlagsIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, "<html>\n<head>\n<title>/debug/flags/</title>\n</head>\n<body>\n/debug/flags/<br>\n<br>\nflags:<br>\n<table>\n<tr>v<br>\n</table>\n<br>\nfull flags configurable<br>\n</body>\n</html>\n")
}

// stringFlagPutHandler is routes.StringFlagPutHandler: a PUT sets the flag
// to the request body through setter; any other method is refused.
func stringFlagPutHandler(setter func(string) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		text := func(code int, msg string) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(code)
			_, _ = fmt.Fprintln(w, msg)
		}
		if r.Method != http.MethodPut {
			text(http.StatusNotAcceptable, "unsupported http method")
			return
		}
		// A verbosity is a few bytes; the metrics server may listen on
		// every address, so the body is bounded.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1024))
		if err != nil {
			text(http.StatusBadRequest, "error reading request body: "+err.Error())
			return
		}
		msg, err := setter(string(body))
		if err != nil {
			text(http.StatusBadRequest, err.Error())
			return
		}
		text(http.StatusOK, msg)
	}
}

// kubeletPort is kubelet's default --port, which the API server calls for
// logs, exec and port-forward.
const kubeletPort = 10250

// reservedNodePorts are the TCP ports this node serves itself on its own
// addresses, which no Service's externalIP or LB IP that is a node address
// may take (model.Options.ReservedNodePorts): the health and metrics
// ports unless they listen on loopback only, and kubelet's.
func reservedNodePorts(o *options.Options) []uint16 {
	out := []uint16{kubeletPort}
	for _, addr := range []string{o.HealthzBindAddress, o.MetricsBindAddress} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			continue // "" (off), or refused by the options already
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
			continue
		}
		if p, err := strconv.ParseUint(port, 10, 16); err == nil && p > 0 && !slices.Contains(out, uint16(p)) {
			out = append(out, uint16(p))
		}
	}
	return out
}
