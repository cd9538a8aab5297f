package sysctl

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestConntrackMax(t *testing.T) {
	def := DefaultConntrack()
	for _, tc := range []struct {
		c    Conntrack
		cpus int
		want int
	}{
		{def, 2, 131072},   // 2 × 32768 < min
		{def, 4, 131072},   // equal
		{def, 8, 262144},   // scaled
		{def, 64, 1 << 20}, // capped at 1M, as kube-proxy's getConntrackMax
		{Conntrack{MaxPerCore: 32768, Min: 2_000_000}, 30, 2_000_000}, // min over scaled
		{Conntrack{MaxPerCore: 32768, Min: 2_000_000}, 40, 1 << 20},   // the cap before min, as kube-proxy
		{Conntrack{MaxPerCore: 0, Min: 500000}, 8, 0},                 // 0 leaves it alone, min unused
		{Conntrack{MaxPerCore: 1000, Min: 0}, 3, 3000},
	} {
		if got := ConntrackMax(tc.c, tc.cpus); got != tc.want {
			t.Errorf("ConntrackMax(%+v, %d) = %d, want %d", tc.c, tc.cpus, got, tc.want)
		}
	}
}

// conntrackKernel is /proc/sys and /sys/module with nf_conntrack loaded,
// at the kernel's defaults for a small machine.
func conntrackKernel() (Fake, Fake) {
	return Fake{
			"net/netfilter/nf_conntrack_max":                     "65536",
			"net/netfilter/nf_conntrack_tcp_timeout_established": "432000",
			"net/netfilter/nf_conntrack_tcp_timeout_close_wait":  "60",
			"net/netfilter/nf_conntrack_tcp_be_liberal":          "0",
			"net/netfilter/nf_conntrack_udp_timeout":             "30",
			"net/netfilter/nf_conntrack_udp_timeout_stream":      "120",
			"net/netfilter/nf_conntrack_generic_timeout":         "600", // not ours
		}, Fake{
			HashsizeParam: "16384",
		}
}

func TestApplyConntrack(t *testing.T) {
	all := Conntrack{MaxPerCore: 32768, Min: 131072, TCPEstablishedTimeout: 24 * time.Hour, TCPCloseWaitTimeout: time.Hour,
		TCPBeLiberal: true, UDPTimeout: 10 * time.Second, UDPStreamTimeout: 3 * time.Minute}
	for _, tc := range []struct {
		name       string
		c          Conntrack
		cpus       int
		preset     map[string]string // changes to the kernel before
		changed    string
		sys, param string // dumps after; "" means unchanged
	}{
		{"kube-proxy's defaults on 8 CPUs", DefaultConntrack(), 8, nil,
			`net/netfilter/nf_conntrack_max: 65536 -> 262144
nf_conntrack/parameters/hashsize: 16384 -> 65536
net/netfilter/nf_conntrack_tcp_timeout_established: 432000 -> 86400
net/netfilter/nf_conntrack_tcp_timeout_close_wait: 60 -> 3600`,
			`net/netfilter/nf_conntrack_generic_timeout = 600
net/netfilter/nf_conntrack_max = 262144
net/netfilter/nf_conntrack_tcp_be_liberal = 0
net/netfilter/nf_conntrack_tcp_timeout_close_wait = 3600
net/netfilter/nf_conntrack_tcp_timeout_established = 86400
net/netfilter/nf_conntrack_udp_timeout = 30
net/netfilter/nf_conntrack_udp_timeout_stream = 120
`, "nf_conntrack/parameters/hashsize = 65536\n"},
		{"every setting", all, 2, nil,
			`net/netfilter/nf_conntrack_max: 65536 -> 131072
nf_conntrack/parameters/hashsize: 16384 -> 32768
net/netfilter/nf_conntrack_tcp_timeout_established: 432000 -> 86400
net/netfilter/nf_conntrack_tcp_timeout_close_wait: 60 -> 3600
net/netfilter/nf_conntrack_tcp_be_liberal: 0 -> 1
net/netfilter/nf_conntrack_udp_timeout: 30 -> 10
net/netfilter/nf_conntrack_udp_timeout_stream: 120 -> 180`,
			`net/netfilter/nf_conntrack_generic_timeout = 600
net/netfilter/nf_conntrack_max = 131072
net/netfilter/nf_conntrack_tcp_be_liberal = 1
net/netfilter/nf_conntrack_tcp_timeout_close_wait = 3600
net/netfilter/nf_conntrack_tcp_timeout_established = 86400
net/netfilter/nf_conntrack_udp_timeout = 10
net/netfilter/nf_conntrack_udp_timeout_stream = 180
`, "nf_conntrack/parameters/hashsize = 32768\n"},
		{"zero leaves everything alone", Conntrack{}, 8, nil, "", "", ""},
		{"a larger max and a larger hashsize are kept, as kube-proxy keeps them", DefaultConntrack(), 8,
			map[string]string{"net/netfilter/nf_conntrack_max": "1000000", HashsizeParam: "250000"},
			`net/netfilter/nf_conntrack_tcp_timeout_established: 432000 -> 86400
net/netfilter/nf_conntrack_tcp_timeout_close_wait: 60 -> 3600`, `net/netfilter/nf_conntrack_generic_timeout = 600
net/netfilter/nf_conntrack_max = 1000000
net/netfilter/nf_conntrack_tcp_be_liberal = 0
net/netfilter/nf_conntrack_tcp_timeout_close_wait = 3600
net/netfilter/nf_conntrack_tcp_timeout_established = 86400
net/netfilter/nf_conntrack_udp_timeout = 30
net/netfilter/nf_conntrack_udp_timeout_stream = 120
`, "nf_conntrack/parameters/hashsize = 250000\n"},
		{"a small hashsize is raised to a quarter of the wanted max", DefaultConntrack(), 8,
			map[string]string{"net/netfilter/nf_conntrack_max": "262144", HashsizeParam: "1024"},
			`nf_conntrack/parameters/hashsize: 1024 -> 65536
net/netfilter/nf_conntrack_tcp_timeout_established: 432000 -> 86400
net/netfilter/nf_conntrack_tcp_timeout_close_wait: 60 -> 3600`, `net/netfilter/nf_conntrack_generic_timeout = 600
net/netfilter/nf_conntrack_max = 262144
net/netfilter/nf_conntrack_tcp_be_liberal = 0
net/netfilter/nf_conntrack_tcp_timeout_close_wait = 3600
net/netfilter/nf_conntrack_tcp_timeout_established = 86400
net/netfilter/nf_conntrack_udp_timeout = 30
net/netfilter/nf_conntrack_udp_timeout_stream = 120
`, "nf_conntrack/parameters/hashsize = 65536\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys, params := conntrackKernel()
			for k, v := range tc.preset {
				if _, ok := sys[k]; ok {
					sys[k] = v
				} else {
					params[k] = v
				}
			}
			sysBefore, paramsBefore := sys.Dump(), params.Dump()
			changed, err := ApplyConntrack(sys, params, tc.c, tc.cpus)
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "changed", tc.changed, strings.Join(changed, "\n"))
			diff(t, "/proc/sys", cmpOr(tc.sys, sysBefore), sys.Dump())
			diff(t, "/sys/module", cmpOr(tc.param, paramsBefore), params.Dump())
			// A second run changes nothing.
			if again, err := ApplyConntrack(sys, params, tc.c, tc.cpus); err != nil || len(again) > 0 {
				t.Errorf("second run: %q, %v; want nothing", again, err)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestApplyConntrackWithoutModule(t *testing.T) {
	changed, err := ApplyConntrack(Fake{}, Fake{}, DefaultConntrack(), 4)
	diff(t, "error", `read net/netfilter/nf_conntrack_max: open /proc/sys/net/netfilter/nf_conntrack_max: file does not exist
read sysctl net/netfilter/nf_conntrack_tcp_timeout_established: open /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established: file does not exist
read sysctl net/netfilter/nf_conntrack_tcp_timeout_close_wait: open /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait: file does not exist`, fmt.Sprint(err))
	if len(changed) > 0 {
		t.Errorf("changed %q", changed)
	}
}
