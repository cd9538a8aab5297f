package bench

import "fmt"

// goals checks the figures against the bench's goals. They are reported, not
// asserted: the bench fails only when a measurement fails. The issue
// names 100 and 5,000 Services; a run with other sizes is judged at its
// smallest and largest.
func goals(p plan, runs []Run) []string {
	small, large := p.Sizes[0], p.Sizes[len(p.Sizes)-1]
	kpL, ipL, ipS := find(runs, large, kubeProxyName), find(runs, large, ipvsProxyName), find(runs, small, ipvsProxyName)
	var out []string
	if small != 100 || large != 5000 {
		out = append(out, fmt.Sprintf("(this run measured %d to %d Services; the goals are for 100 and 5,000)", small, large))
	}
	out = append(out,
		bounded(fmt.Sprintf("Cold convergence at %d Services ≤ 0.2 × kube-proxy's", large), coldCell(ipL), coldCell(kpL), 0.2),
		bounded(fmt.Sprintf("One endpoint change at %d Services (median) ≤ 0.05 × kube-proxy's", large),
			changeCell(ipL, 0.5), changeCell(kpL, 0.5), 0.05),
		bounded(fmt.Sprintf("One endpoint change at %d Services (median) ≤ 2 × ipvs-proxy's own at %d", large, small),
			changeCell(ipL, 0.5), changeCell(ipS, 0.5), 2),
		writesGoal(runs),
		bounded(fmt.Sprintf("Peak RSS at %d Services ≤ 0.5 × kube-proxy's", large), rssCell(ipL), rssCell(kpL), 0.5),
		rulesGoal(ipS, ipL, small, large),
	)
	return out
}

// bounded judges got ≤ bound × ref. A capped ref (kube-proxy slower than
// the cap) only makes the ratio smaller, so met stays met.
func bounded(goal string, got, ref cell, bound float64) string {
	if !got.ok || !ref.ok || got.lower || ref.v == 0 {
		return goal + ": not measured"
	}
	r := got.v / ref.v
	rel := "="
	if ref.lower {
		rel = "<"
	}
	if r <= bound {
		return fmt.Sprintf("%s: **met** (%s vs %s, ratio %s %s)", goal, got.text, ref.text, rel, num(r))
	}
	if ref.lower {
		return fmt.Sprintf("%s: **not shown** (%s vs %s, ratio < %s: the reference is only known to exceed its cap)",
			goal, got.text, ref.text, num(r))
	}
	return fmt.Sprintf("%s: **missed** (%s vs %s, ratio %s: %s× the bound)", goal, got.text, ref.text, num(r), num(r/bound))
}

func writesGoal(runs []Run) string {
	const goal = "Netlink writes for one endpoint change ≤ 2 at every size"
	own, tap, okOwn, okTap := 0, 0, false, false
	for _, r := range runs {
		if r.Proxy != ipvsProxyName {
			continue
		}
		if v, ok := maxInt(r.Changes, ownWrites); ok {
			own, okOwn = max(own, v), true
		}
		if v, ok := maxInt(r.Changes, tapWrites); ok {
			tap, okTap = max(tap, v), true
		}
	}
	if !okOwn && !okTap {
		return goal + ": not measured"
	}
	verdict := "**met**"
	if own > 2 || tap > 2 {
		verdict = "**missed**"
	}
	return fmt.Sprintf("%s: %s (largest over every change: %d by ipvs-proxy's counter, %d seen on the netlink tap)", goal, verdict, own, tap)
}

func rulesGoal(small, large *Run, ns, nl int) string {
	goal := fmt.Sprintf("iptables rules: the same count at %d and at %d Services", ns, nl)
	if small == nil || large == nil || small.TotalCPUS == 0 || large.TotalCPUS == 0 {
		return goal + ": not measured"
	}
	if small.IPTablesRules == large.IPTablesRules {
		return fmt.Sprintf("%s: **met** (%d and %d)", goal, small.IPTablesRules, large.IPTablesRules)
	}
	return fmt.Sprintf("%s: **missed** (%d and %d)", goal, small.IPTablesRules, large.IPTablesRules)
}
