package ipvs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Schedulers are the schedulers Linux's IPVS has (net/netfilter/ipvs,
// one ip_vs_NAME module each). Which of them a node can load is
// SchedulerAvailable's question.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// IP_VS_SVC_F_SCHED1..3: a scheduler's own flags. What each means is the
// scheduler's business (schedFlagNames).
const (
	SchedFlag1     uint32 = 0x08
	SchedFlag2     uint32 = 0x10
	SchedFlag3     uint32 = 0x20
	schedFlagsMask        = SchedFlag1 | SchedFlag2 | SchedFlag3
)

// schedFlagNames are ipvsadm's names for the flags of the schedulers that
// have any; ipvsadm calls the others flag-1..flag-3.
var schedFlagNames = map[string][3]string{
	"sh": {"sh-fallback", "sh-port"},
	"mh": {"mh-fallback", "mh-port"},
}

var schedFlagBits = [3]uint32{SchedFlag1, SchedFlag2, SchedFlag3}

// SchedFlagNames names the flags set in flags, as ipvsadm prints them.
func SchedFlagNames(scheduler string, flags uint32) []string {
	var out []string
	for i, bit := range schedFlagBits {
		if flags&bit == 0 {
			continue
		}
		if name := schedFlagNames[scheduler][i]; name != "" {
			out = append(out, name)
		} else {
			out = append(out, fmt.Sprintf("flag-%d", i+1))
		}
	}
	return out
}

// ParseSchedFlags turns names ("sh-fallback,sh-port") into flags. Only
// the names of scheduler's own flags are accepted: a flag another
// scheduler would read differently is an error, not a surprise.
func ParseSchedFlags(scheduler string, names []string) (uint32, error) {
	own, ok := schedFlagNames[scheduler]
	if !ok {
		return 0, fmt.Errorf("scheduler %q has no flags (only sh and mh do)", scheduler)
	}
	var flags uint32
	for _, name := range names {
		name = strings.TrimSpace(name)
		i := slices.Index(own[:], name)
		if i < 0 || name == "" {
			return 0, fmt.Errorf("unknown flag %q for scheduler %s (want %s)", name, scheduler, strings.Join(slices.DeleteFunc(own[:], func(s string) bool { return s == "" }), ", "))
		}
		flags |= schedFlagBits[i]
	}
	return flags, nil
}

// ErrSchedulerUnknown is SchedulerAvailable's answer when it cannot tell:
// the scheduler's module is not loaded and the running kernel's module
// lists are not there to read (a container without /lib/modules). The
// kernel may still load it on first use.
var ErrSchedulerUnknown = errors.New("cannot tell whether the kernel has it")

// SchedulerAvailable reports whether this node's kernel has the IPVS
// scheduler: its module is loaded (root/sys/module/ip_vs_NAME), built in,
// or can be loaded (listed in the running kernel's modules.builtin or
// modules.dep). root is "/" except in tests.
func SchedulerAvailable(root, kernelRelease, name string) error {
	if !slices.Contains(Schedulers, name) {
		return fmt.Errorf("unknown IPVS scheduler %q (want one of %s)", name, strings.Join(Schedulers, ", "))
	}
	module := "ip_vs_" + name
	if _, err := os.Stat(filepath.Join(root, "sys/module", module)); err == nil {
		return nil
	}
	dir := filepath.Join(root, "lib/modules", kernelRelease)
	var errs []error
	read := 0
	for _, list := range []string{"modules.builtin", "modules.dep"} {
		data, err := os.ReadFile(filepath.Join(dir, list))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		read++
		for _, line := range strings.Split(string(data), "\n") {
			path, _, _ := strings.Cut(line, ":")
			base := filepath.Base(strings.TrimSpace(path))
			if base == module+".ko" || strings.HasPrefix(base, module+".ko.") {
				return nil
			}
		}
	}
	if read == 0 {
		return fmt.Errorf("IPVS scheduler %s: %s is not loaded and %s has no module lists: %w%s", name, module, dir, ErrSchedulerUnknown, errText(errors.Join(errs...)))
	}
	return fmt.Errorf("IPVS scheduler %s is not available: no %s in /sys/module, nor in %s/modules.builtin or modules.dep%s",
		name, module, dir, errText(errors.Join(errs...)))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}
