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
	for n := range synced {
		delete(d.failing, n)
	}
	for _, n := range failed {
		attempt := d.failing[n] + 1
		d.failing[n] = attempt
		delay := retryMax
		if attempt < 20 && retryBase<<(attempt-1) < retryMax {
			delay = retryBase << (attempt - 1)
		}
		go func() {
			<-d.Clock.After(delay)
			d.changes.Mark(n)
		}()
	}
	d.Metrics.SetServicesFailing(len(d.failing))
}
