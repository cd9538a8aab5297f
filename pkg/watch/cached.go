package watch

import (
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CachedSlice is an EndpointSlice as the informer cache keeps it: the
// model's compact form (model.Slice, about a third of a decoded
// EndpointSlice) plus what the cache and the index by Service need. The
// model reads the cached value itself, with no copy per build.
type CachedSlice struct {
	model.Slice
	ResourceVersion string
	Service         string // the kubernetes.io/service-name label
}

// CompactSlice is the cached form of s.
func CompactSlice(s *discovery.EndpointSlice) *CachedSlice {
	return &CachedSlice{Slice: *model.SliceFrom(s), ResourceVersion: s.ResourceVersion, Service: s.Labels[discovery.LabelServiceName]}
}

// GetObjectMeta gives the cache the key and version it needs; the rest of
// the metadata is not kept.
func (c *CachedSlice) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name, ResourceVersion: c.ResourceVersion}
}

func (c *CachedSlice) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (c *CachedSlice) DeepCopyObject() runtime.Object {
	out := *c
	out.Ports = slices.Clone(c.Ports) // their pointees are never written
	out.Endpoints = slices.Clone(c.Endpoints)
	return &out
}

// CachedService is a Service as the informer cache keeps it: the model's
// compact form (model.Service, what the model reads and nothing else) plus
// the resource version the cache needs. The model reads the cached value
// itself.
type CachedService struct {
	model.Service
	ResourceVersion string
}

// CompactService is the cached form of s.
func CompactService(s *v1.Service) *CachedService {
	return &CachedService{Service: *model.ServiceFrom(s), ResourceVersion: s.ResourceVersion}
}

// GetObjectMeta gives the cache the key and version it needs; the rest of
// the metadata is not kept.
func (c *CachedService) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name, ResourceVersion: c.ResourceVersion}
}

func (c *CachedService) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (c *CachedService) DeepCopyObject() runtime.Object {
	return &CachedService{Service: *c.Service.Clone(), ResourceVersion: c.ResourceVersion}
}
