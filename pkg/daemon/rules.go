package daemon

import (
	"context"
	"time"

	"k8s.io/klog/v2"
)

// The iptables rules do not depend on Services, so they are synced apart
// from the sync loop: first while the informers list (at start-up the two
// overlap, and under load each takes seconds), then once a sync period to
// repair drift. So a rule check never holds up an endpoint change. The
// first full sync waits for the first rule sync: a connection whose first
// packet meets a VIP before the masquerade rules exist is never
// masqueraded (NAT is decided once per connection).
func (d *daemon) startRules(ctx context.Context) {
	d.firstRules = make(chan []error, 1)
	go func() {
		errs := d.syncRules(true)
		d.firstRules <- errs
		for {
			wait := d.SyncPeriod
			if len(errs) > 0 {
				wait = min(wait, max(d.MinSyncPeriod, time.Second))
			}
			t := d.Clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
			errs = d.syncRules(false)
		}
	}()
}

// syncRules makes the kernel sets (the first time: the rules match on
// them, and the sync loop keeps them from then on) and the rules of every
// family.
func (d *daemon) syncRules(first bool) []error {
	start := d.Clock.Now()
	var errs []error
	if first {
		if err := d.Proxier.EnsureSets(); err != nil {
			errs = append(errs, err)
		}
	}
	writes := 0
	for _, rs := range d.Rules {
		n, err := rs.IPTables.Sync(rs.Rules)
		writes += n
		d.Metrics.ObserveRuleSync(string(rs.Rules.Family), err != nil)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, err := range errs {
		klog.ErrorS(err, "Syncing iptables rules failed; retrying soon")
	}
	klog.V(2).InfoS("Rules synced", "writes", writes, "errors", len(errs), "took", d.Clock.Since(start))
	return errs
}

// waitFirstRules returns the first rule sync's errors, once.
func (d *daemon) waitFirstRules() []error {
	if d.firstRules == nil {
		return nil
	}
	errs := <-d.firstRules
	d.firstRules = nil
	return errs
}
