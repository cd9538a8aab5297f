package kubeproxy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// FakeIPSets is the kernel's sets by name. Like the kernel it refuses to
// destroy a set that a rule still matches on, if told how to ask (InUse).
type FakeIPSets struct {
	mu   sync.Mutex
	sets map[string]bool
	// InUse reports whether a rule matches on the set, e.g. a
	// FakeIPTables' MatchesSet.
	InUse func(name string) bool
	// Writes counts every Destroy.
	Writes int
	// FailOn makes Destroy of the named set fail.
	FailOn map[string]error
}

var _ IPSets = &FakeIPSets{}

func NewFakeIPSets(names ...string) *FakeIPSets {
	f := &FakeIPSets{sets: map[string]bool{}, FailOn: map[string]error{}}
	for _, n := range names {
		f.sets[n] = true
	}
	return f
}

// Dump prints the set names sorted, one a line, as `ipset list -n | sort`.
func (f *FakeIPSets) Dump() string {
	names, _ := f.List()
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + "\n")
	}
	return b.String()
}

func (f *FakeIPSets) List() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.sets))
	for n := range f.sets {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

func (f *FakeIPSets) Destroy(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Writes++
	switch {
	case f.FailOn[name] != nil:
		return f.FailOn[name]
	case !f.sets[name]:
		return nil // as the kernel answers over netlink
	case f.InUse != nil && f.InUse(name):
		return fmt.Errorf("destroy ipset %s: set is in use by a kernel component", name)
	}
	delete(f.sets, name)
	return nil
}
