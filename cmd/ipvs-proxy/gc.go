package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the Go GC target ipvs-proxy runs with unless GOGC is
// set. Its heap is mostly long-lived (the informer caches and the state
// built from them) and its garbage comes in bursts, when a full sync
// builds every Service. At Go's default of 100 the heap grows to twice the
// live set before a collection, so those bursts set the peak memory that
// every node has to reserve; at 40 it grows to 1.4 times. The cost is more
// frequent collections during a full sync, and almost none in between: an
// endpoint change allocates a few kilobytes. `make bench` measures both.
const defaultGCPercent = 40

// setGCPercent applies defaultGCPercent unless the operator chose a GOGC.
func setGCPercent() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
