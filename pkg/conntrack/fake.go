package conntrack

import (
	"slices"
	"sync"
)

// Fake is a conntrack table in memory. DeleteFlows decides with the same
// matcher as the Linux implementation, so what a test sees deleted here is
// what the kernel would lose.
type Fake struct {
	mu      sync.Mutex
	entries []Entry

	// Calls records every DeleteFlows request, including those that
	// matched nothing, so a test can check what the caller asked for.
	Calls [][]Flow
	// Deleted records the entries deleted, in table order within a call.
	Deleted []Entry
}

var _ Interface = &Fake{}

// NewFake returns a table holding entries.
func NewFake(entries ...Entry) *Fake {
	return &Fake{entries: slices.Clone(entries)}
}

// Add puts entries into the table, as client traffic would.
func (f *Fake) Add(entries ...Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, entries...)
}

func (f *Fake) DeleteFlows(flows []Flow) (int, error) {
	v4, v6, err := newMatchers(flows)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, slices.Clone(flows))
	slices.SortFunc(f.entries, compareEntries)
	kept := f.entries[:0]
	n := 0
	for _, e := range f.entries {
		if v4.match(e) || v6.match(e) {
			f.Deleted = append(f.Deleted, e)
			n++
			continue
		}
		kept = append(kept, e)
	}
	f.entries = kept
	return n, err
}

// String prints the remaining entries with Format.
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Format(f.entries)
}
