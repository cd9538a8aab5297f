package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// caseStats are a case's latencies as the report prints them.
type caseStats struct {
	med, p99, max float64
	ok            bool
	// capped: p99 or max is only known to exceed the cap.
	capped bool
}

func statsOf(c *CaseResult) caseStats {
	if c == nil || len(c.Latencies)+c.Capped == 0 {
		return caseStats{}
	}
	v := slices.Clone(c.Latencies)
	for range c.Capped {
		v = append(v, math.Inf(1))
	}
	slices.Sort(v)
	at := func(q float64) float64 {
		i := max(0, min(int(math.Ceil(q*float64(len(v))))-1, len(v)-1))
		return v[i]
	}
	return caseStats{med: at(0.5), p99: at(0.99), max: v[len(v)-1], ok: true, capped: c.Capped > 0}
}

func latText(s float64, capS float64) string {
	if math.IsInf(s, 1) {
		return "> " + duration(capS)
	}
	return duration(s)
}

// caseText is one case as the guest logs it, with the cap its capped
// changes exceeded; usage adds the CPU share and syncs, which only a
// proxy has (the informer floor's CPU share is shown when measured).
func caseText(c CaseResult, capS float64, usage bool) string {
	return c.Name + ": " + caseCell(&c, capS, usage)
}

// caseCell is "median / p99 / max", and with usage the proxy's CPU share
// and sync count in the case (the floor's CPU share, without syncs, when
// it has one).
func caseCell(c *CaseResult, capS float64, usage bool) string {
	s := statsOf(c)
	if !s.ok {
		return "n/a"
	}
	text := fmt.Sprintf("%s / %s / %s", latText(s.med, capS), latText(s.p99, capS), latText(s.max, capS))
	n := len(c.Latencies) + c.Capped
	if c.Capped > 0 || c.Unissued > 0 {
		text += fmt.Sprintf(" (%d changes, %d capped, %d never issued: budget spent)", n, c.Capped, c.Unissued)
	} else {
		text += fmt.Sprintf(" (%d changes)", n)
	}
	if c.Retried > 0 {
		text += fmt.Sprintf(", %d writes tried again after the transport lost them", c.Retried)
	}
	if c.Queued > 0 {
		text += fmt.Sprintf(", %d written only when fewer than %d were in flight", c.Queued, maxInFlight)
	}
	if c.Polled > 0 {
		text += fmt.Sprintf(", %d timed by a kernel read, not the netlink tap (upper bounds)", c.Polled)
	}
	if c.IssueS > 0 {
		text += fmt.Sprintf(", issued at %s/s", num(float64(n)/c.IssueS))
	}
	switch {
	case c.CPUError != "":
		text += "; CPU not measured: " + c.CPUError
		if usage {
			text += fmt.Sprintf(", %d syncs", c.Syncs)
		}
	case c.WallS > 0 && (usage || c.CPUS > 0):
		text += fmt.Sprintf("; CPU %.0f %% (system %.0f %%", 100*c.CPUS/c.WallS, 100*c.SysS/c.WallS)
		if c.LoopS > 0 {
			text += fmt.Sprintf("; sync loop %.0f %%", 100*c.LoopS/c.WallS)
		}
		text += ")"
		if usage {
			text += fmt.Sprintf(", %d syncs", c.Syncs)
		}
	}
	if c.WallS > 0 && c.GuestCPUs > 0 {
		text += fmt.Sprintf("; guest: its %d vCPUs %.0f %% busy, runnable tasks waited %.0f %% of one, the bench's own process %.0f %% of one",
			c.GuestCPUs, 100*c.GuestBusyS/(c.WallS*float64(c.GuestCPUs)), 100*c.GuestWaitS/c.WallS, 100*c.BenchS/c.WallS)
	}
	if a := statsOf(&CaseResult{Latencies: c.Answers}); a.ok {
		text += fmt.Sprintf("; API server answered the writes in %s / %s", duration(a.med), duration(a.p99))
		if c.ServerS > 0 {
			text += fmt.Sprintf(" (of that, its own handling: %s mean)", duration(c.ServerS))
		}
	}
	if a := statsOf(&CaseResult{Latencies: c.AfterAnswer}); a.ok {
		text += fmt.Sprintf("; seen after the answer: %s / %s", duration(a.med), duration(a.p99))
	}
	if c.Name != resyncCaseName && len(c.Resyncs) > 0 {
		text += "; " + resyncShare(c)
	}
	return text
}

// resyncShare says how many periodic resyncs ran in a case not meant to
// have one, how many of its changes overlapped them, and the p99 of the
// others.
func resyncShare(c *CaseResult) string {
	text := fmt.Sprintf("periodic resyncs in it: %d", len(c.Resyncs))
	if len(c.Starts) != len(c.Latencies) {
		return text
	}
	over, quiet := splitByResync(c)
	text += fmt.Sprintf(", overlapped by %d of its changes", len(over))
	if q := statsOf(&CaseResult{Latencies: quiet}); q.ok {
		text += fmt.Sprintf("; the other %d: p99 %s", len(quiet), duration(q.p99))
	}
	return text
}

func findCase(r *Run, name string) *CaseResult {
	if r == nil {
		return nil
	}
	for i := range r.Cases {
		if r.Cases[i].Name == name {
			return &r.Cases[i]
		}
	}
	return nil
}

// floorRatio is ipvs-proxy's median and p99 over the informer's.
func floorRatio(ip, inf *CaseResult) string {
	a, b := statsOf(ip), statsOf(inf)
	if !a.ok || !b.ok || b.med == 0 || b.p99 == 0 || math.IsInf(a.p99, 1) || math.IsInf(b.p99, 1) {
		return "n/a"
	}
	return fmt.Sprintf("%s / %s", num(a.med/b.med), num(a.p99/b.p99))
}

// renderCases is the churn table: for each size and case, the latency
// from the API write until each proxy's kernel shows it, next to the
// informer floor.
func renderCases(b *strings.Builder, p plan, runs []Run) {
	b.WriteString("\n### Latency under churn: API write → kernel, next to a bare informer's API write → event handler\n\n")
	b.WriteString("Each cell: median / p99 / max, the changes measured, their CPU as a share of one core over the case (of it, system time, and for ipvs-proxy the share its sync loop's thread used), and for the proxies their syncs in it.\n\n")
	for _, name := range []string{kubeProxyName, kubeProxyKubeadmName, ipvsProxyName} {
		fmt.Fprintf(b, "- %s: %s\n", name, proxySettings[name])
	}
	fmt.Fprintf(b, "- %s: a client-go informer on the bench's EndpointSlices in a process of its own in the same guest, with the proxies' client settings (protobuf), timing the same kind of writes (its own run, before the proxies) to its handler; its CPU is the least a proxy that watches these slices can use\n", informerName)
	fmt.Fprintf(b, "- churn R/s: each change written on its own goroutine at its time, with at most %d writes in flight (the API server allows 100 streams on one HTTP/2 connection, past them client-go dials another, and under TCG each TLS handshake takes a vCPU for a long moment); \"issued at\" is the rate the guest's client reached under TCG; \"written only when fewer than %d were in flight\" counts the writes that waited for one to end (their timing starts when they are written)\n", maxInFlight, maxInFlight)
	b.WriteString("- \"guest\": the whole guest over the case, from /proc/schedstat: its vCPUs' busy share, the time runnable tasks waited for a vCPU (as a share of one; above 100 % more than one task waited on average), and the bench process's own CPU (the writer, the netlink tap's reader, the seers), which shares the vCPUs with the process under test\n")
	b.WriteString("- \"API server answered the writes in\": median / p99 from each write to the API server's answer, the first hop of every change (committed; the watch comes after it), in the same run; \"its own handling\" is the mean of the API server's apiserver_request_duration_seconds for those updates (arrival to answer, etcd included): the rest of the answer time is the way between the guest's client and the API server, through QEMU's user-mode network, and back\n")
	b.WriteString("- \"seen after the answer\": median / p99 of each seen change's latency less its write's answer time, what the way from the API server to the kernel (the floor's: to its handler) added to the answer; negative when the change was seen before the writer had the answer. A slow answer slows every watcher's event too, so a tail that this leaves out is the API server's, not the proxy's\n")
	b.WriteString("- a proxy's change is seen at the kernel's receive time, on the netlink tap, of the later of its two real-server writes (the new one with a weight, the old one deleted or at weight 0), confirmed by one read of the kernel; only a change the tap has not shown after 2 s is polled, sparsely (polling every open change every 5 ms took the guest's vCPUs and IPVS's mutex from the proxy at 50/s)\n")
	b.WriteString("- across a resync: the resyncs are those the proxy logged (\"Resync done\", from the start of its kernel read); a change overlaps one when its API write to its kernel write does; ipvs-proxy's periodic resync (every 30 s) also falls in other cases at times, and their cells say so\n\n")
	b.WriteString("| Services | case | informer (floor) | kube-proxy, flags (1s) | kube-proxy, kubeadm config (0s) | ipvs-proxy | ipvs-proxy ÷ floor (median / p99) |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|\n")
	for _, n := range p.allSizes() {
		inf, kp, kk, ip := find(runs, n, informerName), find(runs, n, kubeProxyName), find(runs, n, kubeProxyKubeadmName), find(runs, n, ipvsProxyName)
		var names []string
		for _, r := range []*Run{inf, ip, kp, kk} {
			for _, c := range runsCases(r) {
				if !slices.Contains(names, c) {
					names = append(names, c)
				}
			}
		}
		for _, c := range names {
			capS := p.ChangeCap.Seconds()
			fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s |\n", n, c, caseCell(findCase(inf, c), capS, false),
				runCell(kp, c, capS), runCell(kk, c, capS), caseCell(findCase(ip, c), capS, true),
				floorRatio(findCase(ip, c), findCase(inf, c)))
		}
	}
}

func runsCases(r *Run) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, c := range r.Cases {
		out = append(out, c.Name)
	}
	return out
}

// caseGoals are the churn issue's goals.
func caseGoals(p plan, runs []Run) []string {
	var out []string
	// Back-to-back: median within 1.5× the floor's plus 10 ms, at every
	// size. A size without both figures, or whose floor is only known to
	// exceed the cap, is not judged, and the goal is then not shown: "at
	// every size" must not hold on the sizes that happened to finish.
	var b2b []string
	judged, missed, unjudged, floorCapped := false, false, false, false
	for _, n := range p.allSizes() {
		ip, inf := statsOf(findCase(find(runs, n, ipvsProxyName), "back-to-back")), statsOf(findCase(find(runs, n, informerName), "back-to-back"))
		switch {
		case !ip.ok || !inf.ok:
			unjudged = true
			b2b = append(b2b, fmt.Sprintf("%d: not measured", n))
			continue
		case math.IsInf(inf.med, 1):
			unjudged, floorCapped = true, true
			b2b = append(b2b, fmt.Sprintf("%d: not measured (floor capped)", n))
			continue
		}
		judged = true
		bound := 1.5*inf.med + 0.010
		b2b = append(b2b, fmt.Sprintf("%d: %s vs bound %s", n, latText(ip.med, p.ChangeCap.Seconds()), duration(bound)))
		if ip.med > bound {
			missed = true
		}
	}
	goal := "Back-to-back changes: ipvs-proxy's median ≤ 1.5 × the informer floor's + 10 ms, at every size"
	switch {
	case !judged && !floorCapped:
		out = append(out, goal+": not measured")
	case !judged:
		out = append(out, fmt.Sprintf("%s: not measured (%s)", goal, strings.Join(b2b, "; ")))
	case missed:
		out = append(out, fmt.Sprintf("%s: **missed** (%s)", goal, strings.Join(b2b, "; ")))
	case unjudged:
		out = append(out, fmt.Sprintf("%s: **not shown** (%s)", goal, strings.Join(b2b, "; ")))
	default:
		out = append(out, fmt.Sprintf("%s: **met** (%s)", goal, strings.Join(b2b, "; ")))
	}

	// Churn at 50/s at the largest size kube-proxy ran at (5,000 in make bench).
	large := p.Sizes[len(p.Sizes)-1]
	const churn = goalCase
	ip, inf := findCase(find(runs, large, ipvsProxyName), churn), findCase(find(runs, large, informerName), churn)
	si, sf := statsOf(ip), statsOf(inf)
	goal = fmt.Sprintf("Churn at 50 changes/s at %d Services: ipvs-proxy's p99 ≤ 3 × the informer floor's p99", large)
	// The goal holds every change, as users meet them; where a periodic
	// resync fell in the case, the note says what of the tail the resync
	// goal below answers for.
	resyncNote := ""
	if si.ok && len(ip.Resyncs) > 0 {
		resyncNote = "; " + resyncShare(ip)
	}
	switch {
	case !si.ok || !sf.ok:
		out = append(out, goal+": not measured")
	case math.IsInf(sf.p99, 1):
		// Against a bound of +Inf any figure would be met.
		out = append(out, goal+": not measured (floor capped: the informer floor's p99 is only known to exceed the cap)")
	case math.IsInf(si.p99, 1) || si.p99 > 3*sf.p99:
		out = append(out, fmt.Sprintf("%s: **missed** (%s vs %s%s)", goal, latText(si.p99, p.ChangeCap.Seconds()), duration(sf.p99), resyncNote))
	default:
		out = append(out, fmt.Sprintf("%s: **met** (%s vs %s, ratio %s%s)", goal, duration(si.p99), duration(sf.p99), num(si.p99/sf.p99), resyncNote))
	}
	for _, kname := range []string{kubeProxyName, kubeProxyKubeadmName} {
		kc := findCase(find(runs, large, kname), churn)
		goal = fmt.Sprintf("Churn at 50 changes/s at %d Services: ipvs-proxy's CPU share ≤ 0.1 × %s's", large, kname)
		// A share needs both CPU readings of the case: a proxy that exited
		// in it has none (CPUError), and a share of 0 or less would be met.
		if !cpuMeasured(ip) || !cpuMeasured(kc) {
			out = append(out, goal+": not measured")
			continue
		}
		is, ks := ip.CPUS/ip.WallS, kc.CPUS/kc.WallS
		note := ""
		if ip.LoopS > 0 {
			note = fmt.Sprintf("; of ipvs-proxy's, its sync loop used %.1f %%, ratio %s", 100*ip.LoopS/ip.WallS, num(ip.LoopS/ip.WallS/ks))
		}
		if kc.Capped > 0 || kc.Unissued > 0 {
			note += fmt.Sprintf("; %s did not keep up: %d changes capped, %d never issued, so its share is that of a proxy behind", kname, kc.Capped, kc.Unissued)
		}
		if cpuMeasured(inf) {
			fs := inf.CPUS / inf.WallS
			note += fmt.Sprintf("; the informer floor used %.1f %%", 100*fs)
			if fs > 0.1*ks {
				note += fmt.Sprintf(", more than the bound of %.1f %%", 10*ks)
			}
		}
		v := "**met**"
		if is > 0.1*ks {
			v = "**missed**"
		}
		out = append(out, fmt.Sprintf("%s: %s (%.1f %% vs %.1f %%, ratio %s%s)", goal, v, 100*is, 100*ks, num(is/ks), note))
	}

	// A resync among back-to-back changes adds at most one change-by-change
	// sync: the changes whose window overlaps a resync against those
	// that overlap none (resyncEffect).
	for _, n := range []int{5000, 10000} {
		goal := fmt.Sprintf("A periodic resync adds at most one change-by-change sync to a change's latency at %d Services (the changes overlapping a resync against those overlapping none, plus the proxy's mean change-by-change sync: median ≤ their median + it, largest ≤ their largest + it)", n)
		c := findCase(find(runs, n, ipvsProxyName), resyncCaseName)
		e := resyncEffectOf(c)
		capS := p.ChangeCap.Seconds()
		switch {
		case !e.ok && c != nil && c.Capped > 0:
			// A change held up past the cap, whatever held it up, is
			// more than one sync, even where the case cannot be split.
			out = append(out, fmt.Sprintf("%s: **missed** (%d changes not seen within %s; the others cannot be compared: %s)", goal, c.Capped, duration(capS), resyncGapReason(c)))
		case !e.ok:
			out = append(out, goal+": not measured"+resyncGap(c))
		case !e.met():
			out = append(out, fmt.Sprintf("%s: **missed** (%s)", goal, e.text(c, capS)))
		default:
			out = append(out, fmt.Sprintf("%s: **met** (%s)", goal, e.text(c, capS)))
		}
	}
	return out
}

// text is the resync goal's figures; capS is the cap its capped changes
// exceeded.
func (e resyncEffect) text(c *CaseResult, capS float64) string {
	capped := ""
	if c.Capped > 0 {
		capped = fmt.Sprintf(" (%d of them not seen within the cap)", c.Capped)
	}
	return fmt.Sprintf("%d resyncs, %d changes overlapped one%s: median %s against %s = %s + %s, largest %s against %s = %s + %s",
		len(c.Resyncs), len(e.overlapping), capped, latText(e.median(), capS), duration(e.medianBound), duration(e.quietMedian), duration(c.PartialSyncS),
		latText(e.largest(), capS), duration(e.largestMax), duration(e.quietMax), duration(c.PartialSyncS))
}

// cpuMeasured reports whether a case has a CPU share to compare: both of
// its CPU readings succeeded and it used some.
func cpuMeasured(c *CaseResult) bool {
	return c != nil && c.CPUError == "" && c.WallS > 0 && c.CPUS > 0
}

// resyncGap says why the resync goal could not be judged, in brackets.
func resyncGap(c *CaseResult) string {
	if c == nil {
		return ""
	}
	return " (" + resyncGapReason(c) + ")"
}

// resyncGapReason is why the changes of c cannot be compared.
func resyncGapReason(c *CaseResult) string {
	switch {
	case len(c.Resyncs) == 0:
		return "no resync in the case"
	case c.PartialSyncS == 0:
		return "no change-by-change sync duration"
	}
	return "every change overlapped a resync, or none did"
}

// runCell is a kube-proxy's cell for case c: its result, or why it did
// not meet the case (runCases).
func runCell(r *Run, c string, capS float64) string {
	if cr := findCase(r, c); cr != nil || r == nil || len(r.Cases) == 0 || !allCapped(r.Changes) {
		return caseCell(cr, capS, true)
	}
	return "not run: no spaced change seen within the cap, so only " + goalCase
}
