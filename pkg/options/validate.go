package options

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Validate reports every bad value, one line each, naming the flag (or the
// config file field) and what is wrong with it.
func (o *Options) Validate() error {
	var lines []string
	add := func(f field, value, why string) { lines = append(lines, o.problem(f, value, why)) }

	if name := strings.ToLower(strings.TrimSpace(o.HostnameOverride)); name != "" {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			add(fHostnameOverride, o.HostnameOverride, "not a valid Node name: "+strings.Join(errs, "; "))
		}
	}
	if o.MaxVirtualServersPerService < 0 {
		lines = append(lines, fmt.Sprintf("invalid --max-virtual-servers-per-service %d: must not be negative (0 means no cap)", o.MaxVirtualServersPerService))
	}
	cidrs, bad, _ := parsePrefixes(o.serviceCIDRStrings, false)
	for _, b := range bad {
		lines = append(lines, fmt.Sprintf("invalid --service-cluster-ip-range %q: %s", b.value, b.why))
	}
	o.ServiceCIDRs = cidrs
	if err := model.ValidScheduler(o.Scheduler); err != nil {
		add(fScheduler, o.Scheduler, err.Error())
	}
	if o.SyncPeriod <= 0 {
		add(fSyncPeriod, o.SyncPeriod.String(), "must be greater than 0")
	}
	switch {
	case o.MinSyncPeriod < 0:
		add(fMinSyncPeriod, o.MinSyncPeriod.String(), "must not be negative (0 syncs each change at once)")
	case o.SyncPeriod > 0 && o.MinSyncPeriod > o.SyncPeriod:
		add(fMinSyncPeriod, o.MinSyncPeriod.String(), "must not be greater than "+o.name(fSyncPeriod)+" ("+o.SyncPeriod.String()+")")
	}
	for _, t := range []struct {
		f field
		d time.Duration
	}{{fTCPTimeout, o.TCPTimeout}, {fTCPFinTimeout, o.TCPFinTimeout}, {fUDPTimeout, o.UDPTimeout}} {
		if t.d < 0 {
			add(t.f, t.d.String(), "must not be negative (0 leaves the kernel's value)")
		}
	}
	for _, f := range []field{fExcludeCIDRs, fNodePortAddresses, fClusterCIDRs} {
		for _, b := range o.badCIDRs[f] {
			add(f, b.value, b.why)
		}
	}
	if why := dualStack(o.ClusterCIDRs); why != "" {
		add(fClusterCIDRs, joinPrefixes(o.ClusterCIDRs), why)
	}
	// Empty is a server turned off (--healthz-port=0, --metrics-port=0).
	if why := hostPort(o.HealthzBindAddress); o.HealthzBindAddress != "" && why != "" {
		add(fHealthzBindAddress, o.HealthzBindAddress, why)
	}
	if why := hostPort(o.MetricsBindAddress); o.MetricsBindAddress != "" && why != "" {
		add(fMetricsBindAddress, o.MetricsBindAddress, why)
	}
	// A pod interface that is missing is named where the mode came from:
	// the file's field when the file chose the mode.
	missing := func(f field) {
		if o.fromFile[fDetectLocalMode] {
			lines = append(lines, fmt.Sprintf("invalid %s %q in %s: must be set with detectLocalMode %s", fields[f].file, "", o.ConfigFile, o.DetectLocalMode))
			return
		}
		add(f, "", "must be set with detect-local-mode "+o.DetectLocalMode)
	}
	switch o.DetectLocalMode {
	case "", "ClusterCIDR", "NodeCIDR":
	case "BridgeInterface":
		if o.PodBridgeInterface == "" {
			missing(fPodBridgeInterface)
		}
	case "InterfaceNamePrefix":
		if o.PodInterfaceNamePrefix == "" {
			missing(fPodInterfaceNamePrefix)
		}
	default:
		add(fDetectLocalMode, o.DetectLocalMode, "want ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix")
	}
	if o.ProxyMode != "" && o.ProxyMode != "ipvs" {
		add(fProxyMode, o.ProxyMode, `ipvs-proxy programs IPVS only: want "ipvs" or empty`)
	}
	if _, err := netip.ParseAddr(o.BindAddress); o.BindAddress != "" && err != nil {
		add(fBindAddress, o.BindAddress, "not an IP address")
	}
	if o.OOMScoreAdj < -1000 || o.OOMScoreAdj > 1000 {
		add(fOOMScoreAdj, strconv.Itoa(int(o.OOMScoreAdj)), "must be from -1000 to 1000")
	}
	// A negative QPS is valid, as in kube-proxy: client-go then sets no
	// rate limit.
	if o.KubeAPIBurst < 0 {
		add(fKubeAPIBurst, strconv.Itoa(int(o.KubeAPIBurst)), "must not be negative")
	}
	ct := o.Conntrack
	for _, n := range []struct {
		f field
		v int32
	}{{fConntrackMaxPerCore, ct.MaxPerCore}, {fConntrackMin, ct.Min}} {
		if n.v < 0 {
			add(n.f, strconv.Itoa(int(n.v)), "must not be negative")
		}
	}
	for _, d := range []struct {
		f field
		v time.Duration
	}{{fConntrackTCPEstablished, ct.TCPEstablishedTimeout}, {fConntrackTCPCloseWait, ct.TCPCloseWaitTimeout},
		{fConntrackUDPTimeout, ct.UDPTimeout}, {fConntrackUDPStreamTimeout, ct.UDPStreamTimeout}} {
		if d.v < 0 {
			add(d.f, d.v.String(), "must not be negative (0 leaves the kernel's value)")
		}
	}
	if !(o.SyncCPUShare > 0 && o.SyncCPUShare <= 1) {
		lines = append(lines, `invalid --sync-cpu-share "`+strconv.FormatFloat(o.SyncCPUShare, 'g', -1, 64)+`": want a share of one CPU, greater than 0 and at most 1 (1 turns the bound off)`)
	}
	if o.GracefulTerminationTimeout < 0 {
		lines = append(lines, `invalid --graceful-termination-timeout "`+o.GracefulTerminationTimeout.String()+`": must not be negative (0 deletes at once)`)
	}

	if len(lines) == 0 {
		return nil
	}
	return errors.New(strings.Join(lines, "\n"))
}

// hostPort checks a bind address the way kube-proxy does: IP:port.
func hostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "want IP:port, e.g. 0.0.0.0:10256 or [::]:10256"
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "host " + strconv.Quote(host) + " is not an IP address"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "port " + strconv.Quote(port) + " is not a number from 1 to 65535"
	}
	return ""
}

// dualStack allows one CIDR or a dual-stack pair, as kube-proxy does.
func dualStack(prefixes []netip.Prefix) string {
	var v4, v6 int
	for _, p := range prefixes {
		if p.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		return "want one CIDR, or one IPv4 and one IPv6 CIDR for dual-stack"
	}
	return ""
}

func joinPrefixes(prefixes []netip.Prefix) string {
	s := make([]string, len(prefixes))
	for i, p := range prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
