package bench

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"time"
)

// What a periodic resync costs the changes around it: the proxy logs each
// resync when it ends ("Resync done", with its span from the start of its
// kernel read), and a change whose latency window overlaps that span is
// one the resync could have held up. The goal bounds such a change by the
// run's latency without a resync plus one change-by-change sync.

const partialSyncMetric = "kubeproxy_sync_partial_proxy_rules_duration_seconds"

// resyncLine is ipvs-proxy's klog line for a finished resync: the header's
// date and time (the guest's local clock, which the bench shares) and
// the resync's span.
var resyncLine = regexp.MustCompile(`^I(\d{4} \d{2}:\d{2}:\d{2}\.\d{6}) .*"Resync done".* took="([^"]+)"`)

// resyncsIn are the resyncs the log shows overlapping [from, to], each
// as [start, end] in Unix seconds.
func resyncsIn(log string, from, to time.Time) ([][2]float64, error) {
	f, err := os.Open(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		end, took, ok, err := parseResyncLine(sc.Text(), from.Year())
		if err != nil {
			return nil, err
		}
		if ok && end.After(from) && end.Add(-took).Before(to) {
			out = append(out, [2]float64{unixSeconds(end.Add(-took)), unixSeconds(end)})
		}
	}
	return out, sc.Err()
}

// parseResyncLine reads one log line; ok is false for other lines.
func parseResyncLine(line string, year int) (end time.Time, took time.Duration, ok bool, err error) {
	m := resyncLine.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, 0, false, nil
	}
	end, err = time.ParseInLocation("2006 0102 15:04:05.000000", fmt.Sprintf("%d %s", year, m[1]), time.Local)
	if err != nil {
		return time.Time{}, 0, false, fmt.Errorf("resync log line %q: %w", line, err)
	}
	if took, err = time.ParseDuration(m[2]); err != nil {
		return time.Time{}, 0, false, fmt.Errorf("resync log line %q: %w", line, err)
	}
	return end, took, true, nil
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// syncTotals are a sync-duration histogram's count and sum.
type syncTotals struct{ count, sum float64 }

// partialSyncs reads the proxy's change-by-change sync totals; zero when
// they cannot be read.
func partialSyncs() syncTotals {
	m, err := scrape()
	if err != nil {
		return syncTotals{}
	}
	c, _ := m.ipv4(partialSyncMetric + "_count")
	s, _ := m.ipv4(partialSyncMetric + "_sum")
	return syncTotals{c, s}
}

// meanSince is the mean duration of the syncs since before; 0 if none.
func (t syncTotals) meanSince(before syncTotals) float64 {
	if n := t.count - before.count; n > 0 {
		return (t.sum - before.sum) / n
	}
	return 0
}

// resyncEffect is what the resync goal compares: the changes that
// overlapped a resync against those that overlapped none (the quiet
// ones), in the same case.
//
// A change's latency varies without any resync (a collection, the API
// server's own pace), so one change cannot show what a resync added to
// it. Held each to the quiet changes' median plus one sync, windows of
// quiet changes as large as the overlapping set failed too: in two runs
// at 5,000 Services, 0 to 9 of every 31 to 40 quiet changes were over
// that bound. The goal therefore compares like with like: the median
// with the median, and the largest with the largest, each allowed one
// change-by-change sync more. A resync that held a change up by more
// than the quiet changes' worst shows in the second.
type resyncEffect struct {
	overlapping []float64 // their latencies, sorted
	// The quiet changes' median and largest, and the bounds: each plus
	// one change-by-change sync.
	quietMedian, quietMax   float64
	medianBound, largestMax float64
	ok                      bool
}

// median is the overlapping changes' median (nearest rank).
func (e resyncEffect) median() float64 { return e.overlapping[(len(e.overlapping)+1)/2-1] }

// largest is the overlapping changes' largest latency.
func (e resyncEffect) largest() float64 { return e.overlapping[len(e.overlapping)-1] }

// met is whether both comparisons hold.
func (e resyncEffect) met() bool { return e.median() <= e.medianBound && e.largest() <= e.largestMax }

// resyncEffectOf splits a case's changes by whether their window (API
// write to seen) overlaps a resync. A change not seen within the cap has
// no window to place, and may be the one a resync held up the longest:
// it counts as overlapping one, with a latency of +Inf, so the goal is
// missed, as the churn goals count capped changes (statsOf).
func resyncEffectOf(c *CaseResult) resyncEffect {
	if c == nil || len(c.Starts) != len(c.Latencies) || len(c.Resyncs) == 0 || c.PartialSyncS == 0 {
		return resyncEffect{}
	}
	var e resyncEffect
	var quiet []float64
	e.overlapping, quiet = splitByResync(c)
	for range c.Capped {
		e.overlapping = append(e.overlapping, math.Inf(1))
	}
	if len(quiet) == 0 || len(e.overlapping) == 0 {
		return resyncEffect{}
	}
	slices.Sort(quiet)
	slices.Sort(e.overlapping)
	e.quietMedian, e.quietMax = quiet[(len(quiet)+1)/2-1], quiet[len(quiet)-1]
	e.medianBound, e.largestMax = e.quietMedian+c.PartialSyncS, e.quietMax+c.PartialSyncS
	e.ok = true
	return e
}

// splitByResync splits a case's latencies by whether the change's window
// (API write to seen) overlaps one of its resyncs; c has a start for
// every latency.
func splitByResync(c *CaseResult) (overlapping, quiet []float64) {
	for i, lat := range c.Latencies {
		start, end := c.Starts[i], c.Starts[i]+lat
		if slices.ContainsFunc(c.Resyncs, func(r [2]float64) bool { return start < r[1] && end > r[0] }) {
			overlapping = append(overlapping, lat)
		} else {
			quiet = append(quiet, lat)
		}
	}
	return overlapping, quiet
}
