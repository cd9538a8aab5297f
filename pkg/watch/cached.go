package watch

import (
	"net/netip"
	"slices"
	"sync"

	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CachedSlice is an EndpointSlice as the informer cache keeps it: only
// what ipvs-proxy reads. The cache is most of the proxy's memory (a
// cluster of 5,000 Services holds 50,000 endpoints), and a decoded
// EndpointSlice spends most of its bytes on metadata, pointers and
// strings: this form is about a third of the size. EndpointSlice turns it
// back into the API type for the model; that copy lives only as long as
// one Service's build.
type CachedSlice struct {
	Namespace, Name, ResourceVersion string
	Service                          string // the kubernetes.io/service-name label
	TriggerTime                      string // the last-change-trigger-time annotation, if any
	AddressType                      discovery.AddressType
	Ports                            []discovery.EndpointPort
	Endpoints                        []CachedEndpoint
}

// CachedEndpoint is one endpoint's first address (the only one consumers
// use), its node and its conditions.
type CachedEndpoint struct {
	Addr                        netip.Addr // when the address parses
	Raw                         string     // the address as written, when it does not
	Node                        *string    // shared by every endpoint on the node
	Ready, Serving, Terminating Condition
}

// Condition is an endpoint condition, which the API leaves unset (nil)
// to mean "unknown".
type Condition uint8

const (
	Unset Condition = iota
	True
	False
)

// CompactSlice is the cached form of s. Endpoints without an address are
// left out: nothing can be programmed for them.
func CompactSlice(s *discovery.EndpointSlice) *CachedSlice {
	c := &CachedSlice{Namespace: s.Namespace, Name: s.Name, ResourceVersion: s.ResourceVersion,
		Service: s.Labels[discovery.LabelServiceName], TriggerTime: s.Annotations[TriggerTimeAnnotation],
		AddressType: s.AddressType, Ports: slices.Clip(s.Ports)}
	n := 0
	for _, e := range s.Endpoints {
		if len(e.Addresses) > 0 {
			n++
		}
	}
	c.Endpoints = make([]CachedEndpoint, 0, n)
	for _, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		ce := CachedEndpoint{Node: nodeNames.get(e.NodeName), Ready: condition(e.Conditions.Ready),
			Serving: condition(e.Conditions.Serving), Terminating: condition(e.Conditions.Terminating)}
		// Kept as written unless the address reads back the same, so the
		// model sees exactly what the API holds (and words problems with it).
		if a, err := netip.ParseAddr(e.Addresses[0]); err == nil && a.String() == e.Addresses[0] {
			ce.Addr = a
		} else {
			ce.Raw = e.Addresses[0]
		}
		c.Endpoints = append(c.Endpoints, ce)
	}
	return c
}

// EndpointSlice is c in the API's form, for the model.
func (c *CachedSlice) EndpointSlice() *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name, ResourceVersion: c.ResourceVersion},
		AddressType: c.AddressType, Ports: c.Ports, Endpoints: make([]discovery.Endpoint, len(c.Endpoints)),
	}
	if c.Service != "" {
		s.Labels = map[string]string{discovery.LabelServiceName: c.Service}
	}
	if c.TriggerTime != "" {
		s.Annotations = map[string]string{TriggerTimeAnnotation: c.TriggerTime}
	}
	for i, e := range c.Endpoints {
		addr := e.Raw
		if e.Addr.IsValid() {
			addr = e.Addr.String()
		}
		s.Endpoints[i] = discovery.Endpoint{Addresses: []string{addr}, NodeName: e.Node,
			Conditions: discovery.EndpointConditions{Ready: e.Ready.ptr(), Serving: e.Serving.ptr(), Terminating: e.Terminating.ptr()}}
	}
	return s
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

func condition(b *bool) Condition {
	switch {
	case b == nil:
		return Unset
	case *b:
		return True
	default:
		return False
	}
}

var yes, no = true, false

// ptr points at shared values: the API objects built from the cache are
// read, never written.
func (c Condition) ptr() *bool {
	switch c {
	case True:
		return &yes
	case False:
		return &no
	}
	return nil
}

// nodeNames shares one string per node among the cached endpoints: a
// cluster has far fewer nodes than endpoints. It forgets everything past a
// bound, so churning node names cannot grow it without limit.
var nodeNames = &interner{names: map[string]*string{}}

type interner struct {
	mu    sync.Mutex
	names map[string]*string
}

const maxInterned = 10000

func (n *interner) get(name *string) *string {
	if name == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.names[*name]; ok {
		return p
	}
	if len(n.names) >= maxInterned {
		clear(n.names)
	}
	p := new(string)
	*p = *name
	n.names[*name] = p
	return p
}
