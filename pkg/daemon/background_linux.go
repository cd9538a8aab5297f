package daemon

import (
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// backgroundNice is the niceness of the thread that reads the kernel for a
// periodic resync.
const backgroundNice = 10

// background is one OS thread at a lower CPU priority that lives as long
// as the process, and runs a periodic resync's read.
//
// The read is about a second of CPU at 5,000 Services in the test VM, with
// nothing waiting for it. At the daemon's own priority it took a vCPU from
// the goroutines that carry an endpoint change (the watch, the handler,
// the sync loop), and changes during it took up to twice their usual
// time. Niced, it runs when they do not.
//
// The thread is never given back. A goroutine that ends locked to its
// thread ends the thread, and the kernel then sends the death signal of
// every child that asked for one (Pdeathsig) and was started from that
// thread while it served other goroutines. Unlocked, it would carry its
// niceness to whatever goroutine the scheduler put on it next. The Go
// runtime starts no threads from a locked one (it asks its template thread),
// so the niceness spreads nowhere.
var background struct {
	once sync.Once
	work chan func()
}

// runInBackground runs fn on the background thread, or, if the thread
// already has a read running and one waiting (tests run several daemons
// in one process; a daemon reads one at a time), on a goroutine of its own
// at the daemon's priority. It never waits for a read.
func runInBackground(fn func()) {
	background.once.Do(func() {
		background.work = make(chan func(), 1)
		startBackgroundThread(background.work)
	})
	select {
	case background.work <- fn:
	default:
		go fn()
	}
}

// startBackgroundThread starts the goroutine that runs what work is given,
// locked to a thread of its own at backgroundNice, for the life of the
// process. It returns once the goroutine has its thread.
func startBackgroundThread(work <-chan func()) {
	locked := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never undone on the thread that is kept: see background
		if unix.Gettid() == unix.Getpid() {
			// The main thread is not the one to keep: ps and top show
			// its niceness as the whole process's. While this goroutine
			// holds it, the goroutine started here gets another thread.
			startBackgroundThread(work)
			runtime.UnlockOSThread()
			close(locked)
			return
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), backgroundNice); err != nil {
			klog.V(2).InfoS("Cannot lower the resync read's priority; it runs at the daemon's", "err", err)
		}
		close(locked)
		for fn := range work {
			fn()
		}
	}()
	<-locked
}
