package cleanup

import (
	"fmt"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
)

// cleanIPSets destroys the sets named as kube-proxy names its own. Sets of
// any other name are not looked at, KUBE- prefix or not.
func cleanIPSets(s ipset.Remover, r *report) {
	owned := ownedSetNames()
	destroyed, errs := s.DestroySets(func(name string) bool { return slices.Contains(owned, name) })
	for _, name := range destroyed {
		r.did("ipset: destroy %s", name)
	}
	for _, err := range errs {
		r.fail(fmt.Errorf("ipset: %w", err))
	}
}
