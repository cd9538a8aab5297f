// Package watch turns informer events into the names of the Services whose
// desired state may have changed, and reads a Service with its
// EndpointSlices back from the informers' caches. Handlers only record; the
// sync loop does the work, so a burst of events costs one sync.
package watch

import (
	"slices"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// Changes is the set of Services changed since the last Take.
type Changes struct {
	mu sync.Mutex
	// dirty are the Services to sync, whatever queued them.
	dirty map[types.NamespacedName]bool
	// services and endpoints count the informer events since the last
	// Take; Mark's requests are not events and are not counted.
	services  int
	endpoints int
	// notify is called after each recorded change, outside the lock: it
	// kicks the sync loop and tells the health check an update is queued.
	notify func(Change)
}

// Change says what queued a Service, for notify.
type Change int

const (
	// ServiceEvent is an informer event on the Service.
	ServiceEvent Change = iota + 1
	// SliceEvent is an informer event on one of its EndpointSlices.
	SliceEvent
	// Requeue is Mark: the sync loop asks for the Service again (a retry
	// after a failure, a drain re-check). Nothing in the cluster changed,
	// so it is no change for the metrics that count changes.
	Requeue
)

func (c Change) String() string {
	switch c {
	case ServiceEvent:
		return "service"
	case SliceEvent:
		return "slice"
	case Requeue:
		return "requeue"
	}
	return "unknown"
}

func NewChanges(notify func(Change)) *Changes {
	return &Changes{dirty: map[types.NamespacedName]bool{}, notify: notify}
}

// Take returns the changed Services, sorted, and forgets them.
func (c *Changes) Take() []types.NamespacedName {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]types.NamespacedName, 0, len(c.dirty))
	for n := range c.dirty {
		out = append(out, n)
	}
	slices.SortFunc(out, model.CompareNames)
	c.dirty = map[types.NamespacedName]bool{}
	c.services, c.endpoints = 0, 0
	return out
}

// Pending is the number of Service and EndpointSlice events waiting; Mark's
// requests are not among them.
func (c *Changes) Pending() (services, endpoints int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.services, c.endpoints
}

// Waiting reports whether any Service is queued: long work in the sync
// loop (a resync in steps) stops for it.
func (c *Changes) Waiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.dirty) > 0
}

// Mark queues one Service again without an event: to retry it after a
// failure, or to re-check its draining real servers (Requeue).
func (c *Changes) Mark(n types.NamespacedName) { c.mark(n, Requeue) }

func (c *Changes) mark(n types.NamespacedName, kind Change) {
	c.mu.Lock()
	c.dirty[n] = true
	switch kind {
	case ServiceEvent:
		c.services++
	case SliceEvent:
		c.endpoints++
	}
	c.mu.Unlock()
	if c.notify != nil {
		c.notify(kind)
	}
}

// ServiceHandler records the Service itself.
func (c *Changes) ServiceHandler() cache.ResourceEventHandler {
	return c.handler(func(obj any) (types.NamespacedName, bool) {
		s, ok := obj.(*CachedService)
		if !ok {
			return types.NamespacedName{}, false
		}
		return s.NamespacedName, true
	}, ServiceEvent)
}

// SliceHandler records the Service a slice belongs to, by its
// kubernetes.io/service-name label; a slice without it serves no Service.
func (c *Changes) SliceHandler() cache.ResourceEventHandler {
	return c.handler(func(obj any) (types.NamespacedName, bool) {
		s, ok := obj.(*CachedSlice)
		if !ok {
			return types.NamespacedName{}, false
		}
		return types.NamespacedName{Namespace: s.Namespace, Name: s.Service}, s.Service != ""
	}, SliceEvent)
}

func (c *Changes) handler(nameOf func(any) (types.NamespacedName, bool), kind Change) cache.ResourceEventHandler {
	record := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if n, ok := nameOf(obj); ok {
			c.mark(n, kind)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { record(obj) },
		UpdateFunc: func(old, obj any) {
			// A slice can move between Services only by relabelling:
			// then both the old and the new owner changed.
			if o, ok := nameOf(old); ok {
				if n, ok := nameOf(obj); !ok || n != o {
					c.mark(o, kind)
				}
			}
			record(obj)
		},
		DeleteFunc: record,
	}
}
