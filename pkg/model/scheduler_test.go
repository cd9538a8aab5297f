package model

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestValidScheduler(t *testing.T) {
	for _, s := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"} {
		if err := ValidScheduler(s); err != nil {
			t.Errorf("ValidScheduler(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "RR", "round-robin", "ip_vs_rr"} {
		if err := ValidScheduler(s); err == nil {
			t.Errorf("ValidScheduler(%q) accepted", s)
		}
	}
}

// TestSchedulerAnnotations: the scheduler and its flags as a Service's
// annotations ask, in the dump as ipvsadm -Ln prints them; a bad value is
// a problem (an Event) and falls back.
func TestSchedulerAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		global      string
		want        string
	}{
		{"a scheduler beyond the old five", map[string]string{SchedulerAnnotation: "wlc"}, "rr",
			"TCP  10.96.0.10:80 wlc                    # ns/web:http\n"},
		{"sh with both flags", map[string]string{SchedulerAnnotation: "sh", SchedulerFlagsAnnotation: "sh-fallback,sh-port"}, "rr",
			"TCP  10.96.0.10:80 sh (sh-fallback,sh-port) # ns/web:http\n"},
		{"flags for the global scheduler", map[string]string{SchedulerFlagsAnnotation: "mh-port"}, "mh",
			"TCP  10.96.0.10:80 mh (mh-port)           # ns/web:http\n"},
		{"flags of another scheduler", map[string]string{SchedulerAnnotation: "mh", SchedulerFlagsAnnotation: "sh-port"}, "rr",
			"TCP  10.96.0.10:80 mh (mh-port)           # ns/web:http\n" +
				"vip 10.96.0.10\nproblem: annotation ipvs-proxy.io/scheduler-flags: unknown flag \"sh-port\" for scheduler mh (want mh-fallback, mh-port); using its default flags (mh-port)\n"},
		// kube-proxy sets mh-port on every virtual server under mh.
		{"mh without flags: mh-port, as kube-proxy", nil, "mh",
			"TCP  10.96.0.10:80 mh (mh-port)           # ns/web:http\n"},
		{"mh by annotation without flags", map[string]string{SchedulerAnnotation: "mh"}, "rr",
			"TCP  10.96.0.10:80 mh (mh-port)           # ns/web:http\n"},
		{"mh with flags asked for", map[string]string{SchedulerFlagsAnnotation: "mh-fallback"}, "mh",
			"TCP  10.96.0.10:80 mh (mh-fallback)       # ns/web:http\n"},
		{"mh with no flags asked for", map[string]string{SchedulerFlagsAnnotation: ""}, "mh",
			"TCP  10.96.0.10:80 mh                     # ns/web:http\n"},
		{"a bad scheduler falls back to mh's default flags", map[string]string{SchedulerAnnotation: "shh"}, "mh",
			"TCP  10.96.0.10:80 mh (mh-port)           # ns/web:http\n" +
				"vip 10.96.0.10\nproblem: annotation ipvs-proxy.io/scheduler: unknown IPVS scheduler \"shh\" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos); using \"mh\"\n"},
		{"flags for a scheduler without any", map[string]string{SchedulerFlagsAnnotation: "sh-port"}, "rr",
			"TCP  10.96.0.10:80 rr                     # ns/web:http\n" +
				"vip 10.96.0.10\nproblem: annotation ipvs-proxy.io/scheduler-flags: scheduler \"rr\" has no flags (only sh and mh do); using no flags\n"},
		{"a bad scheduler drops its flags with it", map[string]string{SchedulerAnnotation: "shh", SchedulerFlagsAnnotation: "sh-port"}, "rr",
			"TCP  10.96.0.10:80 rr                     # ns/web:http\n" +
				"vip 10.96.0.10\nproblem: annotation ipvs-proxy.io/scheduler: unknown IPVS scheduler \"shh\" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos); using \"rr\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			o.Scheduler = tc.global
			svc := service("web", func(s *v1.Service) { s.Annotations = tc.annotations })
			got := NewBuilder(o).Service(ServiceInput{Service: ServiceFrom(svc)}).Dump()
			want := header + tc.want
			if !strings.Contains(tc.want, "problem:") {
				want += "vip 10.96.0.10\n"
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("dump (-want +got):\n%s", d)
			}
		})
	}
}
