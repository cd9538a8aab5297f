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
		go func() {
			<-d.Clock.After(delay)
			d.changes.Mark(n)
		}()
	}
	d.Metrics.SetServicesFailing(len(d.failing))
}

// retryDelay is the wait before a failing Service's attempt after its
// attempt-th failure in a row.
func retryDelay(attempt int) time.Duration {
	if attempt < 20 && retryBase<<(attempt-1) < retryMax {
		return retryBase << (attempt - 1)
	}
	return retryMax
}
