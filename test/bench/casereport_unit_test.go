package bench

// Tests of the churn goals' verdicts (caseGoals) where a figure is missing
// or only bounded: a goal may be met only on figures that show it.

import (
	"strings"
	"testing"
	"time"
)

// goalLine is the goal of caseGoals' output that starts with prefix.
func goalLine(t *testing.T, goals []string, prefix string) string {
	t.Helper()
	for _, g := range goals {
		if strings.HasPrefix(g, prefix) {
			return g
		}
	}
	t.Fatalf("no goal starts with %q in:\n%s", prefix, strings.Join(goals, "\n"))
	return ""
}

// b2bCase is a back-to-back case of the latencies ms, in milliseconds.
func b2bCase(ms ...float64) []CaseResult {
	c := CaseResult{Name: "back-to-back"}
	for _, v := range ms {
		c.Latencies = append(c.Latencies, v/1000)
	}
	return []CaseResult{c}
}

// TestBackToBackGoalJudgesEverySize guards the back-to-back goal's "at
// every size": a size where ipvs-proxy or the informer floor has no
// back-to-back result (its run failed before the case), or where the
// floor's median is only known to exceed the cap, is named as not
// measured and the goal is not shown, rather than met on the sizes that
// happened to finish.
func TestBackToBackGoalJudgesEverySize(t *testing.T) {
	const goal = "Back-to-back changes: ipvs-proxy's median"
	p := plan{Sizes: []int{100, 5000}, ChangeCap: time.Minute}
	floor := func(n int) Run { return Run{N: n, Proxy: informerName, Cases: b2bCase(100)} }
	ipvs := func(n int, ms float64) Run { return Run{N: n, Proxy: ipvsProxyName, Cases: b2bCase(ms)} }
	failed := func(n int, proxy string) Run {
		return Run{N: n, Proxy: proxy, Error: proxy + ": back-to-back: the proxy exited"}
	}
	for _, tc := range []struct {
		name string
		runs []Run
		want string
	}{
		{"every size within its bound", []Run{floor(100), ipvs(100, 120), floor(5000), ipvs(5000, 150)},
			"**met** (100: 120 ms vs bound 160 ms; 5000: 150 ms vs bound 160 ms)"},
		{"ipvs-proxy's run failed at one size", []Run{floor(100), ipvs(100, 120), floor(5000), failed(5000, ipvsProxyName)},
			"**not shown** (100: 120 ms vs bound 160 ms; 5000: not measured)"},
		{"the floor's run failed at one size", []Run{floor(100), ipvs(100, 120), failed(5000, informerName), ipvs(5000, 150)},
			"**not shown** (100: 120 ms vs bound 160 ms; 5000: not measured)"},
		{"a size missed and another not measured", []Run{floor(100), ipvs(100, 900)},
			"**missed** (100: 900 ms vs bound 160 ms; 5000: not measured)"},
		{"the floor capped at one size", []Run{floor(100), ipvs(100, 120),
			{N: 5000, Proxy: informerName, Cases: []CaseResult{{Name: "back-to-back", Latencies: []float64{0.1}, Capped: 2}}}, ipvs(5000, 30000)},
			"**not shown** (100: 120 ms vs bound 160 ms; 5000: not measured (floor capped))"},
		{"no size measured", nil, ": not measured"},
	} {
		got := goalLine(t, caseGoals(p, tc.runs), goal)
		if !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant it to end in %s", tc.name, got, tc.want)
		}
	}
}

// TestLatencyGoalsAgainstCappedFloor guards both latency goals against an
// informer floor whose median (back-to-back) or p99 (churn 50/s) is a
// capped change: its bound is then +Inf, which any figure of ipvs-proxy's
// would meet. The goal says the floor was capped instead, and a capped
// ipvs-proxy against a measured floor still misses.
func TestLatencyGoalsAgainstCappedFloor(t *testing.T) {
	p := plan{Sizes: []int{5000}, ChangeCap: time.Minute}
	churn := func(capped int, s ...float64) CaseResult {
		return CaseResult{Name: goalCase, Latencies: s, Capped: capped}
	}
	for _, tc := range []struct {
		name       string
		floor, ip  []CaseResult
		b2b, churn string
	}{
		{"floor capped in both",
			[]CaseResult{{Name: "back-to-back", Latencies: []float64{0.1}, Capped: 2}, churn(1, 0.1, 0.1, 0.1)},
			[]CaseResult{{Name: "back-to-back", Latencies: []float64{30, 30, 30}}, churn(0, 40, 40, 40, 40)},
			": not measured (5000: not measured (floor capped))",
			": not measured (floor capped: the informer floor's p99 is only known to exceed the cap)"},
		{"floor measured, ipvs-proxy capped",
			[]CaseResult{{Name: "back-to-back", Latencies: []float64{0.1}}, churn(0, 0.1, 0.2)},
			[]CaseResult{{Name: "back-to-back", Latencies: []float64{0.1}, Capped: 2}, churn(1, 0.1, 0.1)},
			": **missed** (5000: > 60.0 s vs bound 160 ms)",
			": **missed** (> 60.0 s vs 200 ms)"},
		{"both measured",
			[]CaseResult{{Name: "back-to-back", Latencies: []float64{0.1}}, churn(0, 0.1, 0.2)},
			[]CaseResult{{Name: "back-to-back", Latencies: []float64{0.12}}, churn(0, 0.1, 0.3)},
			": **met** (5000: 120 ms vs bound 160 ms)",
			": **met** (300 ms vs 200 ms, ratio 1.50)"},
	} {
		goals := caseGoals(p, []Run{{N: 5000, Proxy: informerName, Cases: tc.floor}, {N: 5000, Proxy: ipvsProxyName, Cases: tc.ip}})
		if got := goalLine(t, goals, "Back-to-back changes"); !strings.HasSuffix(got, tc.b2b) {
			t.Errorf("%s, back-to-back:\n got %s\nwant it to end in %s", tc.name, got, tc.b2b)
		}
		if got := goalLine(t, goals, "Churn at 50 changes/s at 5000 Services: ipvs-proxy's p99"); !strings.HasSuffix(got, tc.churn) {
			t.Errorf("%s, churn 50/s:\n got %s\nwant it to end in %s", tc.name, got, tc.churn)
		}
	}
}

// TestResyncGoalCountsCappedChanges guards the resync goal against
// leaving out the changes of its case that were not seen within the cap:
// such a change may be the one a resync held up the longest, so the goal
// is missed, whether or not the case's other changes can be compared.
func TestResyncGoalCountsCappedChanges(t *testing.T) {
	const goal = "A periodic resync adds at most one change-by-change sync to a change's latency at 5000 Services"
	p := plan{Sizes: []int{5000}, ChangeCap: time.Minute}
	// Changes at 0, 1, 2 and 3 s; the resync from 1.05 to 1.5 s overlaps
	// the second.
	resync := func(capped int, resyncs [][2]float64) CaseResult {
		return CaseResult{Name: resyncCaseName, Latencies: []float64{0.1, 0.11, 0.12, 0.1}, Starts: []float64{0, 1, 2, 3},
			Resyncs: resyncs, PartialSyncS: 0.05, Capped: capped}
	}
	one := [][2]float64{{1.05, 1.5}}
	for _, tc := range []struct {
		name string
		c    CaseResult
		want string
	}{
		{"every change seen", resync(0, one),
			": **met** (1 resyncs, 1 changes overlapped one: median 110 ms against 150 ms = 100 ms + 50.0 ms, largest 110 ms against 170 ms = 120 ms + 50.0 ms)"},
		{"a change capped", resync(1, one),
			": **missed** (1 resyncs, 2 changes overlapped one (1 of them not seen within the cap): median 110 ms against 150 ms = 100 ms + 50.0 ms, largest > 60.0 s against 170 ms = 120 ms + 50.0 ms)"},
		{"a change capped, no resync logged", resync(1, nil),
			": **missed** (1 changes not seen within 60.0 s; the others cannot be compared: no resync in the case)"},
		{"no resync logged, none capped", resync(0, nil), ": not measured (no resync in the case)"},
	} {
		got := goalLine(t, caseGoals(p, []Run{{N: 5000, Proxy: ipvsProxyName, Cases: []CaseResult{tc.c}}}), goal)
		if !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant it to end in %s", tc.name, got, tc.want)
		}
	}
}

// TestCPUGoalNeedsBothReadings guards the CPU goal against a share taken
// from a failed reading: a proxy that exited during the case has no CPU
// figure (CPUError), and a share of 0 or less, which a failed reading
// taken as zero gives, would be met. Either proxy's missing figure leaves
// the goal not measured.
func TestCPUGoalNeedsBothReadings(t *testing.T) {
	const goal = "Churn at 50 changes/s at 5000 Services: ipvs-proxy's CPU share ≤ 0.1 × kube-proxy's"
	p := plan{Sizes: []int{5000}, ChangeCap: time.Minute}
	measured := func(cpu float64) CaseResult {
		return CaseResult{Name: goalCase, Latencies: []float64{0.1}, WallS: 10, CPUS: cpu}
	}
	unread := CaseResult{Name: goalCase, Latencies: []float64{0.1}, WallS: 10,
		CPUError: "open /proc/4242/stat: no such file or directory"}
	for _, tc := range []struct {
		name   string
		ip, kp CaseResult
		want   string
	}{
		{"both read", measured(0.4), measured(5), ": **met** (4.0 % vs 50.0 %, ratio 0.08)"},
		{"ipvs-proxy's reading failed", unread, measured(5), ": not measured"},
		{"ipvs-proxy's share negative", measured(-2), measured(5), ": not measured"},
		{"kube-proxy's reading failed", measured(0.4), unread, ": not measured"},
	} {
		runs := []Run{{N: 5000, Proxy: ipvsProxyName, Cases: []CaseResult{tc.ip}}, {N: 5000, Proxy: kubeProxyName, Cases: []CaseResult{tc.kp}}}
		got := goalLine(t, caseGoals(p, runs), goal)
		if !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant it to end in %s", tc.name, got, tc.want)
		}
	}
	// The case's cell says why, rather than a share of 0.
	if got := caseCell(&unread, 60, true); !strings.Contains(got, "; CPU not measured: open /proc/4242/stat") || strings.Contains(got, "CPU 0 %") {
		t.Errorf("the cell of a case whose CPU was not read: %s", got)
	}
}

// TestRunSettingsStated guards the report's statement of the settings a
// run adds to every proxy's own: BENCH_PROXY_ENV (given to both proxies
// and the informer floor) and BENCH_PROFILE (ipvs-proxy profiled and
// traced while it is measured, which its figures carry), stated when
// off as well.
func TestRunSettingsStated(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    plan
		want []string
	}{
		{"defaults", plan{Sizes: []int{100}, ChangeCap: time.Minute}, []string{
			"- environment added to both proxies and to the informer floor (BENCH_PROXY_ENV): none\n",
			"- profiling (BENCH_PROFILE): off\n",
		}},
		{"environment and profiling", plan{Sizes: []int{100}, ChangeCap: time.Minute, Profile: true, ProfileSeconds: 10,
			ProxyEnv: []string{"GOGC=400", "GOMEMLIMIT=200MiB"}}, []string{
			"- environment added to both proxies and to the informer floor (BENCH_PROXY_ENV): `GOGC=400 GOMEMLIMIT=200MiB`\n",
			"- profiling (BENCH_PROFILE=10): on. ipvs-proxy ran with --profiling=true; a CPU profile of its first 10 s",
			"they are not comparable with an unprofiled run's, nor with kube-proxy's",
		}},
	} {
		md := render(tc.p, nil, calibration{}, time.Minute)
		for _, s := range tc.want {
			if !strings.Contains(md, s) {
				t.Errorf("%s: the report lacks %q:\n%s", tc.name, s, md)
			}
		}
	}
}
