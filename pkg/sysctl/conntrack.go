package sysctl

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Conntrack is kube-proxy's conntrack configuration (conntrack.* in a
// KubeProxyConfiguration, --conntrack-* flags). A zero field leaves the
// kernel's value alone; MaxPerCore 0 also makes Min unused.
type Conntrack struct {
	MaxPerCore, Min                            int32
	TCPEstablishedTimeout, TCPCloseWaitTimeout time.Duration
	TCPBeLiberal                               bool
	UDPTimeout, UDPStreamTimeout               time.Duration
}

// DefaultConntrack is kube-proxy v1.37's defaulting of its conntrack
// configuration.
func DefaultConntrack() Conntrack {
	return Conntrack{
		MaxPerCore:            32 * 1024,
		Min:                   128 * 1024,
		TCPEstablishedTimeout: 24 * time.Hour,
		TCPCloseWaitTimeout:   time.Hour,
	}
}

const (
	conntrackMax = "net/netfilter/nf_conntrack_max"
	// HashsizeParam is the nf_conntrack module's hashsize under
	// /sys/module (see NewModuleParams).
	HashsizeParam = "nf_conntrack/parameters/hashsize"
)

// maxScaledConntrack is kube-proxy's cap on MaxPerCore × cpus (1M), which
// keeps a many-core node's table from taking excessive memory.
const maxScaledConntrack = 1048576

// ConntrackMax is the nf_conntrack_max kube-proxy asks for (its
// getConntrackMax): MaxPerCore × cpus, capped at 1M, or Min when that is
// larger than the uncapped product; 0 when MaxPerCore is 0 (leave it).
func ConntrackMax(c Conntrack, cpus int) int {
	if c.MaxPerCore <= 0 {
		return 0
	}
	scaled := int(c.MaxPerCore) * cpus
	if scaled > maxScaledConntrack {
		return maxScaledConntrack // before Min, as kube-proxy's order has it
	}
	return max(scaled, int(c.Min))
}

// ApplyConntrack applies c as kube-proxy does at start: nf_conntrack_max
// raised to ConntrackMax (never lowered: kube-proxy sets it only when the
// kernel's is smaller, so a node tuned higher keeps its table), the
// module's hashsize raised to a quarter of it (the kernel's own ratio;
// never lowered), and each non-zero timeout written as seconds. sys is
// /proc/sys, params is /sys/module. It returns one line per change, for
// the log, and goes on past failures, returning them joined.
func ApplyConntrack(sys, params Interface, c Conntrack, cpus int) (changed []string, err error) {
	var errs []error
	if want := ConntrackMax(c, cpus); want > 0 {
		ch, err := raise(sys, conntrackMax, want)
		changed, errs = append(changed, ch...), append(errs, err)
		if err == nil {
			ch, err := raise(params, HashsizeParam, want/4)
			changed, errs = append(changed, ch...), append(errs, err)
		}
	}
	var settings []Setting
	seconds := func(name string, d time.Duration, why string) {
		if d > 0 {
			settings = append(settings, Setting{Name: "net/netfilter/" + name, Value: strconv.Itoa(int(d / time.Second)), Why: why})
		}
	}
	seconds("nf_conntrack_tcp_timeout_established", c.TCPEstablishedTimeout, "conntrack.tcpEstablishedTimeout")
	seconds("nf_conntrack_tcp_timeout_close_wait", c.TCPCloseWaitTimeout, "conntrack.tcpCloseWaitTimeout")
	if c.TCPBeLiberal {
		settings = append(settings, Setting{Name: "net/netfilter/nf_conntrack_tcp_be_liberal", Value: "1", Why: "conntrack.tcpBeLiberal"})
	}
	seconds("nf_conntrack_udp_timeout", c.UDPTimeout, "conntrack.udpTimeout")
	seconds("nf_conntrack_udp_timeout_stream", c.UDPStreamTimeout, "conntrack.udpStreamTimeout")
	ch, err := Apply(sys, settings)
	return append(changed, ch...), errors.Join(append(errs, err)...)
}

// raise sets name to want if it is lower; a larger value someone chose is
// kept.
func raise(s Interface, name string, want int) ([]string, error) {
	cur, err := s.Get(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if n, err := strconv.Atoi(cur); err == nil && n >= want {
		return nil, nil
	}
	if err := s.Set(name, strconv.Itoa(want)); err != nil {
		return nil, fmt.Errorf("set %s to %d: %w", name, want, err)
	}
	return []string{fmt.Sprintf("%s: %s -> %d", name, cur, want)}, nil
}
