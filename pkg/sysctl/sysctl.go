// Package sysctl sets the kernel settings that IPVS load balancing needs,
// the same ones kube-proxy's IPVS mode sets. Required decides them (a pure
// function of the options and the kernel version); Apply writes only those
// that differ, through Interface, which is /proc/sys on Linux and a map in
// tests.
package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
)

// Interface reads and writes sysctls by their /proc/sys path, e.g.
// "net/ipv4/vs/conntrack". A missing sysctl is an error that
// errors.Is(err, fs.ErrNotExist).
type Interface interface {
	Get(name string) (string, error)
	Set(name, value string) error
}

// Setting is one sysctl value and the reason it is needed, for logs.
type Setting struct {
	Name, Value, Why string
}

const (
	connReuseMode = "net/ipv4/vs/conn_reuse_mode"
	vsDir         = "net/ipv4/vs/"
)

// Required lists the sysctls ipvs-proxy needs, in the order kube-proxy sets
// them. kernelVersion is `uname -r` (e.g. "6.1.0-28-amd64"); when it
// cannot be parsed, conn_reuse_mode is left alone, since the wrong value
// on a 5.9+ kernel breaks rolling updates (see below).
func Required(strictARP bool, kernelVersion string) []Setting {
	out := []Setting{{
		Name: "net/ipv4/vs/conntrack", Value: "1",
		Why: "IPVS connections must go through conntrack so that iptables can masquerade them",
	}}
	if major, minor, ok := parseKernelVersion(kernelVersion); ok && atLeast(major, minor, 4, 1) && !atLeast(major, minor, 5, 9) {
		out = append(out, Setting{
			Name: connReuseMode, Value: "0",
			Why: "kernels 4.1 to 5.8 stall a new connection that reuses a source port for 1s with mode 1 (kubernetes#81775); " +
				"5.9 fixed that, so newer kernels keep mode 1, which sends such connections to a live endpoint (kubernetes#93297)",
		})
	}
	out = append(out,
		Setting{
			Name: "net/ipv4/vs/expire_nodest_conn", Value: "1",
			Why: "drop the connections of a deleted real server at once, so clients retry instead of hanging until timeout",
		},
		Setting{
			Name: "net/ipv4/vs/expire_quiescent_template", Value: "1",
			Why: "expire session affinity to a weight-0 (terminating) real server, so affinity moves to a live one",
		},
		Setting{
			Name: "net/ipv4/ip_forward", Value: "1",
			Why: "forward Service traffic to endpoints on other nodes",
		},
	)
	if strictARP {
		out = append(out,
			Setting{
				Name: "net/ipv4/conf/all/arp_ignore", Value: "1",
				Why: "strict ARP: answer ARP only for addresses of the receiving interface, not for Service IPs on the dummy interface",
			},
			Setting{
				Name: "net/ipv4/conf/all/arp_announce", Value: "2",
				Why: "strict ARP: never use a Service IP as the source of ARP requests",
			},
		)
	}
	return out
}

// parseKernelVersion reads major and minor from a release string such as
// "3.10.0-1160.el7.x86_64" or "6.1.0-28-amd64".
func parseKernelVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(leadingDigits(parts[1]))
	return major, minor, err1 == nil && err2 == nil
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func atLeast(major, minor, wantMajor, wantMinor int) bool {
	return major > wantMajor || major == wantMajor && minor >= wantMinor
}

// Apply sets each setting whose current value differs and returns one
// "name: old -> new" line per change, for the log. It goes on past a
// failing setting and returns all failures joined. A missing
// net/ipv4/vs means the ip_vs module is not loaded: that is reported
// once, with how to load it.
func Apply(s Interface, settings []Setting) (changed []string, err error) {
	var errs []error
	vsMissing := false
	for _, st := range settings {
		isVS := strings.HasPrefix(st.Name, vsDir)
		if isVS && vsMissing {
			continue
		}
		cur, err := s.Get(st.Name)
		if err != nil {
			if isVS && errors.Is(err, fs.ErrNotExist) {
				vsMissing = true
				errs = append(errs, fmt.Errorf("sysctl %s does not exist: the ip_vs kernel module is not loaded; "+
					`run "modprobe ip_vs" on the node, and add ip_vs to /etc/modules-load.d/ so it loads at boot`, st.Name))
				continue
			}
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", st.Name, err))
			continue
		}
		if cur == st.Value {
			continue
		}
		if err := s.Set(st.Name, st.Value); err != nil {
			hint := ""
			if errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) {
				hint = " (/proc/sys is read-only here: ipvs-proxy must run in a privileged container)"
			}
			errs = append(errs, fmt.Errorf("set sysctl %s to %s: %w%s", st.Name, st.Value, err, hint))
			continue
		}
		changed = append(changed, fmt.Sprintf("%s: %s -> %s", st.Name, cur, st.Value))
	}
	return changed, errors.Join(errs...)
}
