package daemon

import (
	"k8s.io/apimachinery/pkg/api/meta"
)

// dropManagedFields removes server-side apply bookkeeping from every cached
// Service and EndpointSlice before it is stored: nothing here reads it,
// and on a large cluster it is a good share of what the cache holds.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
