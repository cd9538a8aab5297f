package options

import (
	"errors"
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
	if why := hostPort(o.HealthzBindAddress); why != "" {
		add(fHealthzBindAddress, o.HealthzBindAddress, why)
	}
	if why := hostPort(o.MetricsBindAddress); why != "" {
		add(fMetricsBindAddress, o.MetricsBindAddress, why)
	}
	if !(o.SyncCPUShare > 0 && o.SyncCPUShare <= 1) {
		lines = append(lines, `invalid --sync-cpu-share "`+strconv.FormatFloat(o.SyncCPUShare, 'g', -1, 64)+`": want a share of one CPU, greater than 0 and at most 1 (1 turns the bound off)`)
	}
	if o.StateFile == "" {
		lines = append(lines, `invalid --state-file "": must not be empty`)
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
