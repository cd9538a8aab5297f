package daemon

import (
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestRestBetweenSteps: after a resync step the loop rests as long as the
// step took, at most resyncStep, and a change queued during the rest ends
// it at once; a signal left from a change already synced does not cut the
// next rest short, and a change already waiting means no rest at all.
func TestRestBetweenSteps(t *testing.T) {
	cases := []struct {
		name string
		step time.Duration
		// before runs before the rest begins, during while it waits.
		before, during func(d *daemon)
		// want is how long the rest lasts, on the fake clock.
		want time.Duration
	}{
		{name: "a short step", step: 3 * time.Millisecond, want: 3 * time.Millisecond},
		{name: "a long step", step: 40 * time.Millisecond, want: resyncStep},
		{name: "a change queued during the rest", step: resyncStep, during: queueChange, want: 0},
		{name: "a change waiting before it", step: resyncStep, before: queueChange, want: 0},
		{name: "a stale signal", step: resyncStep, before: func(d *daemon) {
			queueChange(d)
			d.changes.Take() // synced: only the signal is left
		}, want: resyncStep},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Unix(0, 0))
			d := &daemon{Config: Config{Clock: clk}, queuedSignal: make(chan struct{}, 1)}
			d.changes = watch.NewChanges(func(watch.Change) {
				select {
				case d.queuedSignal <- struct{}{}:
				default:
				}
			})
			if tc.before != nil {
				tc.before(d)
			}
			ended := make(chan time.Time, 1)
			go func() {
				restBetweenSteps(d, tc.step)
				ended <- clk.Now()
			}()
			if tc.during != nil {
				waitForTimer(t, clk, ended)
				tc.during(d)
			}
			// Move the clock a millisecond at a time, each once the rest
			// has had the time to end, until it ends.
			for {
				select {
				case at := <-ended:
					if got := at.Sub(time.Unix(0, 0)); got != tc.want {
						t.Errorf("rested %v, want %v", got, tc.want)
					}
					return
				case <-time.After(20 * time.Millisecond):
				}
				if clk.Since(time.Unix(0, 0)) > resyncStep {
					t.Fatalf("still resting at %v, want %v", clk.Since(time.Unix(0, 0)), tc.want)
				}
				clk.Step(time.Millisecond)
			}
		})
	}
}

// waitForTimer waits until the rest waits on the clock; it fails if the
// rest ended first.
func waitForTimer(t *testing.T, clk *clocktesting.FakeClock, ended <-chan time.Time) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !clk.HasWaiters(); {
		select {
		case at := <-ended:
			t.Fatalf("rested %v before anything happened", at.Sub(time.Unix(0, 0)))
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the rest never waited on the clock")
		}
	}
}

func queueChange(d *daemon) { d.changes.Mark(types.NamespacedName{Namespace: "ns", Name: "web"}) }
