package daemon

import (
	"runtime/debug"
	"runtime/metrics"
)

// resyncGCPercent is the Go collector's target while a periodic resync
// runs (see gcRelax).
const resyncGCPercent = 100

// setGCPercent is debug.SetGCPercent, and gcCycles the count of the
// collections the runtime has finished; tests stand in for both.
var (
	setGCPercent = debug.SetGCPercent
	gcCycles     = func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
)

// relaxedGC is the collector's target raised for a periodic resync, and
// what puts it back.
type relaxedGC struct {
	prev int
	// ended says the resync is over; endCycles is gcCycles then.
	ended     bool
	endCycles uint64
}

// gcRelax raises the collector's target for a periodic resync (nil: an
// operator's higher GOGC, or off, is kept). A resync's read and rebuild
// make tens of MB of short-lived garbage at 5,000 Services. At
// ipvs-proxy's lean target (40, cmd/ipvs-proxy/gc.go) that was four
// collections within the resync's 2.7 s in the test VM, and every change
// near the resync that took over 65 ms fell in one of their mark phases,
// which took a vCPU while the read took the other. At 100 the garbage
// mostly fits the headroom.
func gcRelax() *relaxedGC {
	prev := setGCPercent(resyncGCPercent)
	if prev < 0 || prev >= resyncGCPercent {
		setGCPercent(prev)
		return nil
	}
	return &relaxedGC{prev: prev}
}

// relaxGC raises the collector's target for a resync about to read,
// unless it is still raised from the last one.
func (d *daemon) relaxGC() {
	if d.gc == nil {
		d.gc = gcRelax()
	} else {
		d.gc.ended = false
	}
}

// resyncOver notes that a resync is done or void. The target is put back
// after the runtime's next collection (restoreGC), not now: with the
// resync's garbage in the heap, lowering it at once starts a collection
// at once, one more than the runtime would make. In the test VM its mark
// phase (159 ms at 5,000 Services) fell on the changes of the moment, the
// largest latency of its resync.
func (d *daemon) resyncOver() {
	if d.gc != nil && !d.gc.ended {
		d.gc.ended, d.gc.endCycles = true, gcCycles()
	}
}

// restoreGC puts the lean target back once a collection has finished
// since the resync ended: the heap is then about its live size, below
// the lean target's goal. Each run of the sync loop looks; on a quiet node
// the target stays raised until the next run, which costs nothing while
// nothing allocates.
func (d *daemon) restoreGC() {
	if d.gc != nil && d.gc.ended && gcCycles() > d.gc.endCycles {
		setGCPercent(d.gc.prev)
		d.gc = nil
	}
}
