package proxier

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"k8s.io/apimachinery/pkg/types"
)

var benchSizes = []int{100, 1000, 10000, 50000}

// benchWorld is n ClusterIP Services with 10 endpoints each, half of them
// on this node.
func benchWorld(n int) []model.ServiceInput {
	out := make([]model.ServiceInput, n)
	for i := range out {
		ip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}).String()
		if i >= 65536 {
			ip = netip.AddrFrom4([4]byte{10, 97, byte(i >> 8), byte(i)}).String()
		}
		s := svc(fmt.Sprintf("s%d", i), ip)
		var addrs []string
		for j := 0; j < 10; j++ {
			addrs = append(addrs, netip.AddrFrom4([4]byte{10, byte(100 + j), byte(i >> 8), byte(i)}).String())
		}
		out[i] = input(s, slice(s.Name, addrs...))
	}
	return out
}

func newBenchKernel() kernel {
	k := kernel{ipvs: ipvs.NewFake(), link: netif.NewFake("kube-ipvs0"), sets: ipset.NewFake()}
	k.link.SetHostAddresses([]netif.HostAddress{{Link: "eth0", Addr: netip.MustParseAddr("192.168.1.10")}})
	return k
}

// syncedBenchProxier is a proxier that has synced benchWorld(n) to fakes.
func syncedBenchProxier(b *testing.B, n int) (*Proxier, []model.ServiceInput) {
	b.Helper()
	world := benchWorld(n)
	k := newBenchKernel()
	owned, _ := LoadOwned("")
	p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, k.sets, owned)
	mustWrite(b, "the first SyncAll", p.SyncAll(world))
	return p, world
}

// mustWrite returns a sync's kernel writes, and fails the benchmark if the
// sync reported errors or wrote nothing: a failed sync, or one that found
// nothing to do, is not the work the benchmark names, and `make test`'s
// run of the benchmarks would pass on a proxier that writes nothing.
func mustWrite(b *testing.B, what string, res Result) int {
	b.Helper()
	if len(res.Errors) > 0 || res.Aborted {
		b.Fatalf("%s failed (aborted %v): %v", what, res.Aborted, errors.Join(res.Errors...))
	}
	writes := res.Counts.Writes()
	if writes == 0 {
		b.Fatalf("%s wrote nothing to the kernel", what)
	}
	return writes
}

// BenchmarkSyncAll is a cold start: build every Service, diff against an
// empty kernel and apply, through the fakes.
func BenchmarkSyncAll(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			world := benchWorld(n)
			b.ReportAllocs()
			writes := 0
			for b.Loop() {
				b.StopTimer()
				k := newBenchKernel()
				owned, _ := LoadOwned("")
				p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, k.sets, owned)
				b.StartTimer()
				writes = mustWrite(b, "SyncAll", p.SyncAll(world))
			}
			b.ReportMetric(float64(writes), "kernel-writes/op")
			b.ReportMetric(liveAfterSync(b, world)/1e6, "live-MB")
		})
	}
}

// liveAfterSync is the heap a synced proxier keeps, with its fake kernel:
// what the collector scans and the heap's growth is relative to, between
// syncs. The fakes' part does not depend on how the proxier keeps its
// record, so the figure compares versions of the proxier.
func liveAfterSync(b *testing.B, world []model.ServiceInput) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	k := newBenchKernel()
	owned, _ := LoadOwned("")
	p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, k.sets, owned)
	mustWrite(b, "SyncAll", p.SyncAll(world))
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(p)
	runtime.KeepAlive(world) // the informer's cache holds it, whatever the proxier keeps
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// BenchmarkEndpointChange is one endpoint replaced in one Service of n:
// the cost must not grow with n.
func BenchmarkEndpointChange(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			p, world := syncedBenchProxier(b, n)
			target := world[n/2]
			name := types.NamespacedName{Namespace: "ns", Name: target.Service.Name}
			// Toggle one endpoint: added, then removed, on every other op.
			var addrs []string
			for _, ep := range target.Slices[0].Endpoints {
				addrs = append(addrs, ep.Address())
			}
			a := model.ServiceInput{Service: target.Service, Slices: model.Slices(slice(target.Service.Name, append(addrs, "10.200.0.1")...))}
			c := target
			b.ReportAllocs()
			writes, i := 0, 0
			for b.Loop() {
				in := a
				if i%2 == 1 {
					in = c
				}
				i++
				writes = mustWrite(b, "SyncServices", p.SyncServices(map[types.NamespacedName]*model.ServiceInput{name: &in}))
			}
			b.ReportMetric(float64(writes), "kernel-writes/op")
		})
	}
}

// BenchmarkResyncStep is a periodic resync of n Services that finds
// nothing to repair, in steps of the daemon's budget (10 ms): an op is the
// whole resync, and the metric longest-step-ms is what a change that comes
// during it may wait, to compare with BenchmarkEndpointChange.
func BenchmarkResyncStep(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			p, world := syncedBenchProxier(b, n)
			inputs := PrepareInputs(world) // off the loop, as the daemon does
			var longest, begin time.Duration
			steps := 0
			for b.Loop() {
				b.StopTimer()
				snap := p.ReadKernel()
				b.StartTimer()
				t0 := time.Now()
				r := p.BeginResync(inputs, snap)
				begin = max(begin, time.Since(t0))
				for done := false; !done; steps++ {
					t0 := time.Now()
					var res Result
					done, res = r.Step(10 * time.Millisecond)
					longest = max(longest, time.Since(t0))
					// A resync of a kernel that matches writes nothing;
					// one that failed measured nothing.
					if len(res.Errors) > 0 {
						b.Fatalf("resync step: %v", errors.Join(res.Errors...))
					}
				}
			}
			b.ReportMetric(float64(longest.Microseconds())/1000, "longest-step-ms")
			// BeginResync runs in the sync loop too, before the first step.
			b.ReportMetric(float64(begin.Microseconds())/1000, "begin-ms")
			b.ReportMetric(float64(steps)/float64(b.N), "steps/op")
			b.ReportMetric(snapshotHeap(p)/1e6, "snapshot-MB")
			runtime.KeepAlive(world)
		})
	}
}

// snapshotHeap is the heap a snapshot of the fake kernel holds: what a
// periodic resync adds to the live heap while it runs (its read's garbage
// aside, which the fakes do not make as the kernel's readers do).
func snapshotHeap(p *Proxier) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	snap := p.ReadKernel()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(snap)
	runtime.KeepAlive(p)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}
