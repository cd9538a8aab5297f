package daemon

import (
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
)

// The periodic resync reads the whole kernel, which takes seconds at
// thousands of Services (in the test VM at 5,000: 2.5 s for IPVS, 2 s for
// the sets). So it reads on its own goroutine while the sync loop goes on
// with endpoint changes, and only the diff and the writes run in the loop
// (see proxier.BeginRead). The first sync, and the one after a failed
// write, read in the loop: nothing else runs then.

// startRead starts a periodic resync's read, unless one is under way.
func (d *daemon) startRead() {
	if d.reading != nil {
		return
	}
	d.Proxier.BeginRead()
	ch := make(chan proxier.Snapshot, 1)
	d.reading = ch
	go func() {
		ch <- d.Proxier.ReadKernel()
		d.kick() // the resync runs at the next sync
	}()
}

// takeSnapshot returns the read started by startRead, if it is done.
func (d *daemon) takeSnapshot() (proxier.Snapshot, bool) {
	if d.reading == nil {
		return proxier.Snapshot{}, false
	}
	select {
	case s := <-d.reading:
		d.reading = nil
		return s, true
	default:
		return proxier.Snapshot{}, false
	}
}
