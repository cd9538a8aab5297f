package watch

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient/kubeclienttest"
	"k8s.io/client-go/kubernetes/fake"
)

// The start waits in WaitSynced: it must end when the initial list has
// reached the handlers, not at the next tick of a poll. In a synctest
// bubble the clock moves only when every goroutine waits on it, so a
// wait that polls (cache.WaitForCacheSync checks every 100 ms) shows as
// time gone by, and one on the checkers as none.
func TestSyncedWaitsWithoutPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lw := kubeclienttest.Clientset{Interface: fake.NewClientset(world...)}
		src, err := NewSource(lw.ListWatch("services", nil), lw.ListWatch("endpointslices", nil), NewChanges(func(Change) {}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		waited := make(chan time.Duration, 1)
		go func() {
			if !src.WaitSynced(ctx) {
				t.Error("caches did not sync")
			}
			waited <- time.Since(start)
		}()
		synctest.Wait() // the waiter is waiting before any informer runs
		var running sync.WaitGroup
		for _, inf := range src.Informers() {
			running.Go(func() { inf.RunWithContext(ctx) })
		}
		if d := <-waited; d != 0 {
			t.Errorf("the wait for the caches ended %s after they synced, want at once", d)
		}
		cancel()
		running.Wait()
	})
}
