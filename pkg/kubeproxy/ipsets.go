package kubeproxy

import (
	"errors"
	"fmt"
	"slices"
)

// IPSets is the kernel's table of ipsets as the cleanup needs it.
type IPSets interface {
	// List names every set, sorted.
	List() ([]string, error)
	// Destroy destroys the set. One that is already gone is success: the
	// kernel, asked over netlink without NLM_F_EXCL, does not say; an
	// implementation that is told may return ErrNotFound, wrapped.
	Destroy(name string) error
}

// cleanIPSets destroys the sets named as kube-proxy names its own. Sets of
// any other name are not looked at, KUBE- prefix or not.
func cleanIPSets(s IPSets, r *report) {
	names, err := s.List()
	if err != nil {
		r.fail(fmt.Errorf("ipset: list sets: %w", err))
		return
	}
	for _, name := range ownedSetNames() {
		if !slices.Contains(names, name) {
			continue
		}
		err := s.Destroy(name)
		switch {
		case err == nil:
			r.did("ipset: destroy %s", name)
		case !errors.Is(err, ErrNotFound):
			r.fail(fmt.Errorf("ipset: destroy %s (a rule of another program may still match on it): %w", name, err))
		}
	}
}
