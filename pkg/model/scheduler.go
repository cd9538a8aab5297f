package model

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// SchedulerFlagsAnnotation sets one Service's IPVS scheduler flags, as
// ipvsadm's -b names them, comma-separated: "sh-fallback", "sh-port" with
// the sh scheduler, "mh-fallback", "mh-port" with mh.
const SchedulerFlagsAnnotation = "ipvs-proxy.io/scheduler-flags"

// ValidScheduler reports whether name is one of the kernel's IPVS
// schedulers. Whether this node can load it is checked at start
// (ipvs.SchedulerAvailable).
func ValidScheduler(name string) error {
	if !slices.Contains(ipvs.Schedulers, name) {
		return fmt.Errorf("unknown IPVS scheduler %q (want one of %s)", name, strings.Join(ipvs.Schedulers, ", "))
	}
	return nil
}

// schedulerFor is the Service's scheduler and its flags from the
// annotations when they are valid, else the global default with its
// default flags (defaultSchedFlags); a bad annotation is a problem, never
// a failure. An empty flags annotation asks for no flags.
func schedulerFor(annotations map[string]string, global string, unavailable map[string]bool) (sched string, flags uint32, problem string) {
	sched = global
	if want, ok := annotations[SchedulerAnnotation]; ok {
		if err := ValidScheduler(want); err != nil {
			return global, defaultSchedFlags(global), fmt.Sprintf("annotation %s: %v; using %q", SchedulerAnnotation, err, global)
		}
		if unavailable[want] {
			return global, defaultSchedFlags(global), fmt.Sprintf("annotation %s: this node's kernel has no IPVS scheduler %q (module ip_vs_%s); using %q", SchedulerAnnotation, want, want, global)
		}
		sched = want
	}
	names, ok := annotations[SchedulerFlagsAnnotation]
	if !ok {
		return sched, defaultSchedFlags(sched), ""
	}
	if strings.TrimSpace(names) == "" {
		return sched, 0, ""
	}
	flags, err := ipvs.ParseSchedFlags(sched, strings.Split(names, ","))
	if err != nil {
		def := defaultSchedFlags(sched)
		using := "no flags"
		if def != 0 {
			using = "its default flags (" + strings.Join(ipvs.SchedFlagNames(sched, def), ",") + ")"
		}
		return sched, def, fmt.Sprintf("annotation %s: %v; using %s", SchedulerFlagsAnnotation, err, using)
	}
	return sched, flags, ""
}

// defaultSchedFlags are a scheduler's flags when no annotation names them:
// mh hashes the source port as well as the address (mh-port), as
// kube-proxy sets it on every virtual server under --ipvs-scheduler=mh, so
// that one client's connections spread over the real servers instead of
// all going to one. Others have none.
func defaultSchedFlags(sched string) uint32 {
	if sched == "mh" {
		return ipvs.SchedFlag2
	}
	return 0
}
