package model

import "fmt"

// Schedulers ipvs-proxy accepts. wrr and mh need their kernel modules
// (ip_vs_wrr, ip_vs_mh); rr, lc and sh are what most users pick.
var schedulers = map[string]bool{"rr": true, "lc": true, "sh": true, "wrr": true, "mh": true}

// ValidScheduler reports whether name is a scheduler ipvs-proxy programs.
func ValidScheduler(name string) error {
	if !schedulers[name] {
		return fmt.Errorf("unknown IPVS scheduler %q (want one of rr, lc, sh, wrr, mh)", name)
	}
	return nil
}

// schedulerFor is the Service's annotation when it is valid, else the
// global default; a bad annotation is a problem, never a failure.
func schedulerFor(annotations map[string]string, global string) (string, string) {
	want, ok := annotations[SchedulerAnnotation]
	if !ok {
		return global, ""
	}
	if err := ValidScheduler(want); err != nil {
		return global, fmt.Sprintf("annotation %s: %v; using %q", SchedulerAnnotation, err, global)
	}
	return want, ""
}
