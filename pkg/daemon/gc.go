package daemon

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// resyncGCPercent is the Go collector's target while a periodic resync
// runs (see gcRelax).
const resyncGCPercent = 100

// maxRelax is how long the raised target may stay out. In the test VM a
// resync took 1.5 s at 5,000 Services and 3 s at 10,000, but up to 14 s
// when a storm of changes took the CPU, and the storm's garbage then
// filled the raised target's headroom again and again: at 5,000 Services
// the heap reached twice its live size. After maxRelax the rest of the
// resync runs at the lean target.
const maxRelax = 5 * time.Second

// setGCPercent is debug.SetGCPercent, gcCycles the count of collections
// the runtime has finished, and heapSizes the heap marked live by the last
// collection and the heap now (objects not yet freed included); tests
// stand in for them.
var (
	setGCPercent = debug.SetGCPercent
	gcCycles     = func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	heapSizes = func() (live, now uint64) {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64(), s[1].Value.Uint64()
	}
)

// gcRelax raises the collector's target for a periodic resync and returns
// what to put back (-1 when nothing is to be put back: an operator's
// higher GOGC, or off, is kept). A resync's read and rebuild make
// short-lived garbage, MBs at 5,000 Services, while changes go on and make
// theirs. At ipvs-proxy's lean target (40, cmd/ipvs-proxy/gc.go) that was
// collections within the resync, and in the test VM every change near the
// resync that took over 65 ms fell in one of their mark phases, which took
// a vCPU while the read took the other. At 100 the garbage fits the
// headroom.
func gcRelax() int {
	prev := setGCPercent(resyncGCPercent)
	if prev < 0 || prev >= resyncGCPercent {
		setGCPercent(prev)
		return -1
	}
	return prev
}

// relaxGC raises the collector's target for a resync about to read. The
// target lets the heap grow to twice what the last collection marked, from
// wherever it stands. A resync used to collect first, on its read's
// goroutine, so that it started from its live heap; that did not lower the
// peak in the test VM (75.4 MiB at 5,000 Services without it, 76.9 with
// it), and at 10,000 its mark phase took 100-130 ms at the read's start,
// where the change then in flight took 101 ms against a median of 55.
func (d *daemon) relaxGC() {
	switch {
	case d.gcRelaxed:
	case d.gcPending:
		// The last resync's target is still out: what to put back is
		// the same.
		setGCPercent(resyncGCPercent)
		d.gcRelaxed, d.gcPending, d.gcRelaxedAt = true, false, d.Clock.Now()
	default:
		d.gcPrev, d.gcRelaxed, d.gcRelaxedAt = gcRelax(), true, d.Clock.Now()
	}
}

// resyncOver lowers the collector's target when a resync is done or void:
// to the lean target if the heap is within its goal, else (leanTarget) to
// a target whose goal is just above the heap, and to the lean target after
// the next collection (restoreGC). Lowered to the lean target with the
// resync's garbage in the heap, the collector starts at once, and in the
// test VM its mark phase fell on the changes of the moment; left at 100
// until the next collection, it stayed there from one resync to the next
// when no collection came in the 30 s between them, and at 5,000 Services
// the heap drifted to twice its live size (72 MB).
func (d *daemon) resyncOver() {
	if !d.gcRelaxed {
		return
	}
	d.gcRelaxed = false
	if d.gcPrev < 0 {
		return
	}
	live, now := heapSizes()
	target := leanTarget(d.gcPrev, live, now)
	setGCPercent(target)
	d.gcPending, d.gcEndCycles = target != d.gcPrev, gcCycles()
}

// restoreGC lowers a raised target that has been out for maxRelax, as
// resyncOver does, and puts the lean target back once a collection has
// finished since resyncOver left a higher one. Each run of the sync loop
// looks.
func (d *daemon) restoreGC() {
	if d.gcRelaxed && d.Clock.Since(d.gcRelaxedAt) >= maxRelax {
		d.resyncOver()
	}
	if d.gcPending && gcCycles() > d.gcEndCycles {
		setGCPercent(d.gcPrev)
		d.gcPending = false
	}
}

// leanTarget is the lean target, unless a heap of now bytes is past its
// goal for live bytes marked by the last collection: then the target whose
// goal is now plus some headroom (4 MB, or a tenth of live), so that the
// next collection comes with the next few MB allocated rather than at
// once, and the heap does not grow further than that first.
func leanTarget(lean int, live, now uint64) int {
	if live == 0 || now*100 <= live*uint64(100+lean) {
		return lean
	}
	headroom := max(4<<20, live/10)
	return min(max(int((now+headroom-live)*100/live), lean), resyncGCPercent)
}
