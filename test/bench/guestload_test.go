package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// guestLoad is what the whole guest spent during a case, beside the
// process under test: at 200 changes/s the writes' answers come back
// slower whenever a proxy runs, and only the guest's own figures tell a
// guest short of vCPUs (tasks wait to run) from a slow way to the API
// server. From /proc/schedstat, whose times come from the scheduler's
// clock at each switch (/proc/stat's come from ticks, which a task that
// wakes on a timer and sleeps before the next tick escapes): busyS is the
// time tasks ran on any vCPU, waitS the time runnable tasks waited for
// one, summed over tasks. benchS is the bench process's own CPU (the
// writer, the netlink tap's reader, the seers); cpus is the vCPU count.
type guestLoad struct {
	busyS, waitS, benchS float64
	cpus                 int
}

// readGuestLoad reads /proc/schedstat and the bench's own resource usage.
func readGuestLoad() (guestLoad, error) {
	data, err := os.ReadFile("/proc/schedstat")
	if err != nil {
		return guestLoad{}, err
	}
	l, err := parseSchedstat(string(data))
	if err != nil {
		return guestLoad{}, err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return guestLoad{}, err
	}
	l.benchS = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	return l, nil
}

// parseSchedstat sums the "cpuN" lines' run time and run delay (fields 7
// and 8, in nanoseconds since version 15; Documentation/scheduler/
// sched-stats.rst).
func parseSchedstat(text string) (guestLoad, error) {
	var l guestLoad
	version := ""
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "version":
			version = f[1]
		case len(f) > 0 && strings.HasPrefix(f[0], "cpu"):
			if len(f) < 9 {
				return guestLoad{}, fmt.Errorf("short line in /proc/schedstat: %q", line)
			}
			run, err1 := strconv.ParseInt(f[7], 10, 64)
			wait, err2 := strconv.ParseInt(f[8], 10, 64)
			if err1 != nil || err2 != nil {
				return guestLoad{}, fmt.Errorf("bad line in /proc/schedstat: %q", line)
			}
			l.busyS += float64(run) / 1e9
			l.waitS += float64(wait) / 1e9
			l.cpus++
		}
	}
	if v, err := strconv.Atoi(version); err != nil || v < 15 {
		return guestLoad{}, fmt.Errorf("/proc/schedstat version %q: want 15 or later (times in nanoseconds)", version)
	}
	if l.cpus == 0 {
		return guestLoad{}, fmt.Errorf("no cpu lines in /proc/schedstat")
	}
	return l, nil
}

// since is the load between two readings (cpus from the later one).
func (l guestLoad) since(before guestLoad) guestLoad {
	return guestLoad{busyS: l.busyS - before.busyS, waitS: l.waitS - before.waitS, benchS: l.benchS - before.benchS, cpus: l.cpus}
}
