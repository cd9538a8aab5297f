package bench

import (
	"encoding/json"
	"math"
	"sort"
)

const (
	kubeProxyName = "kube-proxy"
	// kubeProxyKubeadmName is kube-proxy as kubeadm starts it: a config
	// file whose ipvs.minSyncPeriod is 0s.
	kubeProxyKubeadmName = "kube-proxy-kubeadm"
	ipvsProxyName        = "ipvs-proxy"
	floorName            = "floor"
	// informerName is the latency floor: a bare informer (informer_test.go).
	informerName = "informer"
)

// Run is one proxy (or the floor) at one size, as the guest measured it.
// Zero values mean "not measured"; Error says why a run is incomplete.
type Run struct {
	N     int    `json:"n"`
	Proxy string `json:"proxy"`
	// ColdS is from the exec until the kernel held exactly the wanted table;
	// ColdCPUS is the CPU the proxy (and its reaped children) used by then.
	ColdS float64 `json:"coldS"`
	// FirstSyncS is from the exec until the proxy's first sync (IPVS,
	// ipsets, iptables) had ended, by its own last-sync metric; when
	// capped, the cap.
	FirstSyncS      float64  `json:"firstSyncS"`
	FirstSyncCapped bool     `json:"firstSyncCapped,omitempty"`
	ColdCPUS        float64  `json:"coldCPUS"`
	Changes         []Change `json:"changes"`
	CapS            float64  `json:"capS"` // the per-change cap
	// The change phase as a whole: CPU includes periodic resyncs that ran
	// in it, which are part of what a proxy costs while Services change.
	PhaseCPUS  float64 `json:"phaseCPUS"`
	PhaseWallS float64 `json:"phaseWallS"`
	TotalCPUS  float64 `json:"totalCPUS"` // exec to exit, from wait4's rusage
	WallS      float64 `json:"wallS"`
	PeakRSSKiB int64   `json:"peakRSSKiB"`
	// Syncs is the proxy's own count of syncs from start to the end of the
	// change phase, and SyncS their total duration.
	Syncs int     `json:"syncs"`
	SyncS float64 `json:"syncS"`
	// After the change phase: `-A` rules in iptables-save and ip6tables-save,
	// and members of every ipset.
	IPTablesRules int `json:"iptablesRules"`
	IPSetEntries  int `json:"ipsetEntries"`
	// Cases are the churn cases (cases_test.go), after the spaced changes.
	Cases []CaseResult `json:"cases,omitempty"`
	Error string       `json:"error,omitempty"`
}

// Change is one endpoint moved to a new address, from the API write until
// the kernel showed the new real server (and no longer the old one with a
// weight).
type Change struct {
	Seconds float64 `json:"s"`
	Capped  bool    `json:"capped,omitempty"` // not visible within the cap; Seconds is the cap
	// OwnWrites is ipvs-proxy's ipvs_proxy_kernel_operations_total delta;
	// nil for kube-proxy, which has no such counter.
	OwnWrites *int `json:"ownWrites,omitempty"`
	// Netlink is the writes the tap saw, by kind, until the sync that made
	// the change had finished; nil when that could not be seen (why: Note).
	Netlink map[string]int `json:"netlink,omitempty"`
	Note    string         `json:"note,omitempty"`
}

func (c Change) netlinkTotal() int {
	n := 0
	for _, v := range c.Netlink {
		n += v
	}
	return n
}

// writeRuns replaces the results file, so whatever finished survives a
// later failure or timeout.
func writeRuns(path string, runs []Run) error {
	data, err := json.MarshalIndent(runs, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, string(data))
}

// quantile is the nearest-rank quantile of the changes' latencies; capped
// changes rank above every measured one. capped is true when the result is
// one of them, i.e. the quantile is only known to exceed the cap.
func quantile(cs []Change, q float64) (s float64, capped bool, ok bool) {
	if len(cs) == 0 {
		return 0, false, false
	}
	v := make([]float64, len(cs))
	for i, c := range cs {
		v[i] = c.Seconds
		if c.Capped {
			v[i] = math.Inf(1)
		}
	}
	sort.Float64s(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	i = max(0, min(i, len(v)-1))
	if math.IsInf(v[i], 1) {
		return 0, true, true
	}
	return v[i], false, true
}

// medianInt is the nearest-rank median of the values f gives for the
// changes where ok; the change it came from is returned too.
func medianInt(cs []Change, f func(Change) (int, bool)) (int, Change, bool) {
	type pair struct {
		v int
		c Change
	}
	var ps []pair
	for _, c := range cs {
		if v, ok := f(c); ok {
			ps = append(ps, pair{v, c})
		}
	}
	if len(ps) == 0 {
		return 0, Change{}, false
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].v < ps[j].v })
	p := ps[(len(ps)+1)/2-1]
	return p.v, p.c, true
}

func maxInt(cs []Change, f func(Change) (int, bool)) (int, bool) {
	best, any := 0, false
	for _, c := range cs {
		if v, ok := f(c); ok && (!any || v > best) {
			best, any = v, true
		}
	}
	return best, any
}

func ownWrites(c Change) (int, bool) {
	if c.OwnWrites == nil {
		return 0, false
	}
	return *c.OwnWrites, true
}

func tapWrites(c Change) (int, bool) { return c.netlinkTotal(), c.Netlink != nil }
