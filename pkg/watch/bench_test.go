package watch

import (
	"fmt"
	"runtime"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// benchService is a Service as the API server sends the bench's: a
// ClusterIP Service of one port, with the fields the API server defaults.
func benchService(i int) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i), ResourceVersion: "12345",
			UID: types.UID(fmt.Sprintf("3f1e2a4c-0000-4000-8000-%012d", i)), CreationTimestamp: metav1.Unix(1764720000, 0),
			Labels: map[string]string{"app": fmt.Sprintf("svc-%d", i)}},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: fmt.Sprintf("10.96.%d.%d", i>>8&255, i&255),
			ClusterIPs: []string{fmt.Sprintf("10.96.%d.%d", i>>8&255, i&255)}, IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			IPFamilyPolicy: ptr.To(v1.IPFamilyPolicySingleStack), InternalTrafficPolicy: ptr.To(v1.ServiceInternalTrafficPolicyCluster),
			SessionAffinity: v1.ServiceAffinityNone, Selector: map[string]string{"app": fmt.Sprintf("svc-%d", i)},
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
}

// BenchmarkCompactService reports what the cache keeps per Service
// (kept-B: the heap that 1,000 cached Services hold, per Service, decoded
// from protobuf as the informer decodes them, once the decoded objects are
// gone) and, for scale, what the decoded objects themselves take
// (decoded-B).
func BenchmarkCompactService(b *testing.B) {
	wire := make([][]byte, 1000)
	for i := range wire {
		var err error
		if wire[i], err = benchService(i).Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	decode := func(data []byte) *v1.Service {
		s := &v1.Service{}
		if err := s.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, w := range wire {
			CompactService(decode(w))
		}
	}
	heldBy := func(keep func(data []byte) any) float64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		kept := make([]any, len(wire))
		for i, w := range wire {
			kept[i] = keep(w)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(kept)
		return float64(after.HeapAlloc-before.HeapAlloc) / float64(len(wire))
	}
	b.ReportMetric(heldBy(func(w []byte) any { return CompactService(decode(w)) }), "kept-B")
	b.ReportMetric(heldBy(func(w []byte) any { return decode(w) }), "decoded-B")
}
