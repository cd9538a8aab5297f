package bench

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pollInterval is how often, at first, one virtual server is read while a
// change is awaited: one small netlink dump.
const pollInterval = 5 * time.Millisecond

// pollWait is the wait before the next read of a change awaited for
// elapsed: pollInterval, or 1 % of the wait so far once that is longer.
// Every read takes CPU from the proxy, and 1 % keeps a minutes-long wait
// from costing thousands of them. The report's notes say the same.
func pollWait(elapsed time.Duration) time.Duration { return max(pollInterval, elapsed/100) }

// change moves one endpoint of one Service to a new address and measures
// how long the kernel takes to show it, and what the proxy wrote for it.
// Services are visited in a stride so that consecutive changes hit
// different virtual servers across the whole table.
func (g *guest) change(proc *process, n int, want table) (Change, error) {
	c := g.changes
	g.changes++
	name := svcName((c * 7919) % n)
	key, ok := g.svcKeys[name]
	if !ok {
		return Change{}, fmt.Errorf("service %s was not listed", name)
	}
	ctx := context.Background()
	slices := g.client.DiscoveryV1().EndpointSlices(benchNS)
	sl, err := slices.Get(ctx, name+"-1", metav1.GetOptions{})
	if err != nil {
		return Change{}, err
	}
	j := c % len(sl.Endpoints)
	port := uint16(*sl.Ports[0].Port)
	old := netip.AddrPortFrom(netip.MustParseAddr(sl.Endpoints[j].Addresses[0]), port)
	moved := netip.AddrPortFrom(netip.MustParseAddr(changedAddr(c)), port)
	sl.Endpoints[j].Addresses = []string{moved.Addr().String()}

	m0, err := scrape()
	if err != nil {
		return Change{}, err
	}
	nl0, _, err := g.nl.snapshot() // also restarts the tap's drop count
	if err != nil {
		return Change{}, err
	}

	t0 := time.Now()
	if _, err := slices.Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		return Change{}, fmt.Errorf("update EndpointSlice %s: %w", sl.Name, err)
	}
	delete(want[key], old) // the API's truth from here on, whatever the kernel shows
	want[key][moved] = 1

	// lastMiss is when the last read that did not show the change began:
	// the write, and the end of the sync that made it, came after it.
	lastMiss := t0
	deadline := t0.Add(g.p.ChangeCap)
	for {
		read := time.Now()
		if g.shows(key, moved, old) {
			break
		}
		lastMiss = read
		if proc.exited() {
			return Change{}, fmt.Errorf("the proxy exited")
		}
		if lastMiss.After(deadline) {
			// The proxy is still busy: the next change queues behind it,
			// as it would in a cluster.
			return Change{Seconds: g.p.ChangeCap.Seconds(), Capped: true}, nil
		}
		time.Sleep(pollWait(time.Since(t0)))
	}
	ch := Change{Seconds: time.Since(t0).Seconds()}

	// The writes are counted until the sync that made the change has ended:
	// kube-proxy writes its ipsets and iptables after the virtual servers.
	// That sync ended after the change's last IPVS write (syncMadeAfter);
	// the tap's reader first catches up with it.
	_, seenDrops, err := g.nl.snapshot()
	if err == nil {
		_, err = waitSynced(proc, syncMadeAfter(lastMiss, g.nl.dests.get(moved), g.nl.dests.get(old)), g.p.ChangeCap/2)
	}
	if err != nil {
		ch.Note = "writes not counted: " + err.Error()
	} else {
		nl1, drops, err := g.nl.snapshot()
		drops += seenDrops // each snapshot restarts the count
		switch {
		case err != nil:
			ch.Note = "writes not counted: " + err.Error()
		case drops > 0:
			ch.Note = fmt.Sprintf("writes not counted: the tap dropped %d packets", drops)
		default:
			ch.Netlink = delta(nl0, nl1)
		}
		if m1, err := scrape(); err == nil {
			before, ok0 := m0.sum(kernelOps)
			after, ok1 := m1.sum(kernelOps)
			if ok0 && ok1 {
				d := int(after - before)
				ch.OwnWrites = &d
			}
		}
	}
	time.Sleep(changeGap)
	return ch, nil
}

// syncMadeAfter is a time the sync that made a change ended at or after:
// the later of the change's two IPVS writes (moved's with a weight, old's
// removal) as the tap timed them, and lastMiss, the start of the last read
// that did not show the change (at or after its API write, so the tap's
// writes of an earlier change are before it). A sync that ended after
// lastMiss alone may be one that started before the write and ended while
// the change's own sync ran, when the reads are spaced out (pollWait): its
// end would close the window before the change's writes were made. No
// sync before the one that made the last write ended after it. Without
// the tap's times, lastMiss is the bound.
func syncMadeAfter(lastMiss time.Time, moved, old destWrite) time.Time {
	since := lastMiss
	for _, at := range []time.Time{moved.added, old.removed} {
		if at.After(since) {
			since = at
		}
	}
	return since
}

// shows reports whether the kernel has moved to the new real server with a
// weight, and the old one is gone or has weight 0 (draining).
func (g *guest) shows(key vsKey, moved, old netip.AddrPort) bool {
	dests, err := g.destsOf(key)
	if err != nil {
		return false // not there yet, or a transient read error: poll again
	}
	if w, ok := dests[old]; ok && w > 0 {
		return false
	}
	return dests[moved] > 0
}
