package daemon

import (
	"testing"
	"time"
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
