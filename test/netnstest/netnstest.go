//go:build linux

// Package netnstest gives a test a network namespace of its own, so that
// tests against the host kernel (rtnetlink, ipset, iptables, conntrack)
// never touch the host's.
package netnstest

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Enter moves the test's goroutine into a new, empty network namespace,
// or skips the test where that cannot be done (not root; see Skipf). The thread stays
// locked and is thrown away when the test ends, so the host's namespace is
// never touched. Everything after it must run on this goroutine: no t.Run,
// no t.Parallel. Commands started meanwhile, and sockets opened, are in the
// namespace. Calling it again gives a fresh one.
func Enter(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skipf(t, "needs root to create a network namespace")
	}
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		Skipf(t, "cannot create a network namespace: %v", err)
	}
}

// Skipf skips a kernel test this machine cannot run: not root, no network
// namespaces, no ipset or iptables binary, a kernel without a feature the
// test needs. Under CI=true it fails the test instead: CI (.ci/run) runs as
// root on a machine hack/vm-deps.sh has set up, where every such test must
// run, so a skip there would hide a test that no longer runs anywhere.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run under CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}
