package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/daemon"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/healthcheck"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/healthz"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeproxy"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/options"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// LinkName is the dummy interface holding the VIPs. It is kube-proxy's
// name on purpose: a node moving from kube-proxy keeps its VIPs in place,
// and ipvs-proxy adopts the virtual servers its Services still want.
const LinkName = "kube-ipvs0"

func runCommand() *cobra.Command {
	o := options.NewOptions()
	logCfg := logsapi.NewLoggingConfiguration()
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the proxy: watch the API server and keep IPVS programmed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(cmd.Flags()); err != nil {
				return usageError{err}
			}
			if err := o.Validate(); err != nil {
				return usageError{err}
			}
			if err := logsapi.ValidateAndApply(logCfg, nil); err != nil {
				return usageError{err}
			}
			return runProxy(cmd.Context(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	logsapi.AddFlags(logCfg, cmd.Flags())
	return cmd
}

func runProxy(ctx context.Context, o *options.Options) error {
	nodeName, err := o.NodeName()
	if err != nil {
		return err
	}
	client, err := newClient(o.Kubeconfig, o.Master)
	if err != nil {
		return err
	}
	// IPVS first: opening it loads ip_vs, which creates the net/ipv4/vs
	// sysctls set next (after a reboot the module is not loaded yet).
	kipvs, err := ipvs.NewLinux()
	if err != nil {
		return err
	}
	defer kipvs.Close()
	kver, err := sysctl.KernelVersion()
	if err != nil {
		klog.InfoS("Cannot read the kernel version; conn_reuse_mode is left alone", "err", err)
	}
	changed, err := sysctl.Apply(sysctl.NewLinux(), sysctl.Required(o.StrictARP, kver))
	for _, c := range changed {
		klog.InfoS("Set sysctl", "change", c)
	}
	if err != nil {
		return err
	}
	if err := kipvs.SetTimeouts(o.TCPTimeout, o.TCPFinTimeout, o.UDPTimeout); err != nil {
		return err
	}
	owned, err := proxier.LoadOwned(o.StateFile)
	if err != nil {
		return err
	}
	p := proxier.New(model.Options{NodeName: nodeName, Scheduler: o.Scheduler, NodePortAddresses: o.NodePortAddresses},
		kipvs, netif.NewLinux(LinkName), ipset.NewLinux(), owned)
	p.Exclude = o.ExcludeCIDRs
	p.DrainTimeout = o.GracefulTerminationTimeout
	p.Conntrack = conntrack.NewLinux()
	rules, err := iptablesRules(o)
	if err != nil {
		return err
	}

	clk := clock.RealClock{}
	health := healthz.New(clk, o.SyncPeriod)
	m := metrics.New()
	health.OnServe(m.ProbeServed)
	serve(ctx, "healthz", o.HealthzBindAddress, health.Handler())
	metricsHandler := m.Handler()
	if o.Profiling {
		metricsHandler = withProfiling(metricsHandler)
	}
	serve(ctx, "metrics", o.MetricsBindAddress, metricsHandler)

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(client.EventSink())
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(kubeclient.Scheme, v1.EventSource{Component: "ipvs-proxy", Host: nodeName})

	klog.InfoS("Starting ipvs-proxy", "node", nodeName, "scheduler", o.Scheduler, "kernel", kver)
	// Health-check node ports listen on every address, as kube-proxy's do
	// without --nodeport-addresses; on a VIP they are refused by the VIP
	// filter like any other port that is not a Service's.
	checks := healthcheck.New(healthcheck.Config{ProxyHealthy: health.Healthy})
	defer checks.Close()
	cfg := daemon.Config{
		Client: client, NodeName: nodeName, Proxier: p, Rules: rules,
		SyncPeriod: o.SyncPeriod, MinSyncPeriod: o.MinSyncPeriod, MaxSyncShare: o.SyncCPUShare,
		Health: health, Metrics: m, Recorder: recorder, Clock: clk,
		HealthChecks: checks,
	}
	if o.CleanupKubeProxy {
		cfg.AfterFirstSync = cleanupKubeProxyRules
	}
	return daemon.Run(ctx, cfg)
}

// cleanupKubeProxyRules removes kube-proxy's chains and ipsets once this
// node is programmed, so its stale sets stop steering masquerade decisions.
// IPVS and kube-ipvs0 are left out: ipvs-proxy has already adopted or
// replaced what is there.
func cleanupKubeProxyRules() {
	ipts, errs := kubeproxy.HostIPTables()
	removed, cerrs := (&kubeproxy.Cleaner{IPTables: ipts, IPSets: kubeproxy.NewLinuxIPSets()}).Run()
	for _, r := range removed {
		klog.InfoS("Removed kube-proxy leftover", "what", r)
	}
	for _, err := range append(errs, cerrs...) {
		klog.ErrorS(err, "Cannot remove a kube-proxy leftover")
	}
}

// newClient is pkg/kubeclient's client, which asks for protobuf, rather
// than a clientset, which would link every API group into the binary.
func newClient(kubeconfig, master string) (*kubeclient.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags(master, kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load client configuration (--kubeconfig %q, --master %q): %w", kubeconfig, master, err)
	}
	cfg.UserAgent = "ipvs-proxy"
	// Watches carry the load; these only bound Event writes and the first lists.
	cfg.QPS, cfg.Burst = 50, 100
	return kubeclient.New(cfg)
}

// iptablesRules returns the rule set of each family the host has iptables
// for. IPv4 is required; a host without ip6tables runs IPv4 only.
func iptablesRules(o *options.Options) ([]daemon.RuleSync, error) {
	cfg := iptables.Config{ClusterCIDRs: o.ClusterCIDRs, MasqueradeAll: o.MasqueradeAll}
	var out []daemon.RuleSync
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		ipt, err := iptables.NewLinux(fam)
		if err != nil {
			if fam == iptables.IPv4 {
				return nil, err
			}
			klog.InfoS("No IPv6 iptables; IPv6 Services get no masquerade rules", "err", err)
			continue
		}
		out = append(out, daemon.RuleSync{IPTables: ipt, Rules: iptables.Desired(cfg, fam)})
	}
	return out, nil
}

// serve runs an HTTP server until ctx ends. A server that cannot listen is
// logged, not fatal: kube-proxy keeps proxying without its health port too.
func serve(ctx context.Context, name, addr string, h http.Handler) {
	if addr == "" {
		return
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "HTTP server stopped", "server", name, "address", addr)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
}

// withProfiling adds Go's pprof handlers under /debug/pprof/, as
// kube-proxy's --profiling does on its metrics server.
func withProfiling(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
