package model

import (
	"net/netip"
	"slices"

	discovery "k8s.io/api/discovery/v1"
)

// Slice is an EndpointSlice as the model reads it, in the compact form the
// proxy caches it in: the cache is most of its memory (a cluster of 5,000
// Services holds 50,000 endpoints), and a decoded EndpointSlice spends
// most of its bytes on metadata, pointers and strings.
type Slice struct {
	Namespace, Name string
	AddressType     discovery.AddressType
	Ports           []discovery.EndpointPort
	Endpoints       []Endpoint
	// TriggerTime is the endpoints.kubernetes.io/last-change-trigger-time
	// annotation, if any. The model does not read it; the proxy's
	// programming-latency metric does.
	TriggerTime string
}

// Endpoint is one endpoint's first address (the only one consumers use),
// its node and its conditions, in 56 bytes: a cluster of 5,000 Services
// caches 50,000 of them. What few endpoints have is behind one pointer.
type Endpoint struct {
	Addr netip.Addr // when the address reads back as written
	Node string
	rare *rareFields // nil for most endpoints
	// The API leaves a condition unset to mean "unknown".
	Ready, Serving, Terminating Condition
}

// rareFields are an endpoint's address when it does not read back as
// written, and its topology hints.
type rareFields struct {
	raw string
	// zoneHints and nodeHints are the EndpointSlice controller's topology
	// hints (for topology-mode Auto and spec.trafficDistribution): the
	// zones and nodes that should use this endpoint. Interned.
	zoneHints, nodeHints []string
}

// Hints are the zones and the nodes the endpoint is meant for, if any.
func (e Endpoint) Hints() (zones, nodes []string) {
	if e.rare == nil {
		return nil, nil
	}
	return e.rare.zoneHints, e.rare.nodeHints
}

// Condition is an endpoint condition: unset, true or false.
type Condition uint8

const (
	Unset Condition = iota
	True
	False
)

// Address is the endpoint's address as the API holds it.
func (e Endpoint) Address() string {
	if e.Addr.IsValid() {
		return e.Addr.String()
	}
	if e.rare == nil {
		return ""
	}
	return e.rare.raw
}

// parsed is the endpoint's address, parsed.
func (e Endpoint) parsed() (netip.Addr, error) {
	if e.Addr.IsValid() {
		return e.Addr, nil
	}
	return netip.ParseAddr(e.Address())
}

// SliceFrom is s as the model reads it. Endpoints without an address are
// left out: nothing can be programmed for them. Node names are interned:
// a cluster has far fewer nodes than endpoints.
func SliceFrom(s *discovery.EndpointSlice) *Slice {
	out := &Slice{Namespace: s.Namespace, Name: s.Name, AddressType: s.AddressType, Ports: slices.Clip(s.Ports),
		TriggerTime: s.Annotations[TriggerTimeAnnotation]}
	n := 0
	for _, e := range s.Endpoints {
		if len(e.Addresses) > 0 {
			n++
		}
	}
	out.Endpoints = make([]Endpoint, 0, n)
	for _, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		ep := Endpoint{Ready: condition(e.Conditions.Ready), Serving: condition(e.Conditions.Serving),
			Terminating: condition(e.Conditions.Terminating)}
		if e.NodeName != nil {
			ep.Node = intern(*e.NodeName)
		}
		var rare rareFields
		if h := e.Hints; h != nil {
			for _, z := range h.ForZones {
				rare.zoneHints = append(rare.zoneHints, intern(z.Name))
			}
			for _, n := range h.ForNodes {
				rare.nodeHints = append(rare.nodeHints, intern(n.Name))
			}
		}
		// Parsed only when the text reads back the same, so that problems
		// are worded with exactly what the API holds.
		if a, err := netip.ParseAddr(e.Addresses[0]); err == nil && a.String() == e.Addresses[0] {
			ep.Addr = a
		} else {
			rare.raw = e.Addresses[0]
		}
		if rare.raw != "" || rare.zoneHints != nil || rare.nodeHints != nil {
			ep.rare = new(rareFields) // only here: rare itself stays on the stack
			*ep.rare = rare
		}
		out.Endpoints = append(out.Endpoints, ep)
	}
	return out
}

// Slices converts API slices, for callers that hold them (tests, `status`).
func Slices(in ...*discovery.EndpointSlice) []*Slice {
	out := make([]*Slice, 0, len(in))
	for _, s := range in {
		if s != nil {
			out = append(out, SliceFrom(s))
		}
	}
	return out
}

// TriggerTimeAnnotation is set by the EndpointSlice controller to the time
// of the change that caused the slice's update; kube-proxy measures network
// programming latency from it.
const TriggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"

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
