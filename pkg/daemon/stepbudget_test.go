package daemon

import (
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient/kubeclienttest"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestStepBudgetFollowsChangeSyncs: a resync step takes about what the
// recent change-by-change syncs took, so that a change that comes during
// a step waits for about one more such sync; within 2 and 10 ms.
func TestStepBudgetFollowsChangeSyncs(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		syncs []time.Duration
		want  time.Duration
	}{
		{"before any change sync", nil, resyncStep},
		{"the first one", []time.Duration{4 * ms}, 4 * ms},
		{"a moving average", []time.Duration{4 * ms, 12 * ms}, 5 * ms},
		{"fast syncs: the floor", []time.Duration{500 * time.Microsecond}, minResyncStep},
		{"slow syncs: the cap", []time.Duration{40 * ms}, resyncStep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &daemon{}
			for _, s := range tc.syncs {
				d.noteChangeSync(s)
			}
			if got := d.stepBudget(); got != tc.want {
				t.Errorf("step budget %v, want %v", got, tc.want)
			}
		})
	}
}

// clockedWrites is an IPVS table whose every written op moves a fake clock
// on by perOp, so a sync takes a known time on it.
type clockedWrites struct {
	*ipvs.Fake
	clk   *clocktesting.FakeClock
	perOp time.Duration
	took  time.Duration
}

func (c *clockedWrites) Write(ops []ipvs.Op) []error {
	step := time.Duration(len(ops)) * c.perOp
	c.clk.Step(step)
	c.took += step
	return c.Fake.Write(ops)
}

// TestChangeSyncsSetTheStepBudget: a sync that served a change is timed on
// the daemon's clock from the run's start, and the step budget follows it;
// a run that served none (a kick with nothing queued) leaves it alone.
func TestChangeSyncsSetTheStepBudget(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	kipvs := &clockedWrites{Fake: ipvs.NewFake(), clk: clk, perOp: 3 * time.Millisecond}
	changes := watch.NewChanges(func(watch.Change) {})
	client := kubeclienttest.Clientset{Interface: fake.NewClientset()}
	src, err := watch.NewSource(client.ListWatch("services", watch.SelectServices), client.ListWatch("endpointslices", watch.SelectSlices), changes)
	if err != nil {
		t.Fatal(err)
	}
	// Straight into the cache: no informer runs, and nothing else moves
	// the fake clock.
	if err := src.Informers()[0].GetStore().Add(watch.CompactService(service("a", "10.96.0.1"))); err != nil {
		t.Fatal(err)
	}
	owned, _ := proxier.LoadOwned("")
	d := &daemon{Config: Config{Clock: clk, Health: &health{}, Metrics: nopMetrics{},
		Proxier: proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, kipvs, netif.NewFake("kube-ipvs0"), ipset.NewFake(), owned)},
		src: src, changes: changes, reported: map[types.NamespacedName]string{}, failing: map[types.NamespacedName]int{}, drainPending: map[types.NamespacedName]bool{}}

	// The link and the sets, which a full sync makes first.
	if res := d.Proxier.SyncAll(nil); len(res.Errors) > 0 {
		t.Fatalf("full sync: %v", res.Errors)
	}
	kipvs.took = 0

	// The run began 1 ms before the sync: that counts too.
	start := clk.Now()
	clk.Step(time.Millisecond)
	changes.Mark(types.NamespacedName{Namespace: "ns", Name: "a"})
	d.syncChanges(start)
	want := time.Millisecond + kipvs.took
	if kipvs.took == 0 || want > resyncStep {
		t.Fatalf("the sync took %v in writes: the test needs some, and less than the cap %v", kipvs.took, resyncStep)
	}
	if got := d.stepBudget(); got != want {
		t.Errorf("after a change sync of %v: step budget %v, want %v", want, got, want)
	}

	start = clk.Now()
	clk.Step(8 * time.Millisecond)
	d.syncChanges(start)
	if got := d.stepBudget(); got != want {
		t.Errorf("after a run with no change: step budget %v, want %v still", got, want)
	}
}
