package ipset

import (
	"errors"
	"fmt"
	"slices"
)

// Remover is the host's sets as `ipvs-proxy cleanup` needs them to remove
// another proxy's leftovers. It is the only way this package touches a set
// without the prefix, and it only destroys the sets a caller names; it
// reads no members.
type Remover interface {
	// DestroySets destroys every set on the host for which match is true,
	// in name order, and returns the names it destroyed. A set destroyed
	// meanwhile is success; one that a rule still matches on stays, with
	// an error wrapping ErrInUse.
	DestroySets(match func(name string) bool) (destroyed []string, errs []error)
}

var _ Remover = &Fake{}

// destroySets is DestroySets over a list of the host's set names and a
// destroy that takes any name.
func destroySets(names []string, match func(string) bool, destroy func(string) error) (destroyed []string, errs []error) {
	names = slices.Sorted(slices.Values(names))
	for _, name := range names {
		if !match(name) {
			continue
		}
		err := destroy(name)
		switch {
		case err == nil:
			destroyed = append(destroyed, name)
		case !errors.Is(err, ErrNotFound):
			errs = append(errs, fmt.Errorf("destroy ipset %s: %w", name, err))
		}
	}
	return destroyed, errs
}

// AddForeign makes empty sets of another program, which only Remover
// touches and Dump leaves out.
func (f *Fake) AddForeign(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range names {
		f.sets[n] = &fakeSet{set: Set{Name: n}, entries: map[Entry]Entry{}}
	}
}

// Names lists every set, ipvs-proxy's and others', sorted, as `ipset list
// -n | sort` prints them.
func (f *Fake) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.sets))
	for n := range f.sets {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (f *Fake) DestroySets(match func(name string) bool) ([]string, []error) {
	return destroySets(f.Names(), match, f.destroy)
}

// destroy is Destroy for any name.
func (f *Fake) destroy(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(name, "destroy "+name); err != nil {
		return err
	}
	if _, ok := f.sets[name]; ok && f.InUse != nil && f.InUse(name) {
		return ErrInUse
	}
	delete(f.sets, name)
	return nil
}
