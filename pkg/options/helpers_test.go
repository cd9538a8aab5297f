package options

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

// parse runs what `ipvs-proxy run` does before it starts: flags, Complete,
// Validate. stage says which step failed ("parse", "complete", "validate").
func parse(args ...string) (o *Options, stage string, err error) {
	o = NewOptions()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, "parse", err
	}
	if err := o.Complete(fs); err != nil {
		return o, "complete", err
	}
	if err := o.Validate(); err != nil {
		return o, "validate", err
	}
	return o, "", nil
}

// dump prints the exported settings one per line, so tests compare text
// and a failure shows a diff.
func dump(o *Options) string {
	var b strings.Builder
	line := func(name string, v any) { fmt.Fprintf(&b, "%s = %v\n", name, v) }
	prefixes := func(ps []netip.Prefix) string { return "[" + joinPrefixes(ps) + "]" }
	line("ConfigFile", o.ConfigFile)
	line("Kubeconfig", o.Kubeconfig)
	line("Master", o.Master)
	line("HostnameOverride", o.HostnameOverride)
	line("Scheduler", o.Scheduler)
	line("SyncPeriod", o.SyncPeriod)
	line("MinSyncPeriod", o.MinSyncPeriod)
	line("SyncCPUShare", o.SyncCPUShare)
	line("StrictARP", o.StrictARP)
	line("ExcludeCIDRs", prefixes(o.ExcludeCIDRs))
	line("TCPTimeout", o.TCPTimeout)
	line("TCPFinTimeout", o.TCPFinTimeout)
	line("UDPTimeout", o.UDPTimeout)
	line("NodePortAddresses", prefixes(o.NodePortAddresses))
	line("NodePortPrimary", o.NodePortPrimary)
	line("ClusterCIDRs", prefixes(o.ClusterCIDRs))
	line("DetectLocal", o.DetectLocalMode+" "+o.PodBridgeInterface+" "+o.PodInterfaceNamePrefix)
	line("MasqueradeAll", o.MasqueradeAll)
	line("HealthzBindAddress", o.HealthzBindAddress)
	line("MetricsBindAddress", o.MetricsBindAddress)
	line("StateFile", o.StateFile)
	line("GracefulTerminationTimeout", o.GracefulTerminationTimeout)
	line("MaxVirtualServersPerService", o.MaxVirtualServersPerService)
	line("ServiceCIDRs", prefixes(o.ServiceCIDRs))
	line("ProxyMode", o.ProxyMode)
	line("FeatureGates", o.FeatureGates)
	line("AllowExternalIPs", o.AllowExternalIPs)
	line("KubeAPIQPS", o.KubeAPIQPS)
	line("KubeAPIBurst", o.KubeAPIBurst)
	line("BindAddress", o.BindAddress)
	line("BindAddressHardFail", o.BindAddressHardFail)
	line("OOMScoreAdj", o.OOMScoreAdj)
	line("Conntrack", fmt.Sprintf("%+v", o.Conntrack))
	line("LogVerbosity", o.Logging.Verbosity)
	line("Warnings", strings.Join(o.Warnings, "\n  "))
	return b.String()
}

// defaultsDump is dump(NewOptions()) with some "Name = value" lines
// replaced.
func defaultsDump(t *testing.T, changes ...string) string {
	t.Helper()
	lines := strings.SplitAfter(dump(NewOptions()), "\n")
	for _, c := range changes {
		name, _, _ := strings.Cut(c, " = ")
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, name+" = ") })
		if i < 0 {
			t.Fatalf("no field %q in dump", name)
		}
		lines[i] = c + "\n"
	}
	return strings.Join(lines, "")
}

func diff(t *testing.T, what, want, got string) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}
