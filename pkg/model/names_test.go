package model

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// Endpoints on one node, each decoded with its own copy of the node's
// name, share one copy once cached.
func TestSliceFromSharesNodeNames(t *testing.T) {
	s := &discovery.EndpointSlice{AddressType: discovery.AddressTypeIPv4}
	for i := range 3 {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{
			Addresses: []string{fmt.Sprintf("10.0.0.%d", i+1)},
			NodeName:  ptr.To(strings.Clone("node-a")),
			Hints:     &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: strings.Clone("zone-a")}}},
		})
	}
	got := SliceFrom(s)
	for i, ep := range got.Endpoints {
		if ep.Node != "node-a" || len(ep.rare.zoneHints) != 1 || ep.rare.zoneHints[0] != "zone-a" {
			t.Fatalf("endpoint %d: node %q, zone hints %q", i, ep.Node, ep.rare.zoneHints)
		}
		if unsafe.StringData(ep.Node) != unsafe.StringData(got.Endpoints[0].Node) {
			t.Errorf("endpoint %d holds its own copy of its node's name", i)
		}
		if unsafe.StringData(ep.rare.zoneHints[0]) != unsafe.StringData(got.Endpoints[0].rare.zoneHints[0]) {
			t.Errorf("endpoint %d holds its own copy of its zone hint", i)
		}
	}
}

// The table is dropped when full, so the names of nodes long gone do not
// pile up, and a name interned across a reset is still the same name.
func TestInternTableIsBounded(t *testing.T) {
	names.Lock()
	saved := names.m
	names.m = map[string]string{}
	names.Unlock()
	t.Cleanup(func() {
		names.Lock()
		names.m = saved
		names.Unlock()
	})

	first := intern(strings.Clone("node-0"))
	for i := range maxInterned + 10 {
		name := fmt.Sprintf("node-%d", i)
		if got := intern(name); got != name {
			t.Fatalf("intern(%q) = %q", name, got)
		}
	}
	names.Lock()
	size := len(names.m)
	names.Unlock()
	if size > maxInterned {
		t.Errorf("the table holds %d names after %d distinct ones, want at most %d", size, maxInterned+10, maxInterned)
	}
	if again := intern(strings.Clone("node-0")); again != first {
		t.Errorf("node-0 interned again reads %q, first %q", again, first)
	}
}
