package model

import "sync"

// maxInterned bounds the names table: a cluster has at most a few
// thousand nodes and fewer zones, and a table that outgrows this (nodes
// replaced by autoscaling for months, each under a new name) is dropped
// and started again rather than kept forever.
const maxInterned = 1 << 16

// names interns node and zone names, which every endpoint on a node
// repeats: the cache then holds one copy of each name, not one per
// endpoint.
//
// Not unique.Make: its lookup turns a weak pointer into a strong one,
// which parks the calling goroutine from the collector's first mark
// termination check until the mark phase ends. SliceFrom runs in the
// EndpointSlice informer's transform, on the watch's own goroutine, so
// every event behind it waited too: in the test VM at 10,000 Services an
// endpoint change waited 158 ms there, in a 238 ms mark phase. A plain
// map under a mutex never waits for the collector. Interning only shares
// memory: a name interned twice, across a reset, is still equal.
var names = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// intern returns the table's copy of s, adding s if it has none.
func intern(s string) string {
	names.Lock()
	defer names.Unlock()
	if v, ok := names.m[s]; ok {
		return v
	}
	if len(names.m) >= maxInterned {
		names.m = map[string]string{}
	}
	names.m[s] = s
	return s
}
