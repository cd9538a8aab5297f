package daemon

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Retry delays for a Service whose writes fail: the first retry after
// retryBase, doubling up to retryMax, so that a Service that can never be
// written (a scheduler module the kernel lacks) costs the node a few
// kernel reads a minute, not a full resync on every sync.
const (
	retryBase = time.Second
	retryMax  = 5 * time.Minute
)

// retryFailed schedules the failed Services' next attempts and forgets the
// synced ones that no longer fail. It runs on the sync loop only.
func (d *daemon) retryFailed(synced map[types.NamespacedName]bool, failed []types.NamespacedName) {
	// A failed Service is among the synced ones: its count of attempts
	// must outlive this sync, or every retry would be the first.
	attempts := make(map[types.NamespacedName]int, len(failed))
	for _, n := range failed {
		attempts[n] = d.failing[n] + 1
	}
	for n := range synced {
		delete(d.failing, n)
	}
	for _, n := range failed {
		attempt := attempts[n]
		d.failing[n] = attempt
		delay := retryDelay(attempt)
		at := d.Clock.Now().Add(delay)
		if !d.retryBy(n, at) {
			continue // a retry is due sooner, and syncs whatever fails then
		}
		due := d.Clock.After(delay) // started now, not when the goroutine runs
		go func() {
			<-due
			if d.retryDue(n, at) {
				d.changes.Mark(n)
			}
		}()
	}
	d.Metrics.SetServicesFailing(len(d.failing))
}

// retryBy makes at n's next retry unless one is due no later, and says
// whether it did. One pending retry a Service: a Service that fails in
// every resync step and every change would otherwise start a timer each
// time, and at retryMax the chains, each re-arming itself, would retry it
// more and more often the longer the node runs.
func (d *daemon) retryBy(n types.NamespacedName, at time.Time) bool {
	d.retryMu.Lock()
	defer d.retryMu.Unlock()
	if due, ok := d.retryAt[n]; ok && !due.After(at) {
		return false
	}
	if d.retryAt == nil {
		d.retryAt = map[types.NamespacedName]time.Time{}
	}
	d.retryAt[n] = at
	return true
}

// retryDue reports whether the retry due at at is still n's pending one,
// and clears it: one replaced by a sooner retry has already run.
func (d *daemon) retryDue(n types.NamespacedName, at time.Time) bool {
	d.retryMu.Lock()
	defer d.retryMu.Unlock()
	if due, ok := d.retryAt[n]; !ok || !due.Equal(at) {
		return false
	}
	delete(d.retryAt, n)
	return true
}

// retryDelay is the wait before a failing Service's attempt after its
// attempt-th failure in a row.
func retryDelay(attempt int) time.Duration {
	if attempt < 20 && retryBase<<(attempt-1) < retryMax {
		return retryBase << (attempt - 1)
	}
	return retryMax
}
