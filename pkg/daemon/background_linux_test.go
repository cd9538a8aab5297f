package daemon

import (
	"testing"

	"golang.org/x/sys/unix"
)

// threadNice is the niceness of the calling thread.
func threadNice(t *testing.T) int {
	t.Helper()
	// getpriority(2) returns 20 - nice, so that it is never negative.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - prio
}

// A resync's read runs niced, on one thread that outlives it, and leaves
// the rest of the process at its priority.
func TestRunInBackground(t *testing.T) {
	type seen struct{ tid, nice int }
	run := func() seen {
		ch := make(chan seen)
		runInBackground(func() { ch <- seen{unix.Gettid(), threadNice(t)} })
		return <-ch
	}
	first, second := run(), run()
	if first.nice != backgroundNice || second.nice != backgroundNice {
		t.Errorf("the reads ran at niceness %d and %d, want %d", first.nice, second.nice, backgroundNice)
	}
	if first.tid != second.tid {
		t.Errorf("the reads ran on threads %d and %d, want one thread kept for them", first.tid, second.tid)
	}
	if first.tid == unix.Getpid() {
		t.Errorf("the read ran on the process's main thread")
	}
	if n := threadNice(t); n == backgroundNice {
		t.Errorf("the test's own thread is at niceness %d too", n)
	}
}

// When the thread is busy and a read already waits for it, another read
// does not wait: it runs at once on a goroutine of its own.
func TestRunInBackgroundNeverWaits(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{})
	runInBackground(func() { close(running); <-release })
	<-running
	queued := make(chan struct{})
	runInBackground(func() { close(queued) }) // waits in the queue
	ran := make(chan struct{})
	runInBackground(func() { close(ran) })
	<-ran // a wait here would hang the test until its timeout
	close(release)
	<-queued
}
