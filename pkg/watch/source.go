package watch

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

const byService = "byService"

// TriggerTimeAnnotation is set by the EndpointSlice controller to the time
// of the change that caused the slice's update; kube-proxy measures network
// programming latency from it.
const TriggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"

// Source reads Services and their slices from informer caches.
type Source struct {
	services corelisters.ServiceLister
	slices   cache.Indexer
	synced   []cache.InformerSynced
}

// NewSource registers the informers it needs on the factory and indexes
// slices by Service, so a Service's slices are found without a scan.
func NewSource(f informers.SharedInformerFactory, changes *Changes) (*Source, error) {
	svcInf := f.Core().V1().Services().Informer()
	sliceInf := f.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInf.AddIndexers(cache.Indexers{byService: func(obj any) ([]string, error) {
		s, ok := obj.(*discovery.EndpointSlice)
		if !ok || s.Labels[discovery.LabelServiceName] == "" {
			return nil, nil
		}
		return []string{s.Namespace + "/" + s.Labels[discovery.LabelServiceName]}, nil
	}}); err != nil {
		return nil, fmt.Errorf("index EndpointSlices by Service: %w", err)
	}
	svcReg, err := svcInf.AddEventHandler(changes.ServiceHandler())
	if err != nil {
		return nil, fmt.Errorf("watch Services: %w", err)
	}
	sliceReg, err := sliceInf.AddEventHandler(changes.SliceHandler())
	if err != nil {
		return nil, fmt.Errorf("watch EndpointSlices: %w", err)
	}
	// The handlers' HasSynced, not the informers': it also waits for the
	// initial adds to reach our handlers, so the first full sync takes
	// them all, rather than a second sync re-checking thousands of
	// Services it has just written.
	return &Source{
		services: f.Core().V1().Services().Lister(),
		slices:   sliceInf.GetIndexer(),
		synced:   []cache.InformerSynced{svcReg.HasSynced, sliceReg.HasSynced},
	}, nil
}

// Synced are the functions to wait on before the first sync: programming
// from a half-filled cache would delete live Services.
func (s *Source) Synced() []cache.InformerSynced { return s.synced }

// Input returns the Service with its slices; nil when the Service is gone.
func (s *Source) Input(n types.NamespacedName) (*model.ServiceInput, error) {
	svc, err := s.services.Services(n.Namespace).Get(n.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Service %s from cache: %w", n, err)
	}
	return &model.ServiceInput{Service: svc, Slices: s.slicesOf(n)}, nil
}

// All returns every Service with its slices.
func (s *Source) All() ([]model.ServiceInput, error) {
	svcs, err := s.services.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list Services from cache: %w", err)
	}
	out := make([]model.ServiceInput, 0, len(svcs))
	for _, svc := range svcs {
		out = append(out, model.ServiceInput{Service: svc, Slices: s.slicesOf(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name})})
	}
	return out, nil
}

func (s *Source) slicesOf(n types.NamespacedName) []*discovery.EndpointSlice {
	objs, _ := s.slices.ByIndex(byService, n.Namespace+"/"+n.Name)
	out := make([]*discovery.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if sl, ok := o.(*discovery.EndpointSlice); ok {
			out = append(out, sl)
		}
	}
	// The index returns map order; a stable order keeps problem texts (and
	// so Events) from changing when nothing did.
	slices.SortFunc(out, func(a, b *discovery.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TriggerTime is the latest last-change-trigger-time of the Service's
// slices; ok is false when none carries one.
func TriggerTime(in *model.ServiceInput) (time.Time, bool) {
	var latest time.Time
	for _, sl := range in.Slices {
		if v, ok := sl.Annotations[TriggerTimeAnnotation]; ok {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.After(latest) {
				latest = t
			}
		}
	}
	return latest, !latest.IsZero()
}
