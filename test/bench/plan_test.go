package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// plan is what one bench run does. The host builds it from the environment
// and hands it to the guest as JSON, so both sides agree on it.
type plan struct {
	Sizes []int
	// IPVSOnlySizes are sizes, above Sizes, where only ipvs-proxy and the
	// floors run (kube-proxy would take hours there).
	IPVSOnlySizes []int
	Smoke         bool
	// Changes is how many endpoint changes each proxy gets at each size.
	// ipvs-proxy always makes all of them.
	Changes int
	// kube-proxy needs 10-30 s per change at 20 Services under TCG, ~45 s
	// at 1,000 and minutes at 5,000, so its change phase ends once
	// KubeProxyBudget has passed, after at least MinKubeProxyChanges.
	MinKubeProxyChanges int
	KubeProxyBudget     time.Duration
	// ChangeCap bounds one change; a change still invisible then is
	// reported as "> cap".
	ChangeCap time.Duration
	// ColdCap bounds cold convergence; not converging in it fails the run.
	ColdCap time.Duration
	// FirstSyncCap bounds the wait for the first sync to end before the
	// changes start; reported as "> cap" when hit.
	FirstSyncCap time.Duration
	Memory       string        // the VM's
	Timeout      time.Duration // the VM's whole run
	// Only, when set, runs that proxy alone, without the floor (and so
	// without the wait for the floor's deleted real servers): for work on
	// one proxy, never for the table, which compares both in one run.
	Only string
	// Profile runs ipvs-proxy with --profiling and keeps a CPU profile of
	// its cold start and a heap profile at convergence (cpu-N.pprof,
	// heap-N.pprof next to the logs); the CPU profile covers the first
	// ProfileSeconds. Each churn case gets a CPU profile, an execution
	// trace, and heap profiles before and after (profileCase).
	Profile        bool
	ProfileSeconds int
	// ProxyEnv is added to both proxies' environment and the informer
	// floor's, for diagnosis (GODEBUG=gctrace=1 logs how their heaps grow)
	// or to try Go runtime settings (GOGC, GOMEMLIMIT) on all of them; the
	// report states it (runSettings).
	ProxyEnv []string
}

// Environment that shapes the plan; BENCH_SIZES unset means the smoke run
// that `make test` does.
const (
	envSizes    = "BENCH_SIZES"             // e.g. "100,1000,5000"
	envIPVSOnly = "BENCH_IPVS_ONLY_SIZES"   // e.g. "10000"; default 10000 with BENCH_SIZES, "" to skip
	envChanges  = "BENCH_CHANGES"           // per proxy and size; default 20 (smoke 3)
	envBudget   = "BENCH_KUBE_PROXY_BUDGET" // Go duration; default 3m (smoke 20s)
	envCap      = "BENCH_CHANGE_CAP"        // Go duration; default 90s (smoke 1m)
	envOut      = "BENCH_OUT"               // host file for the markdown table
	envPlan     = "BENCH_PLAN"              // host → guest: the plan as JSON
	envMemory   = "BENCH_VM_MEMORY"         // default by size: 2G, 6G from 2,000 Services
	envTimeout  = "BENCH_VM_TIMEOUT"        // default: estimated from the plan
	envOnly     = "BENCH_ONLY"              // "kube-proxy" or "ipvs-proxy"
	envProfile  = "BENCH_PROFILE"           // N: pprof of ipvs-proxy's first N seconds, and of each open-loop churn case
	envProxyEnv = "BENCH_PROXY_ENV"         // NAME=VALUE ... for both proxies and the informer floor, e.g. GODEBUG=gctrace=1
	smokeSize   = 20                        // Services in the smoke run
	endpoints   = 10                        // per Service
	maxSize     = 131072 / endpoints        // endpoint addresses come from one /15
	kubeNodeIP  = "10.0.2.15"               // the guest's address, the Node's InternalIP
	benchNode   = "bench-node"              // the Node both proxies run as
	benchNS     = "bench"                   // namespace of the loaded Services
	clusterIPs  = "10.96.0.0/16"            // --service-cluster-ip-range
	podCIDR     = "10.244.0.0/15"           // endpoints' range, --cluster-cidr
	changedNet  = "10.247"                  // addresses that changes move endpoints to
	metricsURL  = "http://127.0.0.1:10249/metrics"
)

func planFromEnv() (plan, error) {
	// kube-proxy takes 10-30 s per change even at 20 Services under TCG (a
	// sync execs ipset and iptables-restore dozens of times): the smoke's
	// cap leaves room for a busy host.
	p := plan{Sizes: []int{smokeSize}, Smoke: true, Changes: 3, MinKubeProxyChanges: 2,
		KubeProxyBudget: 20 * time.Second, ChangeCap: time.Minute, ColdCap: 3 * time.Minute, FirstSyncCap: 3 * time.Minute}
	if s := os.Getenv(envSizes); s != "" {
		sizes, err := parseSizes(s)
		if err != nil {
			return plan{}, err
		}
		p = plan{Sizes: sizes, IPVSOnlySizes: []int{10000}, Changes: 20, MinKubeProxyChanges: 3,
			KubeProxyBudget: 3 * time.Minute, ChangeCap: 90 * time.Second, ColdCap: 10 * time.Minute, FirstSyncCap: 5 * time.Minute}
		if s, ok := os.LookupEnv(envIPVSOnly); ok {
			p.IPVSOnlySizes = nil
			if s != "" {
				if p.IPVSOnlySizes, err = parseSizes(s); err != nil {
					return plan{}, err
				}
			}
		}
		// Each size adds Services to the last: only sizes above Sizes.
		p.IPVSOnlySizes = slices.DeleteFunc(p.IPVSOnlySizes, func(n int) bool { return n <= sizes[len(sizes)-1] })
	}
	if s := os.Getenv(envChanges); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return plan{}, fmt.Errorf("%s=%q: want a positive number", envChanges, s)
		}
		p.Changes = n
	}
	p.MinKubeProxyChanges = min(p.MinKubeProxyChanges, p.Changes)
	p.Only, p.Profile, p.ProfileSeconds = os.Getenv(envOnly), os.Getenv(envProfile) != "", 0
	p.ProxyEnv = strings.Fields(os.Getenv(envProxyEnv))
	for _, e := range p.ProxyEnv {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			return plan{}, fmt.Errorf("%s: %q is not NAME=VALUE", envProxyEnv, e)
		}
	}
	if s := os.Getenv(envProfile); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return plan{}, fmt.Errorf("%s=%q: want the CPU profile's length in seconds", envProfile, s)
		}
		p.ProfileSeconds = n
	}
	if p.Only != "" && p.Only != kubeProxyName && p.Only != ipvsProxyName {
		return plan{}, fmt.Errorf("%s=%q: want %s or %s", envOnly, p.Only, kubeProxyName, ipvsProxyName)
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{envBudget, &p.KubeProxyBudget}, {envCap, &p.ChangeCap}} {
		if s := os.Getenv(d.env); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				return plan{}, fmt.Errorf("%s=%q: want a positive Go duration", d.env, s)
			}
			*d.to = v
		}
	}
	largest := p.allSizes()[len(p.allSizes())-1]
	p.Memory = "2G"
	if largest >= 2000 { // kube-proxy and the guest's overlay at 5,000 × 10 outgrow 2G
		p.Memory = "6G"
	}
	if s := os.Getenv(envMemory); s != "" {
		p.Memory = s
	}
	p.Timeout = p.estimate()
	if s := os.Getenv(envTimeout); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			return plan{}, fmt.Errorf("%s=%q: want a positive Go duration", envTimeout, s)
		}
		p.Timeout = v
	}
	return p, nil
}

// estimate is a generous upper bound of the guest's run: per size,
// kube-proxy's change phase can run to its budget plus one capped change
// (cap, then half a cap waiting for its sync), or to its minimum of such
// changes; loading, both cold syncs, the floor and the cleanups grow with
// the size.
func (p plan) estimate() time.Duration {
	d := 2 * time.Minute // boot, module loading, warm-up
	change := p.ChangeCap*3/2 + changeGap
	// The churn cases: each proxy's share of them, and the informer's.
	var cases time.Duration
	for _, c := range churnCases(p, 100) {
		cases += time.Duration(c.Seconds*float64(time.Second)) + changeGap + 10*time.Second
		if c.Chains > 0 {
			cases += time.Duration(c.Steps) * 200 * time.Millisecond
		}
	}
	for _, n := range p.Sizes {
		d += p.FirstSyncCap // kube-proxy's first syncs (both ways of starting it) at the largest sizes
		d += max(p.KubeProxyBudget+change, time.Duration(p.MinKubeProxyChanges)*change)
		d += time.Duration(p.Changes) * (3*time.Second + p.ChangeCap/20) // ipvs-proxy's changes
		d += time.Duration(n) * 150 * time.Millisecond
		d += 2 * (time.Duration(len(churnCases(p, n))) * (p.KubeProxyBudget + p.ChangeCap)) // kube-proxy's cases, both ways
		d += 2 * cases                                                                      // ipvs-proxy's and the informer's
		d += 3 * time.Minute                                                                // process start-ups and stops
	}
	for _, n := range p.IPVSOnlySizes {
		d += time.Duration(p.Changes)*(3*time.Second+p.ChangeCap/20) + time.Duration(n)*150*time.Millisecond + 2*cases + 2*time.Minute
	}
	if !p.Smoke {
		d += time.Duration(len(p.allSizes())) * time.Minute // the case across a resync
	}
	return d
}

// allSizes are the sizes in the order they run.
func (p plan) allSizes() []int { return append(slices.Clone(p.Sizes), p.IPVSOnlySizes...) }

// runs says whether proxy runs at size n.
func (p plan) runs(proxy string, n int) bool {
	if slices.Contains(p.IPVSOnlySizes, n) && proxy != ipvsProxyName {
		return false
	}
	switch p.Only {
	case "":
		return true
	case kubeProxyName:
		return proxy == kubeProxyName || proxy == kubeProxyKubeadmName
	}
	return proxy == p.Only
}

// runCount is how many runs the guest reports: at each size the floors
// (moby/ipvs unless one proxy runs alone, and the informer) and each
// proxy that runs there.
func (p plan) runCount() int {
	total := 0
	for _, n := range p.allSizes() {
		total++ // the informer
		if p.Only == "" {
			total++
		}
		for _, px := range []string{kubeProxyName, kubeProxyKubeadmName, ipvsProxyName} {
			if p.runs(px, n) {
				total++
			}
		}
	}
	return total
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxSize {
			return nil, fmt.Errorf("%s=%q: %q is not a size between 1 and %d", envSizes, s, f, maxSize)
		}
		sizes = append(sizes, n)
	}
	// Ascending and distinct: each size adds Services to the ones the
	// smaller size loaded.
	sort.Ints(sizes)
	return slices.Compact(sizes), nil
}

func (p plan) encode() string {
	b, _ := json.Marshal(p)
	return string(b)
}

func decodePlan(s string) (plan, error) {
	var p plan
	if err := json.Unmarshal([]byte(s), &p); err != nil || len(p.Sizes) == 0 {
		return plan{}, fmt.Errorf("%s=%q: %v", envPlan, s, err)
	}
	return p, nil
}
