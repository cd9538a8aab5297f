// Package kernelbench is pkg/proxier's BenchmarkEndpointChange on a real
// kernel: the proxier alone (no API server, no informers) syncing one
// endpoint change at a time into the VM's IPVS, dummy link and sets. It is
// what a change-by-change sync costs the sync loop, without the load a
// cluster puts beside it (make bench's side-by-side run measures that),
// and it reports the loop thread's CPU per change. `make bench` runs it
// (make test runs TestEndpointChangeOnKernelSmoke, a small run of it):
//
//	go test -run '^$' -bench . -benchtime 1000x ./test/kernelbench/
package kernelbench

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
	"golang.org/x/sys/unix"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestMain boots the VM, which runs this binary's benchmarks.
func TestMain(m *testing.M) { os.Exit(vm.RunTests(m, vm.Config{Memory: "3G"})) }

const nodeName = "vm"

// service i of a world: a ClusterIP Service with 10 endpoints on node (this
// node's, or another's), and one more when extra is set.
func service(i int, node string, extra bool) model.ServiceInput {
	s := testobj.Service("ns", fmt.Sprintf("s%d", i), []string{netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}).String()})
	var addrs []string
	for j := range 10 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{10, byte(100 + j), byte(i >> 8), byte(i)}).String())
	}
	if extra {
		addrs = append(addrs, netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}).String())
	}
	sl := testobj.Slice("ns", s.Name+"-1", s.Name, discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On(node, addrs...)...)
	return model.ServiceInput{Service: model.ServiceFrom(s), Slices: model.Slices(sl)}
}

// BenchmarkEndpointChangeOnKernel: each op adds or removes the extra
// endpoint of one Service of n, a different one each time, so every op
// is a change (one real server written, and with local endpoints one
// hairpin member). cpu-us/op is the sync loop's thread CPU, what
// ipvs_proxy_sync_cpu_seconds_total counts in the daemon.
func BenchmarkEndpointChangeOnKernel(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, where := range []struct{ name, node string }{{"remote", "node-b"}, {"local", nodeName}} {
			b.Run(fmt.Sprintf("services=%d/endpoints=%s", n, where.name), func(b *testing.B) {
				c, err := newChanges(n, where.node, b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer func() {
					if err := c.close(); err != nil {
						b.Error(err)
					}
				}()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				start := threadCPU(b)
				for b.Loop() {
					if err := c.next(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((threadCPU(b)-start).Microseconds())/float64(b.N), "cpu-us/op")
			})
		}
	}
}

// TestEndpointChangeOnKernelSmoke is make test's smoke of the benchmark:
// 200 changes among 100 Services, each written without error.
func TestEndpointChangeOnKernelSmoke(t *testing.T) {
	for _, node := range []string{"node-b", nodeName} {
		c, err := newChanges(100, node, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			if err := c.next(); err != nil {
				t.Error(err)
				break
			}
		}
		if err := c.close(); err != nil {
			t.Error(err)
		}
	}
}

// changes is a proxier synced to n Services on the kernel, and the next
// change to make.
type changes struct {
	p     *proxier.Proxier
	kipvs *ipvs.Linux
	node  string
	extra []bool
	k     int
}

func newChanges(n int, node, dir string) (*changes, error) {
	kipvs, err := ipvs.NewLinux()
	if err != nil {
		return nil, err
	}
	owned, err := proxier.LoadOwned(filepath.Join(dir, "owned"))
	if err != nil {
		kipvs.Close()
		return nil, err
	}
	p := proxier.New(model.Options{NodeName: nodeName, Scheduler: "rr"}, kipvs, netif.NewLinux("kube-ipvs0"), ipset.NewLinux(), owned)
	world := make([]model.ServiceInput, n)
	for i := range world {
		world[i] = service(i, node, false)
	}
	c := &changes{p: p, kipvs: kipvs, node: node, extra: make([]bool, n)}
	if res := p.SyncAll(world); len(res.Errors) > 0 {
		c.close()
		return nil, fmt.Errorf("first sync: %v", res.Errors)
	}
	return c, nil
}

// next adds or removes the extra endpoint of the next Service in a stride
// over all of them (as the bench's churn), which must write something.
func (c *changes) next() error {
	i := c.k * 7919 % len(c.extra)
	c.k++
	c.extra[i] = !c.extra[i]
	in := service(i, c.node, c.extra[i])
	res := c.p.SyncServices(map[types.NamespacedName]*model.ServiceInput{{Namespace: "ns", Name: in.Service.Name}: &in})
	if len(res.Errors) > 0 || res.Counts.Writes() == 0 {
		return fmt.Errorf("change %d: errors %v, %d writes", c.k, res.Errors, res.Counts.Writes())
	}
	return nil
}

// close clears what the proxier wrote, for the next run in the same VM.
func (c *changes) close() error {
	defer c.kipvs.Close()
	if res := c.p.SyncAll(nil); len(res.Errors) > 0 {
		return fmt.Errorf("clearing the kernel: %v", res.Errors)
	}
	return nil
}

func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
