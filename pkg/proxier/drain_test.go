package proxier

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// A rolling update, step by step, against the fake kernel: the pod that
// leaves keeps its connections at weight 0 until they end or the deadline
// passes, comes back at full weight if its endpoint returns, and a
// restarted proxier finds the drain again in the kernel's weights.
func TestGracefulTermination(t *testing.T) {
	webKey := ipvs.ServiceKey{Addr: netip.MustParseAddr("10.96.0.10"), Proto: ipvs.TCP, Port: 80}
	leaving := netip.MustParseAddrPort("10.244.1.3:8080")
	webName := []types.NamespacedName{{Namespace: "ns", Name: "web"}}
	one := map[types.NamespacedName]*model.ServiceInput{webName[0]: ptrTo(input(web, slice("web", "10.244.1.2")))}
	both := map[types.NamespacedName]*model.ServiceInput{webName[0]: ptrTo(input(web, webSlice))}
	draining := ipvsHeader + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    0
link kube-ipvs0 dummy down
addr 10.96.0.10/32
` + sets("10.244.1.2") + guard("10.96.0.10,tcp:80")
	gone := ipvsHeader + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.10/32
` + sets("10.244.1.2") + guard("10.96.0.10,tcp:80")
	full := ipvsHeader + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.10/32
` + sets("10.244.1.2", "10.244.1.3") + guard("10.96.0.10,tcp:80")

	type step struct {
		name     string
		do       func(*Proxier) Result
		conns    uint32        // connections the leaving pod has before the step
		advance  time.Duration // clock moves before the step
		want     string
		draining []types.NamespacedName
	}
	run := func(t *testing.T, k kernel, p *Proxier, clk *clocktesting.FakeClock, steps []step) {
		for _, s := range steps {
			k.ipvs.SetCounters(webKey, leaving, s.conns, 0)
			clk.Step(s.advance)
			res := s.do(p)
			if len(res.Errors) > 0 {
				t.Fatalf("%s: errors %v", s.name, res.Errors)
			}
			if d := k.dump(t); d != s.want {
				t.Fatalf("%s: kernel\n%s\nwant\n%s", s.name, d, s.want)
			}
			if !equalNames(res.Draining, s.draining) {
				t.Fatalf("%s: Draining = %v, want %v", s.name, res.Draining, s.draining)
			}
		}
	}
	start := func(t *testing.T) (kernel, *Proxier, *clocktesting.FakeClock, string) {
		k := newKernel()
		state := filepath.Join(t.TempDir(), "owned")
		p := k.proxier(t, state)
		clk := clocktesting.NewFakeClock(time.Unix(0, 0))
		p.Clock, p.DrainTimeout = clk, time.Minute
		if res := p.SyncAll([]model.ServiceInput{input(web, webSlice)}); len(res.Errors) > 0 {
			t.Fatal(res.Errors)
		}
		return k, p, clk, state
	}
	sync := func(in map[types.NamespacedName]*model.ServiceInput) func(*Proxier) Result {
		return func(p *Proxier) Result { return p.SyncServices(in) }
	}

	t.Run("connections end", func(t *testing.T) {
		k, p, clk, _ := start(t)
		run(t, k, p, clk, []step{
			{name: "endpoint leaves with 2 connections", do: sync(one), conns: 2, want: draining, draining: webName},
			{name: "re-check, still 1", do: sync(one), conns: 1, advance: 30 * time.Second, want: draining, draining: webName},
			{name: "re-check, none left", do: sync(one), conns: 0, advance: time.Second, want: gone},
		})
	})
	t.Run("deadline passes", func(t *testing.T) {
		k, p, clk, _ := start(t)
		run(t, k, p, clk, []step{
			{name: "endpoint leaves", do: sync(one), conns: 5, want: draining, draining: webName},
			{name: "just before the deadline", do: sync(one), conns: 5, advance: 59 * time.Second, want: draining, draining: webName},
			{name: "at the deadline", do: sync(one), conns: 5, advance: time.Second, want: gone},
		})
	})
	t.Run("endpoint comes back", func(t *testing.T) {
		k, p, clk, _ := start(t)
		run(t, k, p, clk, []step{
			{name: "endpoint leaves", do: sync(one), conns: 3, want: draining, draining: webName},
			{name: "endpoint returns", do: sync(both), conns: 3, advance: 10 * time.Second, want: full},
			// A fresh deadline: the first drain's time was forgotten.
			{name: "leaves again", do: sync(one), conns: 3, advance: 55 * time.Second, want: draining, draining: webName},
			{name: "55 s into the second drain", do: sync(one), conns: 3, advance: 55 * time.Second, want: draining, draining: webName},
		})
	})
	t.Run("restart", func(t *testing.T) {
		k, p, clk, state := start(t)
		run(t, k, p, clk, []step{{name: "endpoint leaves", do: sync(one), conns: 4, want: draining, draining: webName}})
		// A new process: nothing in memory, the kernel's weight 0 says it all.
		p2 := k.proxier(t, state)
		clk2 := clocktesting.NewFakeClock(time.Unix(1000, 0))
		p2.Clock, p2.DrainTimeout = clk2, time.Minute
		all := func(p *Proxier) Result {
			return p.SyncAll([]model.ServiceInput{input(web, slice("web", "10.244.1.2"))})
		}
		run(t, k, p2, clk2, []step{
			{name: "full sync after restart keeps draining", do: all, conns: 4, want: draining, draining: webName},
			{name: "deadline counted from the restart", do: sync(one), conns: 4, advance: time.Minute, want: gone},
		})
	})
	t.Run("timeout 0 deletes at once", func(t *testing.T) {
		k, p, clk, _ := start(t)
		p.DrainTimeout = 0
		run(t, k, p, clk, []step{{name: "endpoint leaves", do: sync(one), conns: 9, want: gone}})
	})
}

func equalNames(a, b []types.NamespacedName) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
