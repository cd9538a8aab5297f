package runner

import (
	"time"

	"golang.org/x/sys/unix"
)

// ThreadCPU is the CPU time (user and system) the calling OS thread has
// used, for Limits.Meter; 0 if the kernel cannot tell.
func ThreadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
