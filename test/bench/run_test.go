package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// changeGap separates the spaced changes: kube-proxy's flags-only
// --ipvs-min-sync-period is 1 s, and a change right behind a sync would
// measure that rate limit rather than the proxy (the churn cases,
// cases_test.go, measure what users meet instead).
const changeGap = 1100 * time.Millisecond

// runProxy starts one proxy on a clean kernel and measures it: cold
// convergence, the change phase, then its resource use, and stops it. A
// failed measurement is an error of the test and is kept in Run.Error.
func (g *guest) runProxy(t *testing.T, px proxySpec, n int, want table) Run {
	r := Run{N: n, Proxy: px.name, CapS: g.p.ChangeCap.Seconds()}
	fail := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if r.Error == "" {
			r.Error = msg
		}
		t.Error(msg)
	}
	proc, err := startProcess(filepath.Join(g.work, fmt.Sprintf("%s-%d.log", px.name, n)), g.p.ProxyEnv, px.argv...)
	if err != nil {
		fail("%v", err)
		return r
	}
	defer func() {
		if !proc.exited() { // an early return: stop it so the cleanup can run
			proc.stop() //nolint:errcheck
		}
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", px.name, proc.logTail(40))
		}
	}()

	var heap func()
	if g.p.Profile && px.name == ipvsProxyName {
		heap = profileColdStart(t, g.work, n, g.p.ProfileSeconds)
	}
	cold, polls, err := converge(proc, want, g.p.ColdCap, g.destsOf)
	if heap != nil {
		heap()
	}
	if err != nil {
		fail("%s at %d Services: %v", px.name, n, err)
		return r
	}
	r.ColdS = cold.Seconds()
	r.ColdCPUS, _ = proc.cpu()
	t.Logf("%s: converged in %s (CPU %s s; %s); memory: %s", px.name, duration(r.ColdS), num(r.ColdCPUS), polls, proc.memory())
	// Changes start once the first sync has finished: kube-proxy writes its
	// ipsets and iptables after the virtual servers, and its first sync
	// execs `ipset add` once per Service. If that takes longer than the
	// cap, the changes start anyway and queue behind it, as they would.
	end, err := waitSynced(proc, proc.start, g.p.FirstSyncCap)
	switch {
	case errors.Is(err, errNoSync):
		r.FirstSyncS, r.FirstSyncCapped = g.p.FirstSyncCap.Seconds(), true
		t.Logf("%s: first sync not finished after %s; the changes start anyway", px.name, g.p.FirstSyncCap)
	case err != nil:
		fail("%s: first sync: %v", px.name, err)
		return r
	default:
		r.FirstSyncS = end.Sub(proc.start).Seconds()
		t.Logf("%s: first sync finished after %s", px.name, duration(r.FirstSyncS))
	}
	time.Sleep(changeGap)

	stopTap, err := g.nl.capture()
	if err != nil {
		fail("%v", err)
		return r
	}
	cpu0, _ := proc.cpu()
	phase := time.Now()
	for k := 0; k < g.p.Changes && px.spaced; k++ {
		if px.name == kubeProxyName && k >= g.p.MinKubeProxyChanges && time.Since(phase) > g.p.KubeProxyBudget {
			t.Logf("%s: change budget of %s spent after %d changes", px.name, g.p.KubeProxyBudget, k)
			break
		}
		c, err := g.change(proc, n, want)
		if err != nil {
			fail("%s: change %d: %v", px.name, k+1, err)
			break
		}
		r.Changes = append(r.Changes, c)
		t.Logf("%s: change %d: %s%s%s", px.name, k+1, duration(c.Seconds), capText(c), writesText(c))
		// kube-proxy is known to exceed the cap at 1,000 Services and
		// more; ipvs-proxy never should.
		if c.Capped && px.name == ipvsProxyName {
			fail("%s: change %d not visible in the kernel within %s", px.name, k+1, g.p.ChangeCap)
		}
		if px.name == ipvsProxyName && tapMissedIPVS(c) {
			fail("%s: change %d: the netlink tap saw none of its IPVS writes%s: the tap or its socket filter is broken", px.name, k+1, writesText(c))
		}
	}
	// Even kube-proxy shows a change within the cap at 100 Services; if it
	// never does, the bench is broken, not slow.
	if px.name == kubeProxyName && n <= 100 && len(r.Changes) > 0 {
		if _, capped, _ := quantile(r.Changes, 0); capped {
			fail("%s: no change visible in the kernel within %s at %d Services", px.name, g.p.ChangeCap, n)
		}
	}
	cpu1, _ := proc.cpu()
	t.Logf("%s: memory after the spaced changes: %s", px.name, proc.memory())
	r.PhaseCPUS, r.PhaseWallS = cpu1-cpu0, time.Since(phase).Seconds()
	if m, err := scrape(); err == nil {
		count, _ := m.ipv4(syncCountMetric)
		sum, _ := m.ipv4(syncSumMetric)
		r.Syncs, r.SyncS = int(count), sum
	}

	// The churn cases see their changes on the tap (tapSeer).
	r.Cases, err = g.runCases(proc, n, want, px.name != ipvsProxyName, allCapped(r.Changes))
	stopTap()
	for _, c := range r.Cases {
		t.Logf("%s: %s; memory: %s", px.name, caseText(c, g.p.ChangeCap.Seconds(), true), c.Memory)
	}
	if err != nil {
		fail("%s: %v", px.name, err)
	}

	if r.IPTablesRules, r.IPSetEntries, err = ruleCounts(); err != nil {
		fail("%v", err)
	}
	if r.PeakRSSKiB, err = proc.peakRSS(); err != nil {
		fail("%v", err)
	}
	t.Logf("%s at %d Services, memory: %s", px.name, n, proc.memory())
	if proc.exited() {
		fail("%s exited during the run", px.name)
	}
	r.TotalCPUS, err = proc.stop()
	r.WallS = time.Since(proc.start).Seconds()
	if err != nil {
		fail("%v", err)
	}
	return r
}

// converge waits until /proc/net/ip_vs holds exactly want, and returns
// when the read that showed it ended, counted from the exec. The whole
// table is read only when the watcher's probes (a netlink dump of one
// virtual server's real servers each, every probeGap) find every watched
// virtual server right, and at most once per read's cost (so whole reads
// take at most half a vCPU). So the figure is late by up to one probe gap
// and one read, and the polling costs the proxy little until the end.
func converge(proc *process, want table, limit time.Duration, dests func(vsKey) (map[netip.AddrPort]int, error)) (time.Duration, string, error) {
	last := "nothing read yet"
	w := newWatcher(want, uint64(proc.start.UnixNano()))
	var reads, probes int
	var lastRead time.Duration
	var nextRead time.Time
	polls := func() string {
		return fmt.Sprintf("%d reads of /proc/net/ip_vs, the last took %s; %d probes", reads, lastRead.Round(time.Millisecond), probes)
	}
	for {
		n, ready := w.ready(dests)
		probes += n
		if ready && !time.Now().Before(nextRead) {
			read := time.Now()
			data, err := os.ReadFile("/proc/net/ip_vs")
			if err != nil {
				return 0, polls(), err
			}
			// The kernel held this state once the read ended; parsing it
			// after is our time, not the proxy's.
			readEnd := time.Now()
			got, err := parseProcTable(data)
			if err != nil {
				return 0, polls(), err
			}
			reads, lastRead = reads+1, readEnd.Sub(read)
			if last = want.diff(got, 5); last == "" {
				return readEnd.Sub(proc.start), polls(), nil
			}
			w.reset(got)
			nextRead = time.Now().Add(time.Since(read))
		}
		if proc.exited() {
			return 0, polls(), fmt.Errorf("exited before converging (%s)", last)
		}
		if time.Since(proc.start) > limit {
			return 0, polls(), fmt.Errorf("not converged after %s: %s", limit, last)
		}
		time.Sleep(probeGap)
	}
}

// probeGap is the wait between converge's rounds of probes.
const probeGap = 50 * time.Millisecond

// destsOf is the real servers of one virtual server with their weights,
// as a table holds them, through the guest's moby/ipvs handle.
func (g *guest) destsOf(k vsKey) (map[netip.AddrPort]int, error) {
	ds, err := g.poll.GetDestinations(libService(k))
	if err != nil {
		return nil, err
	}
	out := make(map[netip.AddrPort]int, len(ds))
	for _, d := range ds {
		if a, ok := netip.AddrFromSlice(d.Address); ok {
			out[netip.AddrPortFrom(a.Unmap(), d.Port)] = d.Weight
		}
	}
	return out, nil
}

// errNoSync is waitSynced's timeout.
var errNoSync = errors.New("no sync")

// waitSynced waits until the proxy reports a successful sync that ended
// at or after since, and returns when that sync ended (by the guest's
// clock, which the proxy shares). Each scrape costs the proxy CPU (under TCG, many
// milliseconds for kube-proxy's histograms), so the interval grows with
// the wait: a 45 s sync costs about 25 scrapes, and the wait overshoots the
// sync's end by at most a quarter.
func waitSynced(proc *process, since time.Time, limit time.Duration) (time.Time, error) {
	begin := time.Now()
	deadline := begin.Add(limit)
	want := float64(since.UnixNano()) / 1e9
	last := "no scrape yet"
	for {
		m, err := scrape()
		if err == nil {
			v, ok := m.ipv4(lastSyncMetric)
			if ok && v >= want {
				return time.Unix(0, int64(v*1e9)), nil
			}
			last = fmt.Sprintf("%s = %.3f, want ≥ %.3f", lastSyncMetric, v, want)
		} else {
			last = err.Error()
		}
		if proc.exited() {
			return time.Time{}, fmt.Errorf("exited (%s)", last)
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%w after %s: %s", errNoSync, limit, last)
		}
		time.Sleep(max(50*time.Millisecond, time.Since(begin)/4))
	}
}

func capText(c Change) string {
	if c.Capped {
		return " (capped)"
	}
	return ""
}

// tapMissedIPVS reports whether the tap was read for a change that the
// kernel shows but saw no IPVS write in it: every endpoint change ipvs-proxy
// makes is IPVS writes, so the tap (or its filter) lost them, and every
// writes figure it gives would be too low without a word.
func tapMissedIPVS(c Change) bool {
	return c.Netlink != nil && !c.Capped && c.Netlink[kindIPVS] == 0
}

func writesText(c Change) string {
	s := ""
	if c.Netlink != nil {
		s += fmt.Sprintf(", %d netlink writes%s", c.netlinkTotal(), mix(c.Netlink))
	}
	if c.OwnWrites != nil {
		s += fmt.Sprintf(", own counter %d", *c.OwnWrites)
	}
	if c.Note != "" {
		s += ", " + c.Note
	}
	return s
}

// allCapped reports whether changes were made and none was seen within
// the cap.
func allCapped(cs []Change) bool {
	return len(cs) > 0 && !slices.ContainsFunc(cs, func(c Change) bool { return !c.Capped })
}
