package watch

import (
	"fmt"
	"runtime"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// benchSlice is an EndpointSlice as the bench's Services have them: one
// port, ten ready endpoints on ten other nodes.
func benchSlice(i int) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%d-1", i), ResourceVersion: "12345", Labels: map[string]string{discovery.LabelServiceName: fmt.Sprintf("svc-%d", i)}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
	for j := range 10 {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{fmt.Sprintf("10.%d.%d.%d", 100+j, i>>8&255, i&255)},
			NodeName: ptr.To(fmt.Sprintf("peer-%d", j)), Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
	}
	return s
}

// BenchmarkCompactSlice reports what the cache keeps per EndpointSlice
// (kept-B: the heap that 1,000 compacted slices hold, per slice, once the
// decoded objects are gone), which at 5,000 Services is 5,000 times over.
func BenchmarkCompactSlice(b *testing.B) {
	in := make([]*discovery.EndpointSlice, 1000)
	for i := range in {
		in[i] = benchSlice(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range in {
			CompactSlice(s)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := make([]*CachedSlice, len(in))
	for i, s := range in {
		kept[i] = CompactSlice(s)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	runtime.KeepAlive(in)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(in)), "kept-B")
}
