package watch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

const byService = "byService"

// Source reads Services and their slices from informer caches.
type Source struct {
	services  cache.Indexer
	slices    cache.Indexer
	synced    []cache.DoneChecker
	informers []cache.SharedIndexInformer
}

// NewSource builds the Service and EndpointSlice informers over the two
// list-watches, with Services cached as CachedService, slices as
// CachedSlice, and slices indexed by Service, so a Service's slices are
// found without a scan. Nothing runs until the caller runs Informers.
func NewSource(services, slices cache.ListerWatcher, changes *Changes) (*Source, error) {
	// No namespace index, which an informer factory adds: nothing here
	// reads by namespace, and each index costs memory per cached object.
	svcInf := cache.NewSharedIndexInformerWithOptions(services, &v1.Service{}, cache.SharedIndexInformerOptions{})
	sliceInf := cache.NewSharedIndexInformerWithOptions(slices, &discovery.EndpointSlice{}, cache.SharedIndexInformerOptions{
		Indexers: cache.Indexers{byService: func(obj any) ([]string, error) {
			s, ok := obj.(*CachedSlice)
			if !ok || s.Service == "" {
				return nil, nil
			}
			return []string{s.Namespace + "/" + s.Service}, nil
		}},
	})
	if err := svcInf.SetTransform(func(obj any) (any, error) {
		if s, ok := obj.(*v1.Service); ok {
			return CompactService(s), nil
		}
		return obj, nil // a tombstone
	}); err != nil {
		return nil, fmt.Errorf("set the Service informer's transform: %w", err)
	}
	if err := sliceInf.SetTransform(func(obj any) (any, error) {
		if s, ok := obj.(*discovery.EndpointSlice); ok {
			return CompactSlice(s), nil
		}
		return obj, nil // a tombstone
	}); err != nil {
		return nil, fmt.Errorf("set the EndpointSlice informer's transform: %w", err)
	}
	svcReg, err := svcInf.AddEventHandler(changes.ServiceHandler())
	if err != nil {
		return nil, fmt.Errorf("watch Services: %w", err)
	}
	sliceReg, err := sliceInf.AddEventHandler(changes.SliceHandler())
	if err != nil {
		return nil, fmt.Errorf("watch EndpointSlices: %w", err)
	}
	// The handlers' checkers, not the informers': they also wait for the
	// initial adds to reach our handlers, so the first full sync takes
	// them all, rather than a second sync re-checking thousands of
	// Services it has just written. Checkers, not HasSynced functions:
	// a wait on them ends when the last add is delivered, where a poll
	// of HasSynced (cache.WaitForCacheSync) checks every 100 ms and so
	// holds every start of the proxy up to 100 ms longer.
	return &Source{
		services:  svcInf.GetIndexer(),
		slices:    sliceInf.GetIndexer(),
		synced:    []cache.DoneChecker{svcReg.HasSyncedChecker(), sliceReg.HasSyncedChecker()},
		informers: []cache.SharedIndexInformer{svcInf, sliceInf},
	}, nil
}

// Informers are the informers to run, each until the caller's context
// ends.
func (s *Source) Informers() []cache.SharedIndexInformer { return s.informers }

// WaitSynced waits until the initial list of Services and slices (and of
// whatever more tracks) has reached the handlers, or ctx ends; it reports
// whether they synced. Nothing may be programmed before: a half-filled
// cache would delete live Services.
func (s *Source) WaitSynced(ctx context.Context, more ...cache.DoneChecker) bool {
	return cache.WaitFor(ctx, "", append(slices.Clip(s.synced), more...)...)
}

// Input returns the Service with its slices; nil when the Service is gone.
func (s *Source) Input(n types.NamespacedName) (*model.ServiceInput, error) {
	obj, ok, err := s.services.GetByKey(n.Namespace + "/" + n.Name)
	if err != nil {
		return nil, fmt.Errorf("get Service %s from cache: %w", n, err)
	}
	svc, isSvc := obj.(*CachedService)
	if !ok || !isSvc {
		return nil, nil
	}
	return &model.ServiceInput{Service: &svc.Service, Slices: s.slicesOf(n)}, nil
}

// All returns every Service with its slices.
func (s *Source) All() ([]model.ServiceInput, error) {
	objs := s.services.List()
	out := make([]model.ServiceInput, 0, len(objs))
	for _, o := range objs {
		if svc, ok := o.(*CachedService); ok {
			out = append(out, model.ServiceInput{Service: &svc.Service, Slices: s.slicesOf(svc.NamespacedName)})
		}
	}
	return out, nil
}

func (s *Source) slicesOf(n types.NamespacedName) []*model.Slice {
	objs, _ := s.slices.ByIndex(byService, n.Namespace+"/"+n.Name)
	out := make([]*model.Slice, 0, len(objs))
	for _, o := range objs {
		if sl, ok := o.(*CachedSlice); ok {
			out = append(out, &sl.Slice) // read-only, as everything cached
		}
	}
	// The index returns map order; a stable order keeps problem texts (and
	// so Events) from changing when nothing did.
	slices.SortFunc(out, func(a, b *model.Slice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TriggerTime is the latest last-change-trigger-time of the Service's
// slices; ok is false when none carries one.
func TriggerTime(in *model.ServiceInput) (time.Time, bool) {
	var latest time.Time
	for _, sl := range in.Slices {
		if sl.TriggerTime == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, sl.TriggerTime); err == nil && t.After(latest) {
			latest = t
		}
	}
	return latest, !latest.IsZero()
}
