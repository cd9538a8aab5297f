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
// annotations when they are valid, else the global default without flags;
// a bad annotation is a problem, never a failure.
func schedulerFor(annotations map[string]string, global string, unavailable map[string]bool) (sched string, flags uint32, problem string) {
	sched = global
	if want, ok := annotations[SchedulerAnnotation]; ok {
		if err := ValidScheduler(want); err != nil {
			return global, 0, fmt.Sprintf("annotation %s: %v; using %q", SchedulerAnnotation, err, global)
		}
		if unavailable[want] {
			return global, 0, fmt.Sprintf("annotation %s: this node's kernel has no IPVS scheduler %q (module ip_vs_%s); using %q", SchedulerAnnotation, want, want, global)
		}
		sched = want
	}
	names, ok := annotations[SchedulerFlagsAnnotation]
	if !ok {
		return sched, 0, ""
	}
	flags, err := ipvs.ParseSchedFlags(sched, strings.Split(names, ","))
	if err != nil {
		return sched, 0, fmt.Sprintf("annotation %s: %v; using no flags", SchedulerFlagsAnnotation, err)
	}
	return sched, flags, ""
}
