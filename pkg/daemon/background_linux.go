package daemon

import (
	"runtime"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// backgroundNice is the niceness of the thread that reads the kernel for a
// periodic resync.
const backgroundNice = 10

// runInBackground runs fn on an OS thread of its own at a lower CPU
// priority, and lets the thread end with it. A resync's read is a second
// of CPU at 5,000 Services in the test VM, with nothing waiting for it;
// at the daemon's own priority it took a vCPU from the goroutines that
// carry an endpoint change (the watch, the handler, the sync loop), and
// changes during it took up to twice their usual time. Niced, the read
// runs when they do not. The thread is not reused: a goroutine that ends
// locked to its thread takes the thread with it, so no other goroutine
// inherits the niceness.
func runInBackground(fn func()) {
	go func() {
		runtime.LockOSThread()
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), backgroundNice); err != nil {
			klog.V(2).InfoS("Cannot lower the resync read's priority; it runs at the daemon's", "err", err)
		}
		fn()
	}()
}
