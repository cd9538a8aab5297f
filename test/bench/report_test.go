package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// render is the markdown the host prints and `make bench` keeps: one table
// with kube-proxy and ipvs-proxy of the same run side by side, then the
// issue's goals, met or missed.
func render(p plan, runs []Run, cal calibration, wall time.Duration) string {
	var b strings.Builder
	kind := "full"
	if p.Smoke {
		kind = "smoke"
	}
	fmt.Fprintf(&b, "## VM bench (%s): kube-proxy v1.37 `--proxy-mode=ipvs` vs ipvs-proxy, same kernel, same API objects\n\n", kind)
	fmt.Fprintf(&b, "One QEMU VM (Debian 6.1 kernel, TCG, 2 vCPU, %s) for the whole run; ClusterIP Services × %d endpoints; "+
		"wall time %s. Software emulation makes absolute times slow: the ratio is the result.", p.Memory, endpoints, wall.Round(time.Second))
	if cal.ExecS > 0 {
		fmt.Fprintf(&b, " One exec (`ipset version`) takes %s here.", duration(cal.ExecS))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Caps: %d changes per proxy and size; kube-proxy's change phase stops after %s (at least %d changes); "+
		"one change is capped at %s (\"> cap\"); the wait for the first sync at %s; cold convergence at %s (a failure).\n",
		p.Changes, p.KubeProxyBudget, p.MinKubeProxyChanges, p.ChangeCap, p.FirstSyncCap, p.ColdCap)
	b.WriteString("Settings of this run, beyond each proxy's own (below):\n\n")
	for _, s := range runSettings(p) {
		b.WriteString("- " + s + "\n")
	}
	b.WriteString("\n")

	b.WriteString("| Services | measure | kube-proxy | ipvs-proxy | ipvs-proxy / kube-proxy | floor (moby/ipvs loop) |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|\n")
	var errs []string
	for _, n := range p.allSizes() {
		kp, ip, fl := find(runs, n, kubeProxyName), find(runs, n, ipvsProxyName), find(runs, n, floorName)
		for _, r := range []*Run{fl, kp, ip, find(runs, n, kubeProxyKubeadmName), find(runs, n, informerName)} {
			if r != nil && r.Error != "" {
				errs = append(errs, fmt.Sprintf("%s at %d: %s", r.Proxy, n, r.Error))
			}
		}
		for _, row := range rows(kp, ip, fl) {
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", n, row[0], row[1], row[2], row[3], row[4])
		}
	}
	b.WriteString("\n")
	b.WriteString(notes)
	renderCases(&b, p, runs)
	b.WriteString("\n### Goals: cold start, one change, memory, rules\n\n")
	for _, g := range goals(p, runs) {
		b.WriteString("- " + g + "\n")
	}
	b.WriteString("\n### Goals: latency under churn\n\n")
	for _, g := range caseGoals(p, runs) {
		b.WriteString("- " + g + "\n")
	}
	if len(errs) > 0 {
		b.WriteString("\n### Incomplete runs\n\n")
		for _, e := range errs {
			b.WriteString("- " + e + "\n")
		}
	}
	return b.String()
}

const notes = `How each figure is taken:

- Cold convergence: from the exec until /proc/net/ip_vs holds exactly the Services' virtual and real servers, timed at the end of the read that shows it. The whole table is read only when netlink probes (every 50 ms, one dump of one virtual server's real servers each) find right all of a random 16 of the wanted virtual servers, or after a read that was not whole, all of a random 16 of those it found wrong; and at most once per read's cost. So the figure is late by up to 50 ms and one read.
- Endpoint change: one endpoint of one EndpointSlice moved to a new address, from the API write (in the guest, admin credentials) until the kernel shows the new real server, and the old one gone or at weight 0; polled every 5 ms, and once the wait passes 0.5 s every 1 % of it (each read takes CPU from the proxy), so a change is seen late by up to the larger of 5 ms and 1 % of its latency, plus one read. Median and p99 are nearest-rank; changes are ≥ 1.1 s apart (kube-proxy's flags-only --ipvs-min-sync-period is 1 s; the churn table below measures changes as clusters make them); a change not visible within the cap counts as "> cap".
- CPU: user + system time of the proxy and its reaped children (kube-proxy execs ipset and iptables-restore). In the change phase: its CPU, periodic resyncs included, and that as a share of one core over the phase's wall time (the ratio compares shares, since kube-proxy's phases last longer); "whole run" is exec to exit (wait4 rusage), with the run's wall time.
- Syncs: the proxy's kubeproxy_sync_proxy_rules_duration_seconds count and mean, from start to the end of the change phase (kube-proxy: its IPv4 proxier; its IPv6 one syncs no Services here).
- Peak RSS: VmHWM of the proxy process.
- Netlink writes: messages sent to the kernel that change IPVS, ipsets, nf_tables (iptables-nft) or rtnetlink state, seen on an nlmon tap from the API write until the sync that made the change had finished; the median change, with its mix. The own counter is ipvs-proxy's ipvs_proxy_kernel_operations_total delta over the same window.
- iptables rules: -A lines of iptables-save and ip6tables-save after the change phase; ipset entries: members of every set.
- First sync ended: from the exec until the proxy's own kubeproxy_sync_proxy_rules_last_timestamp_seconds (kube-proxy: its IPv4 proxier's) says a sync has ended; changes start then, or after the cap.
- TCG makes every exec of a process cost tens of milliseconds or more (page faults are emulated; the figure is above the table), so a proxy that execs ipset and iptables-restore on each sync, as kube-proxy does, pays more here than on hardware, where an exec costs about a millisecond. The binaries and libraries the proxies exec are copied into the guest's page cache first, so neither pays for the 9p root. Read the ratios with that in mind.
- Floor: the same table written by a bare loop over moby/ipvs, one request per virtual and real server and one system call and reply each; one change is its two writes (add the new real server, delete the old). ipvs-proxy sends its writes in batches of up to 256 netlink messages per system call (pkg/nlbatch), the same kernel work with fewer round trips, so its cold start can beat this floor.
`

// runSettings are the settings of this run that change what is measured,
// beyond each proxy's own (proxySettings): both are stated always, so that
// a report is never read against another run's without them.
func runSettings(p plan) []string {
	env := "none"
	if len(p.ProxyEnv) > 0 {
		env = "`" + strings.Join(p.ProxyEnv, " ") + "`"
	}
	out := []string{fmt.Sprintf("environment added to both proxies and to the informer floor (%s): %s", envProxyEnv, env)}
	if !p.Profile {
		return append(out, fmt.Sprintf("profiling (%s): off", envProfile))
	}
	return append(out, fmt.Sprintf("profiling (%s=%d): on. ipvs-proxy ran with --profiling=true; a CPU profile of its first %d s "+
		"(its cold start), and a CPU profile and an execution trace of it through each churn case, were taken while it ran, with a "+
		"CPU profile of the bench process itself through each case. ipvs-proxy's CPU and latency figures include what the "+
		"profiler and the tracer cost it: they are not comparable with an unprofiled run's, nor with kube-proxy's, which ran unprofiled",
		envProfile, p.ProfileSeconds, p.ProfileSeconds))
}

// rows are the table's rows for one size: measure, kube-proxy, ipvs-proxy,
// ratio, floor.
func rows(kp, ip, fl *Run) [][5]string {
	var out [][5]string
	add := func(measure string, k, i, f cell) {
		r := ratio(i, k)
		if !k.ok && !i.ok && k.text != "n/a" && i.text != "n/a" {
			r = "" // counts of changes: no ratio to take
		}
		out = append(out, [5]string{measure, k.text, i.text, r, f.text})
	}
	none := cell{text: ""}
	add("cold convergence", coldCell(kp), coldCell(ip), coldCell(fl))
	add("first sync ended (IPVS, ipsets, iptables)", firstSyncCell(kp), firstSyncCell(ip), none)
	add("endpoint change, median", changeCell(kp, 0.5), changeCell(ip, 0.5), changeCell(fl, 0.5))
	add("endpoint change, p99", changeCell(kp, 0.99), changeCell(ip, 0.99), changeCell(fl, 0.99))
	add("changes measured", countCell(kp), countCell(ip), countCell(fl))
	add("CPU until converged", secondsCell(kp, func(r *Run) float64 { return r.ColdCPUS }), secondsCell(ip, func(r *Run) float64 { return r.ColdCPUS }), none)
	add("CPU in the change phase (share of a core)", phaseCell(kp), phaseCell(ip), none)
	add("CPU whole run (wall)", totalCell(kp), totalCell(ip), none)
	add("syncs until the end of the changes (mean duration)", syncCell(kp), syncCell(ip), none)
	add("peak RSS", rssCell(kp), rssCell(ip), none)
	add("netlink writes per change (tap)", tapCell(kp), tapCell(ip), floorWritesCell(fl))
	add("kernel writes per change (own counter)", ownCell(kp), ownCell(ip), none)
	add("iptables rules", intCell(kp, func(r *Run) int { return r.IPTablesRules }), intCell(ip, func(r *Run) int { return r.IPTablesRules }), none)
	add("ipset entries", intCell(kp, func(r *Run) int { return r.IPSetEntries }), intCell(ip, func(r *Run) int { return r.IPSetEntries }), none)
	return out
}

// cell is a figure as printed, with the value the ratio uses. lower means
// the true value is above v (a capped latency): a ratio to it is an upper
// bound.
type cell struct {
	text  string
	v     float64
	ok    bool
	lower bool
}

func ratio(i, k cell) string {
	switch {
	case !i.ok || !k.ok || i.lower:
		return "n/a"
	case k.v == 0 && i.v == 0:
		return "1"
	case k.v == 0:
		return "n/a"
	case k.lower:
		return "< " + num(i.v/k.v)
	}
	return num(i.v / k.v)
}

func find(runs []Run, n int, proxy string) *Run {
	for i := range runs {
		if runs[i].N == n && runs[i].Proxy == proxy {
			return &runs[i]
		}
	}
	return nil
}

func coldCell(r *Run) cell {
	if r == nil || r.ColdS == 0 {
		return cell{text: "n/a"}
	}
	return cell{text: duration(r.ColdS), v: r.ColdS, ok: true}
}

func firstSyncCell(r *Run) cell {
	switch {
	case r == nil || r.ColdS == 0:
		return cell{text: "n/a"}
	case r.FirstSyncCapped:
		return cell{text: "> " + duration(r.FirstSyncS), v: r.FirstSyncS, ok: true, lower: true}
	}
	return cell{text: duration(r.FirstSyncS), v: r.FirstSyncS, ok: true}
}

func changeCell(r *Run, q float64) cell {
	if r == nil {
		return cell{text: "n/a"}
	}
	s, capped, ok := quantile(r.Changes, q)
	switch {
	case !ok:
		return cell{text: "n/a"}
	case capped:
		return cell{text: "> " + duration(r.CapS), v: r.CapS, ok: true, lower: true}
	}
	return cell{text: duration(s), v: s, ok: true}
}

func countCell(r *Run) cell {
	if r == nil {
		return cell{text: "n/a"}
	}
	capped := 0
	for _, c := range r.Changes {
		if c.Capped {
			capped++
		}
	}
	text := fmt.Sprint(len(r.Changes))
	if capped > 0 {
		text += fmt.Sprintf(" (%d capped)", capped)
	}
	return cell{text: text}
}

func secondsCell(r *Run, f func(*Run) float64) cell {
	if r == nil || r.TotalCPUS == 0 {
		return cell{text: "n/a"}
	}
	v := f(r)
	return cell{text: fmt.Sprintf("%s s", num(v)), v: v, ok: true}
}

// phaseCell compares the proxies' CPU while Services change as a share of
// a core: their change phases last differently long (kube-proxy's changes
// take longer), and periodic resyncs run in them.
func phaseCell(r *Run) cell {
	if r == nil || r.TotalCPUS == 0 || r.PhaseWallS == 0 {
		return cell{text: "n/a"}
	}
	share := r.PhaseCPUS / r.PhaseWallS
	return cell{text: fmt.Sprintf("%s s in %s (%.0f %%)", num(r.PhaseCPUS), duration(r.PhaseWallS), 100*share), v: share, ok: true}
}

func syncCell(r *Run) cell {
	if r == nil || r.Syncs == 0 {
		return cell{text: "n/a"}
	}
	mean := r.SyncS / float64(r.Syncs)
	return cell{text: fmt.Sprintf("%d (%s)", r.Syncs, duration(mean)), v: mean, ok: true}
}

func totalCell(r *Run) cell {
	if r == nil || r.TotalCPUS == 0 {
		return cell{text: "n/a"}
	}
	return cell{text: fmt.Sprintf("%s s (%s)", num(r.TotalCPUS), duration(r.WallS)), v: r.TotalCPUS, ok: true}
}

// unfinished says a proxy never finished a sync in its run (kube-proxy's
// first sync at 5,000 Services outlasts the caps): its peak RSS is then
// only a lower bound, and its rules and sets are a snapshot mid-sync.
func unfinished(r *Run) bool { return r.TotalCPUS > 0 && r.Syncs == 0 }

func rssCell(r *Run) cell {
	if r == nil || r.PeakRSSKiB == 0 {
		return cell{text: "n/a"}
	}
	mib := float64(r.PeakRSSKiB) / 1024
	if unfinished(r) {
		return cell{text: fmt.Sprintf("≥ %s MiB (no sync finished)", num(mib)), v: mib, ok: true, lower: true}
	}
	return cell{text: fmt.Sprintf("%s MiB", num(mib)), v: mib, ok: true}
}

func tapCell(r *Run) cell {
	if r == nil {
		return cell{text: "n/a"}
	}
	v, c, ok := medianInt(r.Changes, tapWrites)
	if !ok {
		return cell{text: "n/a"}
	}
	return cell{text: fmt.Sprintf("%d%s", v, mix(c.Netlink)), v: float64(v), ok: true}
}

// floorWritesCell is the floor's writes per change: the two its loop
// makes (floor), not a measurement, so the cell says so.
func floorWritesCell(r *Run) cell {
	if r == nil || len(r.Changes) == 0 {
		return cell{text: "n/a"}
	}
	return cell{text: fmt.Sprintf("%d (by construction)", floorChangeWrites)}
}

func ownCell(r *Run) cell {
	if r == nil {
		return cell{text: "n/a"}
	}
	v, _, ok := medianInt(r.Changes, ownWrites)
	if !ok {
		return cell{text: "n/a"}
	}
	return cell{text: fmt.Sprint(v), v: float64(v), ok: true}
}

func intCell(r *Run, f func(*Run) int) cell {
	if r == nil || r.TotalCPUS == 0 {
		return cell{text: "n/a"}
	}
	v := f(r)
	if unfinished(r) {
		return cell{text: fmt.Sprintf("%d (mid-sync)", v)}
	}
	return cell{text: fmt.Sprint(v), v: float64(v), ok: true}
}

// mix is " (ipvs 2, nftables 40)", the kinds that were written.
func mix(m map[string]int) string {
	var kinds []string
	for k, v := range m {
		if v != 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		}
	}
	if len(kinds) == 0 {
		return ""
	}
	sort.Strings(kinds)
	return " (" + strings.Join(kinds, ", ") + ")"
}

// duration prints seconds with three significant digits, in ms below 1 s
// (either side of zero: a change seen before its write's answer is a
// negative figure).
func duration(s float64) string {
	if math.Abs(s) < 1 {
		return num(s*1000) + " ms"
	}
	return num(s) + " s"
}

// num prints v with three significant digits from 0.01 up, two below; a
// negative v as its magnitude would be, with its sign.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 0.01 || v == 0:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
