package ipset

import (
	"fmt"
	"sync"
)

// Fake is in-memory sets that answer like the kernel where ipvs-proxy
// depends on it: adding to a missing set fails, deleting from one succeeds,
// an entry of the wrong family or shape fails, Ensure over a set of
// another type fails, and destroying a missing set succeeds.
type Fake struct {
	mu   sync.Mutex
	sets map[string]*fakeSet

	// Writes counts, and Log spells as `ipset restore` would read it, every
	// request the Linux implementation sends to the kernel as a write: Add,
	// Del and Destroy always, Ensure only when it creates (its first step
	// is a read). Calls refused before any request (a foreign name, an
	// invalid entry) are not writes.
	Writes int
	Log    []string
	// FailOn makes writes to the named set fail after they are counted, to
	// test that one failure does not stop the others.
	FailOn map[string]error
	// InUse, if set, reports whether a rule still refers to the set; Destroy
	// then fails like the kernel's.
	InUse func(name string) bool
}

type fakeSet struct {
	set Set
	// entries maps each member's key (the member without its mark, as the
	// kernel keys it) to the member.
	entries map[Entry]Entry
}

var _ Interface = &Fake{}

// key is a member as the kernel keys it: without its mark.
func key(e Entry) Entry {
	e.Mark = 0
	return e
}

// NewFake returns a fake with no sets.
func NewFake() *Fake {
	return &Fake{sets: map[string]*fakeSet{}, FailOn: map[string]error{}}
}

func (f *Fake) write(name, what string) error {
	f.Writes++
	f.Log = append(f.Log, what)
	return f.FailOn[name]
}

func (f *Fake) Ensure(s Set) error {
	if err := checkSet(s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if have, ok := f.sets[s.Name]; ok {
		if have.set != s {
			return existsAs(s, string(have.set.Type), family(have.set.IPv6))
		}
		return nil
	}
	if err := f.write(s.Name, fmt.Sprintf("create %s %s family %s%s", s.Name, s.Type, family(s.IPv6), skbinfo(s))); err != nil {
		return fmt.Errorf("create ipset %s %s family %s: %w", s.Name, s.Type, family(s.IPv6), err)
	}
	f.sets[s.Name] = &fakeSet{set: s, entries: map[Entry]Entry{}}
	return nil
}

func (f *Fake) Entries(name string) ([]Entry, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sets[name]
	if !ok {
		return nil, fmt.Errorf("list ipset %s: %w", name, ErrNotFound)
	}
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	sortEntries(out)
	return out, nil
}

func (f *Fake) Add(name string, e Entry) error {
	return f.member("add", "to", "add %s %s", name, e, true)
}

func (f *Fake) Del(name string, e Entry) error {
	return f.member("delete", "from", "del %s %s", name, e, false)
}

// member is Add and Del: logFormat spells the write for Log, as `ipset
// restore` would read it. A missing set fails an add and is success for a
// del, as in the kernel.
func (f *Fake) member(verb, prep, logFormat, name string, e Entry, add bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkEntry(e); err != nil {
		return fmt.Errorf("%s %s %s ipset %s: %w", verb, e, prep, name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.write(name, fmt.Sprintf(logFormat, name, e))
	s, ok := f.sets[name]
	switch {
	case err != nil:
	case !ok && add:
		err = ErrNotFound
	case !ok:
	case !fits(s.set, e):
		err = ErrMismatch
	case add:
		s.entries[key(e)] = e // the kernel replaces a member's mark
	default:
		delete(s.entries, key(e))
	}
	if err != nil {
		return fmt.Errorf("%s %s %s ipset %s: %w", verb, e, prep, name, err)
	}
	return nil
}

func (f *Fake) AddAll(name string, entries []Entry) []error { return each(name, entries, f.Add) }

func (f *Fake) DelAll(name string, entries []Entry) []error { return each(name, entries, f.Del) }

func each(name string, entries []Entry, call func(string, Entry) error) []error {
	errs := make([]error, len(entries))
	for i, e := range entries {
		errs[i] = call(name, e)
	}
	return errs
}

func (f *Fake) Destroy(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	if err := f.destroy(name); err != nil {
		return fmt.Errorf("destroy ipset %s: %w", name, err)
	}
	return nil
}

func (f *Fake) Dump() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sets := make([]Contents, 0, len(f.sets))
	for _, s := range f.sets {
		if checkName(s.set.Name) != nil {
			continue // another program's, as the Linux Dump skips it
		}
		c := Contents{Set: s.set}
		for _, e := range s.entries {
			c.Entries = append(c.Entries, e)
		}
		sets = append(sets, c)
	}
	return Format(sets), nil
}
